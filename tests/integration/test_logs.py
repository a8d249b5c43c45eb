"""Logs: --log-format json (every line one JSON object), the access log with request ids
(X-Request-ID taken when sane, made otherwise, echoed back), job lifecycle events."""
import json

import httpx

from conftest import submit, wait_status, wait_until

RUNS = "/api/v1/runs"
KEY = "runq-logs-key-3b9f7a1c5e2d8064"


def records(server):
    """Every line the server printed, parsed; fails on a line that is not a JSON object."""
    out = []
    for line in list(server.log):
        obj = json.loads(line)
        assert isinstance(obj, dict), line
        assert {"ts", "level", "msg"} <= obj.keys(), line
        assert obj["ts"].endswith("Z")
        out.append(obj)
    return out


def find(server, **fields):
    return [r for r in records(server) if all(r.get(k) == v for k, v in fields.items())]


def test_json_logs_parse_and_carry_access_and_lifecycle(make_server):
    s = make_server("--log-format", "json", "--api-key", KEY)
    with s.client(headers={"Authorization": f"Bearer {KEY}"}) as c:
        r = c.post(RUNS, json={"prompt": "hi"}, headers={"X-Request-ID": "my-req-1"})
        assert r.status_code == 202
        assert r.headers["x-request-id"] == "my-req-1"
        job_id = r.json()["job_id"]
        wait_status(c, job_id, "succeeded")
        slow = submit(c, "s", config={"sleep_seconds": 30})["job_id"]
        wait_status(c, slow, "running")
        c.post(f"{RUNS}/{slow}/cancel")
        # Absent or insane ids: made by the server, different each time.
        made = [c.get(f"{RUNS}/{job_id}").headers["x-request-id"] for _ in range(2)]
        made.append(c.get("/health", headers={"X-Request-ID": "x" * 129}).headers["x-request-id"])
        made.append(c.get("/health", headers={"X-Request-ID": "tab\there"}).headers["x-request-id"])
        assert all(made) and len(set(made)) == 4 and "x" * 129 not in made
        c.get(f"{RUNS}/run_00000000000000000000")
    with httpx.Client(base_url=s.url) as anon:
        assert anon.get("/stats").status_code == 401

    wait_until(lambda: find(s, msg="job finished", job_id=slow), what="the cancel's log line")
    wait_until(lambda: find(s, msg="request", status=401), what="the last access line")
    assert s.terminate() == 0

    access = find(s, msg="request", request_id="my-req-1")
    assert len(access) == 1
    a = access[0]
    assert a["level"] == "info"
    assert a["method"] == "POST" and a["route"] == "/api/v1/runs" and a["status"] == 202
    assert isinstance(a["duration_ms"], (int, float)) and a["duration_ms"] >= 0
    for rid in made:
        assert len(find(s, msg="request", request_id=rid)) == 1, rid
    routes = {r["route"] for r in find(s, msg="request")}
    assert "/api/v1/runs/{job_id}" in routes
    assert not any("run_" in route for route in routes)  # templates, never raw paths
    assert find(s, msg="request", route="/stats", status=401)

    assert find(s, msg="job submitted", job_id=job_id)
    assert find(s, msg="job started", job_id=job_id, attempt=1)
    assert find(s, msg="job finished", job_id=job_id, status="succeeded")
    assert find(s, msg="job cancelled", job_id=slow, was="running")
    assert find(s, msg="job finished", job_id=slow, status="cancelled")
    wait_until(lambda: find(s, level="info", msg="stopped"), what="the last line")
    assert not any(KEY in line for line in s.log)


def test_access_lines_batched_complete_and_in_order(make_server):
    """Access lines reach stderr in batches (within 50 ms): each one comes, in the order of
    the requests; any other record (here the warning of a refused submit, logged while the
    lines before it are still pending) comes after the access lines before it; and a
    clean stop (SIGTERM) writes the lines still pending."""
    s = make_server("--log-format", "json", "--max-queued", "1", "--max-concurrent", "1")
    n = 300
    with s.client() as c:
        blocker = submit(c, "blocker", config={"sleep_seconds": 30})["job_id"]
        wait_status(c, blocker, "running")
        submit(c, "queued", config={"sleep_seconds": 30})  # the queue is full now
        for i in range(n):
            assert c.get("/health", headers={"X-Request-ID": f"before-{i}"}).status_code == 200
        r = c.post(RUNS, json={"prompt": "one too many"}, headers={"X-Request-ID": "refused"})
        assert r.status_code == 429
        for i in range(n):
            assert c.get("/health", headers={"X-Request-ID": f"after-{i}"}).status_code == 200

        want = [f"before-{i}" for i in range(n)] + ["refused"] + [f"after-{i}" for i in range(n)]

        def access_ids():
            return [r["request_id"] for r in find(s, msg="request")
                    if r["request_id"] in want]
        wait_until(lambda: len(access_ids()) == len(want), what="every access line")
        assert access_ids() == want
        logged = records(s)
        at = {r.get("request_id"): i for i, r in enumerate(logged) if r["msg"] == "request"}
        warning = [i for i, r in enumerate(logged)
                   if r["level"] == "warning" and r["msg"].startswith("queue full")]
        assert len(warning) == 1, warning
        assert at[f"before-{n - 1}"] < warning[0] < at["refused"]

        # Lines still pending when SIGTERM comes are written before the process ends.
        for i in range(n):
            assert c.get("/health", headers={"X-Request-ID": f"last-{i}"}).status_code == 200
    assert s.terminate() == 0
    logged = records(s)
    last = [(i, r["request_id"]) for i, r in enumerate(logged)
            if r["msg"] == "request" and r["request_id"].startswith("last-")]
    assert [rid for _, rid in last] == [f"last-{i}" for i in range(n)]
    stopped = [i for i, r in enumerate(logged) if r["msg"] == "stopped"]
    assert len(stopped) == 1 and last[-1][0] < stopped[0]


def test_retries_logged(make_server):
    s = make_server("--log-format", "json", "--retry-delay", "0.01")
    with s.client() as c:
        job = submit(c, "x", config={"fail_with": "flaky"}, max_retries=1)["job_id"]
        wait_status(c, job, "failed")
    wait_until(lambda: find(s, msg="job finished", job_id=job), what="the end's log line")
    retry = find(s, msg="job retrying", job_id=job)
    assert len(retry) == 1 and retry[0]["attempt"] == 1 and retry[0]["error"] == "flaky"
    assert find(s, msg="job finished", job_id=job, status="failed", attempts=2)


def test_format_from_environment_and_text_default(make_server, tmp_path):
    js = make_server(env={"RUNQ_LOG_FORMAT": "json"}, db=str(tmp_path / "a.db"))
    with js.client() as c:
        c.get("/health")
    wait_until(lambda: find(js, msg="request", route="/health"), what="an access line")

    text = make_server(db=str(tmp_path / "b.db"))
    with text.client() as c:
        rid = c.get("/health", headers={"X-Request-ID": "abc"}).headers["x-request-id"]
        assert rid == "abc"
    line = wait_until(lambda: next((l for l in text.log if "request_id=abc" in l), None),
                      what="the text access line")
    assert " info request method=GET route=/health status=200 duration_ms=" in line


def test_access_log_off_keeps_job_events(make_server):
    s = make_server("--log-format", "json", "--access-log", "off")
    with s.client() as c:
        job_id = submit(c, "quiet")["job_id"]
        wait_status(c, job_id, "succeeded")
        for _ in range(3):
            assert c.get(f"{RUNS}/{job_id}").status_code == 200
        assert c.get(f"{RUNS}/run_00000000000000000000").status_code == 404
    wait_until(lambda: find(s, msg="job finished", job_id=job_id), what="the end's log line")
    assert s.terminate() == 0
    assert find(s, msg="job submitted", job_id=job_id)
    assert find(s, msg="job started", job_id=job_id)
    assert not find(s, msg="request")  # no access line for any of the requests


def test_access_log_value_is_checked(tmp_path):
    import subprocess
    from conftest import RUNQ_BIN
    p = subprocess.run([RUNQ_BIN, "serve", "--db", str(tmp_path / "x.db"), "--access-log", "maybe"],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode != 0
    assert "--access-log" in p.stderr + p.stdout
