"""API keys, per-key isolation, the non-loopback refusal and CORS, against the real binary."""
import glob
import json
import os
import signal
import subprocess
import time

import httpx
import pytest

from conftest import RUNQ_BIN, RunqServer, iter_sse, wait_until

RUNS = "/api/v1/runs"
KEY_A = "runq-test-key-a-7f3c9e21d4b8a650"
KEY_B = "runq-test-key-b-02ad6e9f4c1b7e38"
SLOW = {"sleep_seconds": 30}


def bearer(key):
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def keyed(make_server):
    """runq with two API keys, A and B."""
    return make_server("--api-key", KEY_A, "--api-key", KEY_B)


@pytest.fixture
def a(keyed):
    with keyed.client(headers=bearer(KEY_A)) as c:
        yield c


@pytest.fixture
def b(keyed):
    with keyed.client(headers={"X-API-Key": KEY_B}) as c:
        yield c


@pytest.fixture
def anon(keyed):
    with keyed.client() as c:
        yield c


def submit_as(c, prompt="hello", headers=None, **fields):
    r = c.post(RUNS, json=dict({"prompt": prompt}, **fields), headers=headers)
    assert r.status_code == 202, (r.status_code, r.text)
    return r.json()["job_id"]


def wait_terminal(c, job_id, timeout=20):
    def done():
        body = c.get(f"{RUNS}/{job_id}").json()
        return body if body.get("status") in ("succeeded", "failed", "cancelled") else None
    return wait_until(done, timeout=timeout, what=f"{job_id} to end")


def assert_401(r):
    assert r.status_code == 401, (r.request.method, r.request.url, r.status_code, r.text)
    assert r.json() == {"detail": "Unauthorized"}
    assert r.headers["www-authenticate"] == "Bearer"


# Every route (and an unknown path), with a job id that exists.
def every_route(job_id):
    return [
        ("GET", RUNS, None), ("POST", RUNS, {"prompt": "x"}),
        ("GET", f"{RUNS}/{job_id}", None), ("GET", f"{RUNS}/{job_id}?wait=1", None),
        ("GET", f"{RUNS}/{job_id}/result", None), ("GET", f"{RUNS}/{job_id}/result?wait=1", None),
        ("POST", f"{RUNS}/{job_id}/cancel", None), ("DELETE", f"{RUNS}/{job_id}", None),
        ("GET", f"{RUNS}/{job_id}/stream", None), ("GET", "/stats", None),
        ("GET", "/nope", None), ("PUT", RUNS, None),
    ]


BAD_CREDENTIALS = [
    {},
    {"Authorization": "Bearer wrong-key"},
    {"Authorization": f"Bearer {KEY_A}x"},
    {"Authorization": f"Bearer {KEY_A[:-1]}"},
    {"Authorization": "Bearer"},
    {"Authorization": "Basic x"},
    {"Authorization": f"Basic {KEY_A}"},
    {"Authorization": KEY_A},
    {"X-API-Key": ""},
    {"X-API-Key": "wrong-key"},
]


def test_missing_wrong_or_malformed_key_is_401_everywhere_but_health(keyed, a, anon):
    job_id = submit_as(a, config=SLOW)
    for headers in BAD_CREDENTIALS:
        for method, path, body in every_route(job_id):
            assert_401(anon.request(method, path, json=body, headers=headers))
    # /health needs no key, and shows no job.
    h = anon.get("/health")
    assert h.status_code == 200 and h.json()["status"] == "healthy"
    # Nothing the refused requests did changed the job, and nothing was submitted.
    status = a.get(f"{RUNS}/{job_id}").json()
    assert status["status"] in ("queued", "running")
    assert a.get(RUNS).json()["total"] == 1


def test_both_headers_work(keyed, a):
    job_id = submit_as(a)
    with keyed.client() as c:
        assert c.get(f"{RUNS}/{job_id}", headers=bearer(KEY_A)).status_code == 200
        assert c.get(f"{RUNS}/{job_id}", headers={"authorization": f"bearer {KEY_A}"}).status_code == 200
        assert c.get(f"{RUNS}/{job_id}", headers={"X-API-Key": KEY_A}).status_code == 200


def test_two_keys_cannot_see_each_others_jobs(keyed, a, b):
    running = submit_as(a, "a-running", config=SLOW, session_id="s1")
    done = submit_as(a, "a-done", session_id="s1")
    assert wait_terminal(a, done)["status"] == "succeeded"
    mine = submit_as(b, "b-own")
    assert wait_terminal(b, mine)["status"] == "succeeded"

    for job_id in (running, done):
        not_found = {"detail": f"Job not found: {job_id}"}
        for method, path in [("GET", f"{RUNS}/{job_id}"), ("GET", f"{RUNS}/{job_id}?wait=1"),
                             ("GET", f"{RUNS}/{job_id}/result"),
                             ("GET", f"{RUNS}/{job_id}/result?wait=1"),
                             ("POST", f"{RUNS}/{job_id}/cancel"),
                             ("DELETE", f"{RUNS}/{job_id}"),
                             ("GET", f"{RUNS}/{job_id}/stream")]:
            r = b.request(method, path)
            assert r.status_code == 404, (method, path, r.status_code, r.text)
            assert r.json() == not_found, (method, path)
        # Exactly what an unknown id gets.
        unknown = b.get(f"{RUNS}/run_00000000deadbeef")
        assert unknown.status_code == 404

    # Lists and stats show only the caller's jobs.
    b_list = b.get(RUNS).json()
    assert b_list["total"] == 1 and [j["job_id"] for j in b_list["jobs"]] == [mine]
    assert b.get(RUNS, params={"session_id": "s1"}).json()["total"] == 0
    assert b.get(RUNS, params={"status": "running"}).json()["total"] == 0
    assert b.get("/stats").json()["total_jobs"] == 1
    assert b.get("/stats").json()["by_status"]["succeeded"] == 1
    a_list = a.get(RUNS).json()
    assert {j["job_id"] for j in a_list["jobs"]} == {running, done}
    assert a.get("/stats").json()["total_jobs"] == 2

    # B's attempts changed nothing: A's running job still runs, the done one is there.
    assert a.get(f"{RUNS}/{running}").json()["status"] in ("queued", "running")
    assert a.get(f"{RUNS}/{done}/result").json()["result"] == "a-done"
    # And A can act on its own jobs.
    assert a.post(f"{RUNS}/{running}/cancel").status_code == 200
    assert a.delete(f"{RUNS}/{done}").status_code == 204
    assert b.get(f"{RUNS}/{mine}/result").json()["result"] == "b-own"


def test_stream_of_own_job_works_and_others_get_404(keyed, a, b):
    job_id = submit_as(a, "streamed")
    with a.stream("GET", f"{RUNS}/{job_id}/stream") as r:
        assert r.status_code == 200
        events = [ev.event for ev in iter_sse(r)]
    assert events[-1] == "result"
    with b.stream("GET", f"{RUNS}/{job_id}/stream") as r:
        assert r.status_code == 404


def test_idempotency_keys_are_per_api_key(keyed, a, b):
    headers = {"Idempotency-Key": "shared-key-1"}
    a1 = submit_as(a, "same", headers=headers)
    b1 = submit_as(b, "same", headers=headers)
    assert a1 != b1
    assert submit_as(a, "same", headers=headers) == a1  # a replay within one key
    assert submit_as(b, "same", headers=headers) == b1
    # A conflict under A is not one under B.
    r = a.post(RUNS, json={"prompt": "other"}, headers=headers)
    assert r.status_code == 409 and a1 in r.json()["detail"]
    # The body's idempotency_key too.
    a2 = submit_as(a, "body", idempotency_key="body-key")
    b2 = submit_as(b, "body", idempotency_key="body-key")
    assert a2 != b2
    assert a.get(RUNS).json()["total"] == 2
    assert b.get(RUNS).json()["total"] == 2


@pytest.mark.sqlite_only
def test_database_does_not_contain_the_keys(keyed, a, b):
    for c in (a, b):
        job_id = submit_as(c, "p", idempotency_key="k")
        wait_terminal(c, job_id)
    files = [f for f in glob.glob(keyed.db_path + "*") if os.path.isfile(f)]
    assert files, "no database files"
    seen = b""
    for f in files:
        with open(f, "rb") as fh:
            data = fh.read()
        seen += data
        for key in (KEY_A, KEY_B):
            assert key.encode() not in data, f"{key} found in {f}"
    # The owner ids (hex SHA-256 of the keys) are what is stored.
    import hashlib
    assert hashlib.sha256(KEY_A.encode()).hexdigest().encode() in seen


def test_keys_never_appear_in_the_log(make_server):
    s = make_server("--api-key", KEY_A, "--log-level", "trace")
    with s.client(headers=bearer(KEY_A)) as c:
        submit_as(c)
    with s.client(headers=bearer(KEY_B)) as c:
        assert c.get(RUNS).status_code == 401
    os.kill(s.proc.pid, signal.SIGHUP)
    time.sleep(0.2)
    log = "".join(s.log)
    assert KEY_A not in log and KEY_B not in log
    assert "API keys required (1 configured)" in log


def test_environment_key_and_flag_key_both_work(make_server):
    s = make_server("--api-key", KEY_A, env={"PRAISONAI_JOBS_API_KEY": KEY_B})
    with s.client() as c:
        assert c.get(RUNS, headers=bearer(KEY_A)).status_code == 200
        assert c.get(RUNS, headers=bearer(KEY_B)).status_code == 200
        assert_401(c.get(RUNS, headers=bearer("other")))


def test_keys_file_reloaded_on_sighup(make_server, tmp_path):
    keys_file = tmp_path / "keys"
    keys_file.write_text(f"# runq keys\n\n{KEY_A}\n")
    s = make_server("--api-keys-file", str(keys_file))
    with s.client() as c:
        a_job = submit_as(c, "a", headers=bearer(KEY_A))
        assert_401(c.get(RUNS, headers=bearer(KEY_B)))

        keys_file.write_text(f"{KEY_B}\n  # A removed\n")
        os.kill(s.proc.pid, signal.SIGHUP)
        wait_until(lambda: c.get(RUNS, headers=bearer(KEY_B)).status_code == 200,
                   what="B accepted after SIGHUP")
        assert_401(c.get(RUNS, headers=bearer(KEY_A)))
        assert c.get(f"{RUNS}/{a_job}", headers=bearer(KEY_B)).status_code == 404

        # A file that can't be parsed leaves the keys as they were.
        keys_file.write_text("a key with spaces\n")
        os.kill(s.proc.pid, signal.SIGHUP)
        wait_until(lambda: any("keeping the 1 API key" in line for line in s.log),
                   what="the reload error in the log")
        assert c.get(RUNS, headers=bearer(KEY_B)).status_code == 200

        # A comes back, and sees its job again; the server is still serving.
        keys_file.write_text(f"{KEY_A}\n{KEY_B}\n")
        os.kill(s.proc.pid, signal.SIGHUP)
        wait_until(lambda: c.get(RUNS, headers=bearer(KEY_A)).status_code == 200,
                   what="A accepted again")
        assert c.get(f"{RUNS}/{a_job}", headers=bearer(KEY_A)).status_code == 200
    assert s.proc.poll() is None
    assert "a key with spaces" not in "".join(s.log)
    # SIGHUP did not start a shutdown: SIGTERM still stops it cleanly.
    assert s.terminate(15) == 0


def test_sighup_without_keys_file_keeps_serving(server, client):
    os.kill(server.proc.pid, signal.SIGHUP)
    wait_until(lambda: any("no --api-keys-file" in line for line in server.log),
               what="the SIGHUP log line")
    assert client.get(RUNS).status_code == 200
    assert server.terminate(15) == 0


def test_sighup_during_drain_does_not_exit(make_server, tmp_path):
    keys_file = tmp_path / "keys"
    keys_file.write_text(KEY_A + "\n")
    s = make_server("--api-keys-file", str(keys_file), "--drain-timeout", "30")
    with s.client(headers=bearer(KEY_A)) as c:
        job_id = submit_as(c, config={"sleep_seconds": 3})
        wait_until(lambda: c.get(f"{RUNS}/{job_id}").json()["status"] == "running",
                   what="running")
    s.proc.send_signal(signal.SIGTERM)
    wait_until(lambda: any("shutting down" in line for line in s.log), what="drain start")
    s.proc.send_signal(signal.SIGHUP)  # reloads; must not be taken as the second signal
    assert s.proc.wait(20) == 0
    s.drain_log()
    assert "drained: every running job finished" in "".join(s.log)


def test_unreadable_keys_file_at_start_exits_1(tmp_path):
    keys_file = tmp_path / "keys"
    keys_file.write_text("bad key\n")
    p = subprocess.run([RUNQ_BIN, "serve", "--port", "0", "--db", str(tmp_path / "db"),
                        "--api-keys-file", str(keys_file)],
                       capture_output=True, text=True, timeout=20)
    assert p.returncode == 1
    assert "line 1" in p.stderr and "bad key" not in p.stderr


def test_empty_keys_file_refuses_everyone(make_server, tmp_path):
    keys_file = tmp_path / "keys"
    keys_file.write_text("# nobody yet\n")
    s = make_server("--api-keys-file", str(keys_file), "--host", "0.0.0.0")
    with s.client() as c:
        assert_401(c.get(RUNS, headers=bearer(KEY_A)))
        assert_401(c.get(RUNS))
        assert c.get("/health").status_code == 200
    assert any("no API key in" in line for line in s.log)


# ---- safe defaults ---------------------------------------------------------------------

@pytest.mark.parametrize("host", ["0.0.0.0", "::"])
def test_non_loopback_without_key_refuses_to_start(tmp_path, host):
    env = dict(os.environ)
    env.pop("PRAISONAI_JOBS_API_KEY", None)
    env.pop("RUNQ_API_KEYS_FILE", None)
    p = subprocess.run([RUNQ_BIN, "serve", "--host", host, "--port", "0",
                        "--db", str(tmp_path / "runq.db")],
                       capture_output=True, text=True, env=env, timeout=20)
    assert p.returncode == 1
    for flag in ("--api-key", "--api-keys-file", "--insecure-no-auth"):
        assert flag in p.stderr, p.stderr
    assert not os.path.exists(tmp_path / "runq.db")  # refused before anything was opened


def test_non_loopback_with_insecure_no_auth_starts_with_a_warning(make_server):
    s = make_server("--host", "0.0.0.0", "--insecure-no-auth")
    log = "".join(s.log)
    assert "WITHOUT API keys" in log
    with s.client() as c:
        assert c.get(RUNS).status_code == 200


def test_non_loopback_with_a_key_starts(make_server):
    s = make_server("--host", "0.0.0.0", "--api-key", KEY_A)
    with s.client() as c:
        assert_401(c.get(RUNS))
        assert c.get(RUNS, headers=bearer(KEY_A)).status_code == 200


def test_loopback_without_keys_needs_no_key(server, client):
    job_id = submit_as(client)
    assert client.get(f"{RUNS}/{job_id}").status_code == 200


# ---- CORS ------------------------------------------------------------------------------

ORIGIN = "https://app.example.com"


def test_cors_off_by_default(server, client):
    r = client.get(RUNS, headers={"Origin": ORIGIN})
    assert r.status_code == 200
    assert not any(h.startswith("access-control-") for h in r.headers)
    pre = client.options(RUNS, headers={"Origin": ORIGIN,
                                        "Access-Control-Request-Method": "POST"})
    assert pre.status_code == 405
    assert "access-control-allow-origin" not in pre.headers


def test_cors_preflight_and_headers(make_server):
    s = make_server("--api-key", KEY_A, "--cors-origin", ORIGIN,
                    "--cors-origin", "http://localhost:3000")
    with s.client() as c:
        pre = c.options(RUNS, headers={"Origin": ORIGIN, "Access-Control-Request-Method": "POST",
                                       "Access-Control-Request-Headers":
                                           "authorization, content-type, idempotency-key"})
        assert pre.status_code == 204, pre.text
        assert pre.headers["access-control-allow-origin"] == ORIGIN
        assert pre.headers["vary"] == "Origin"
        methods = {m.strip() for m in pre.headers["access-control-allow-methods"].split(",")}
        assert {"GET", "POST"} <= methods
        allowed = {h.strip().lower() for h in pre.headers["access-control-allow-headers"].split(",")}
        assert {"authorization", "x-api-key", "content-type", "idempotency-key",
                "last-event-id"} <= allowed
        assert int(pre.headers["access-control-max-age"]) > 0
        assert pre.content == b""

        pre_job = c.options(f"{RUNS}/run_0123456789abcdef",
                            headers={"Origin": ORIGIN, "Access-Control-Request-Method": "DELETE"})
        assert pre_job.status_code == 204
        assert "DELETE" in pre_job.headers["access-control-allow-methods"]

        # Actual requests from the origin: the headers on success and on a 401.
        ok = c.post(RUNS, json={"prompt": "x"}, headers={"Origin": ORIGIN, **bearer(KEY_A)})
        assert ok.status_code == 202
        assert ok.headers["access-control-allow-origin"] == ORIGIN
        assert ok.headers["vary"] == "Origin"
        assert "location" in ok.headers["access-control-expose-headers"].lower()
        denied = c.get(RUNS, headers={"Origin": ORIGIN})
        assert_401(denied)
        assert denied.headers["access-control-allow-origin"] == ORIGIN
        local = c.get(RUNS, headers={"Origin": "http://localhost:3000", **bearer(KEY_A)})
        assert local.headers["access-control-allow-origin"] == "http://localhost:3000"

        # Any other origin: no CORS headers at all, and no preflight bypass of the key.
        for origin in ("https://evil.example.com", "http://app.example.com", "null"):
            r = c.get(RUNS, headers={"Origin": origin, **bearer(KEY_A)})
            assert r.status_code == 200
            assert not any(h.startswith("access-control-") for h in r.headers), origin
            pre = c.options(RUNS, headers={"Origin": origin,
                                           "Access-Control-Request-Method": "POST"})
            assert_401(pre)
            assert "access-control-allow-origin" not in pre.headers


def test_bad_cors_origin_is_bad_usage(tmp_path):
    p = subprocess.run([RUNQ_BIN, "serve", "--port", "0", "--db", str(tmp_path / "db"),
                        "--cors-origin", "https://app.example.com/path"],
                       capture_output=True, text=True, timeout=20)
    assert p.returncode != 0
    assert "origin" in p.stderr.lower()


# ---- the CLI ---------------------------------------------------------------------------

def cli(server, *args, env=None):
    full_env = dict(os.environ)
    full_env.pop("RUNQ_API_KEY", None)
    full_env.update(env or {})
    return subprocess.run([RUNQ_BIN, *args, "--api-url", server.url], capture_output=True,
                          text=True, env=full_env, timeout=60)


def test_cli_sends_the_api_key(keyed, a):
    p = cli(keyed, "submit", "from the cli", "--api-key", KEY_B, "--wait")
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "from the cli"
    p = cli(keyed, "list", "--json", env={"RUNQ_API_KEY": KEY_B})
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["total"] == 1
    # The job is B's: A does not see it.
    assert a.get(RUNS).json()["total"] == 0
    # Without a key, or with a wrong one: the server's 401, exit 1.
    p = cli(keyed, "list")
    assert p.returncode == 1
    assert "Unauthorized" in p.stderr
    p = cli(keyed, "list", "--api-key", "wrong")
    assert p.returncode == 1
    # The flag wins over the environment.
    p = cli(keyed, "list", "--json", "--api-key", KEY_A, env={"RUNQ_API_KEY": KEY_B})
    assert p.returncode == 0 and json.loads(p.stdout)["total"] == 0
