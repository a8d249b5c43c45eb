"""The `runq` command-line client against a real server: output, exit status, env."""
import json
import os
import re
import socket
import subprocess
import time

import pytest

from conftest import RUNQ_BIN

ID_RE = re.compile(r"^run_[0-9a-f]{12,}$")
SLOW = json.dumps({"sleep_seconds": 30})


def runq(*args, env=None, timeout=60):
    """Runs the binary; returns the CompletedProcess (text stdout/stderr)."""
    full_env = dict(os.environ)
    full_env.pop("RUNQ_API_URL", None)
    full_env.pop("RUNQ_API_KEY", None)
    full_env.update(env or {})
    return subprocess.run([RUNQ_BIN, *args], capture_output=True, text=True,
                          env=full_env, timeout=timeout)


def cli(server, *args, **kw):
    return runq(*args, "--api-url", server.url, **kw)


def submit(server, prompt="hello", *args):
    p = cli(server, "submit", prompt, *args)
    assert p.returncode == 0, p.stderr
    job_id = p.stdout.strip()
    assert ID_RE.match(job_id), p.stdout
    return job_id


@pytest.fixture
def closed_url():
    """A URL on a port where nothing listens."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return f"http://127.0.0.1:{port}"


# ---- help and usage ---------------------------------------------------------------------

def test_help_exits_zero_and_lists_commands():
    p = runq("--help")
    assert p.returncode == 0
    for command in ("serve", "submit", "status", "result", "cancel", "delete", "list",
                    "stream", "wait"):
        assert command in p.stdout
    for command in ("submit", "status", "list", "wait", "stream"):
        p = runq(command, "--help")
        assert p.returncode == 0, command
        assert "--json" in p.stdout and "--api-url" in p.stdout
    assert "--recipe-config" in runq("submit", "--help").stdout


@pytest.mark.parametrize("args", [
    ["submit"],                                          # no prompt
    ["submit", "hi", "--config", "{not json"],           # bad JSON
    ["submit", "hi", "--config", "[1, 2]"],              # JSON, not an object
    ["submit", "hi", "--recipe-config", "nope"],
    ["submit", "hi", "--priority", "high"],              # not an int
    ["submit", "hi", "--metadata", "no-equals-sign"],
    ["submit", "hi", "--no-such-flag"],
    ["status"],                                          # no id
    ["wait", "run_000000000000", "--timeout", "soon"],
    ["bogus-command"],
    [],
])
def test_bad_usage_exits_2_without_calling_the_server(args, closed_url):
    # The closed port proves no request was tried: unreachable would be 3.
    p = runq(*args, env={"RUNQ_API_URL": closed_url})
    assert p.returncode == 2, (args, p.stdout, p.stderr)
    assert p.stderr.strip()


def test_api_url_must_be_http():
    p = runq("status", "run_000000000000", "--api-url", "ftp://example.com")
    assert p.returncode == 2
    assert "--api-url" in p.stderr


# ---- unreachable --------------------------------------------------------------------------

@pytest.mark.parametrize("args", [
    ["submit", "hi"], ["status", "run_000000000000"], ["result", "run_000000000000"],
    ["cancel", "run_000000000000"], ["delete", "run_000000000000"], ["list"],
    ["stream", "run_000000000000"], ["wait", "run_000000000000"],
    ["submit", "hi", "--wait", "--json"],
])
def test_unreachable_server_exits_3(args, closed_url):
    p = runq(*args, "--api-url", closed_url)
    assert p.returncode == 3, (p.stdout, p.stderr)
    assert p.stdout == ""
    assert "cannot reach" in p.stderr


# ---- submit -------------------------------------------------------------------------------

def test_submit_prints_only_the_id(server):
    p = cli(server, "submit", "hello there")
    assert p.returncode == 0, p.stderr
    assert ID_RE.match(p.stdout.strip())
    assert p.stdout == p.stdout.strip() + "\n"
    assert server.wait_for_status(p.stdout.strip())["status"] == "succeeded"


def test_submit_json_is_the_servers_202_document(server):
    p = cli(server, "submit", "hi", "--json")
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    assert ID_RE.match(doc["job_id"])
    assert doc["status"] == "queued"
    assert doc["poll_url"] == f"{server.url}/api/v1/runs/{doc['job_id']}"
    assert doc["stream_url"] == f"{server.url}/api/v1/runs/{doc['job_id']}/stream"
    assert doc["created_at"].endswith("Z")


def test_submit_passes_the_request_fields(server):
    job_id = submit(server, "fields", "--session-id", "sess-1", "--timeout", "120",
                    "--priority", "5", "--metadata", "team=core", "--metadata", "k=a=b",
                    "--framework", "praisonai", "--recipe", "r1",
                    "--recipe-config", '{"x": 1}', "--agent-file", "agents.yaml")
    with server.client() as c:
        body = c.get(f"/api/v1/runs/{job_id}").json()
    assert body["session_id"] == "sess-1"
    if "metadata" in body:  # extensions
        assert body["metadata"] == {"team": "core", "k": "a=b"}
    if "priority" in body:
        assert body["priority"] == 5
    if "timeout" in body:
        assert body["timeout"] == 120


def test_submit_idempotency_key_returns_the_same_job(server):
    a = submit(server, "once", "--idempotency-key", "key-1")
    b = submit(server, "once", "--idempotency-key", "key-1")
    assert a == b
    p = cli(server, "submit", "different", "--idempotency-key", "key-1")
    assert p.returncode == 1
    assert "Idempotency key already used" in p.stderr


def test_submit_rejected_by_the_server_exits_1(server):
    # A timeout beyond the server's maximum is a 422.
    p = cli(server, "submit", "hi", "--timeout", "-5")
    assert p.returncode == 1
    assert p.stdout == ""
    assert "timeout" in p.stderr
    p = cli(server, "submit", "hi", "--timeout", "-5", "--json")
    assert p.returncode == 1
    detail = json.loads(p.stdout)["detail"]
    assert isinstance(detail, list) and detail[0]["loc"] == ["body", "timeout"]


def test_submit_wait_prints_the_result(server):
    p = cli(server, "submit", "waited for", "--wait", "--config", '{"sleep_seconds": 0.3}')
    assert p.returncode == 0, p.stderr
    assert p.stdout == "waited for\n"


def test_submit_wait_json_prints_the_final_status(server):
    p = cli(server, "submit", "w", "--wait", "--json")
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    assert doc["status"] == "succeeded"
    assert doc["progress"]["percentage"] == 100.0


def test_submit_wait_failed_job_exits_1(server):
    p = cli(server, "submit", "x", "--wait", "--config", '{"fail_with": "boom"}')
    assert p.returncode == 1
    assert p.stdout == ""
    assert "boom" in p.stderr
    p = cli(server, "submit", "x", "--wait", "--json", "--config", '{"fail_with": "boom"}')
    assert p.returncode == 1
    doc = json.loads(p.stdout)
    assert doc["status"] == "failed" and doc["error"] == "boom"


# ---- status, result -------------------------------------------------------------------------

def test_status_human_and_json(server):
    job_id = submit(server, "st")
    server.wait_for_status(job_id)
    p = cli(server, "status", job_id)
    assert p.returncode == 0, p.stderr
    fields = p.stdout.split()
    assert fields[:3] == [job_id, "succeeded", "100%"]
    p = cli(server, "status", job_id, "--json")
    assert p.returncode == 0
    with server.client() as c:
        assert json.loads(p.stdout) == c.get(f"/api/v1/runs/{job_id}").json()


def test_status_of_a_running_job_shows_its_state(server):
    job_id = submit(server, "slow", "--config", SLOW)
    server.wait_for_status(job_id, ("running",))
    p = cli(server, "status", job_id)
    assert p.returncode == 0
    assert p.stdout.split()[:2] == [job_id, "running"]


def test_result_prints_the_text_raw(server):
    prompt = "line one\n  line two with  spaces"
    job_id = submit(server, prompt)
    server.wait_for_status(job_id)
    p = cli(server, "result", job_id)
    assert p.returncode == 0, p.stderr
    assert p.stdout == prompt + "\n"
    p = cli(server, "result", job_id, "--json")
    doc = json.loads(p.stdout)
    assert doc["result"] == prompt and doc["status"] == "succeeded"
    assert "duration_seconds" in doc


def test_result_of_unknown_job_exits_1_with_detail(server):
    p = cli(server, "result", "run_0123456789ab")
    assert p.returncode == 1
    assert p.stdout == ""
    assert "Job not found: run_0123456789ab" in p.stderr
    p = cli(server, "result", "run_0123456789ab", "--json")
    assert p.returncode == 1
    assert json.loads(p.stdout) == {"detail": "Job not found: run_0123456789ab"}


def test_result_of_failed_and_running_jobs(server):
    failed = submit(server, "f", "--config", '{"fail_with": "kaput"}')
    server.wait_for_status(failed)
    p = cli(server, "result", failed)
    assert p.returncode == 1
    assert "Job failed. No result available." in p.stderr and "kaput" in p.stderr
    slow = submit(server, "s", "--config", SLOW)
    p = cli(server, "result", slow)
    assert p.returncode == 1
    assert "Job is still" in p.stderr


# ---- cancel, delete ---------------------------------------------------------------------------

def test_cancel_human_and_json(server):
    a = submit(server, "a", "--config", SLOW)
    server.wait_for_status(a, ("running",))
    p = cli(server, "cancel", a)
    assert p.returncode == 0, p.stderr
    assert p.stdout.split()[:2] == [a, "cancelled"]
    p = cli(server, "cancel", a, "--json")  # cancelling again answers 200
    assert p.returncode == 0
    assert json.loads(p.stdout)["status"] == "cancelled"

    done = submit(server, "done")
    server.wait_for_status(done)
    p = cli(server, "cancel", done)
    assert p.returncode == 1
    assert "Cannot cancel job with status: succeeded" in p.stderr


def test_delete(server):
    slow = submit(server, "s", "--config", SLOW)
    p = cli(server, "delete", slow)
    assert p.returncode == 1
    assert "Cannot delete running job. Cancel it first." in p.stderr

    job_id = submit(server, "d")
    server.wait_for_status(job_id)
    p = cli(server, "delete", job_id, "--json")
    assert p.returncode == 0, p.stderr
    assert p.stdout == ""
    p = cli(server, "status", job_id)
    assert p.returncode == 1
    assert f"Job not found: {job_id}" in p.stderr

    other = submit(server, "d2")
    server.wait_for_status(other)
    p = cli(server, "delete", other)
    assert p.returncode == 0
    assert other in p.stdout


# ---- list -------------------------------------------------------------------------------------

def test_list_human_and_json(server):
    ids = [submit(server, f"p{i}", "--session-id", "s1") for i in range(3)]
    other = submit(server, "other", "--session-id", "s2")
    for j in ids + [other]:
        server.wait_for_status(j)

    p = cli(server, "list", "--json")
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    assert doc["total"] == 4 and doc["page"] == 1 and doc["page_size"] == 20
    assert [j["job_id"] for j in doc["jobs"]] == [other] + ids[::-1]  # newest first

    p = cli(server, "list", "--json", "--session-id", "s1", "--page-size", "2", "--page", "2")
    doc = json.loads(p.stdout)
    assert doc["total"] == 3 and doc["page"] == 2 and doc["page_size"] == 2
    assert [j["job_id"] for j in doc["jobs"]] == [ids[0]]

    p = cli(server, "list", "--status", "succeeded")
    assert p.returncode == 0
    lines = p.stdout.splitlines()
    assert lines[0].split() == ["JOB_ID", "STATUS", "PROGRESS", "CREATED", "SESSION", "STEP",
                                "PROMPT"]
    rows = [line.split() for line in lines[1:] if line.startswith("run_")]
    assert {r[0] for r in rows} == set(ids + [other])
    assert all(r[1] == "succeeded" for r in rows)
    assert {r[0]: r[-1] for r in rows} == {other: "other", **{j: f"p{i}" for i, j in enumerate(ids)}}


def test_list_prompt_column_is_one_safe_line(server):
    # Control characters (a terminal escape) and line breaks never reach the terminal.
    prompt = "first\nsecond\x1b[31m red " + "x" * 60
    job = submit(server, prompt)
    server.wait_for_status(job)
    p = cli(server, "list")
    assert p.returncode == 0, p.stderr
    line = next(ln for ln in p.stdout.splitlines() if ln.startswith(job))
    assert "\x1b" not in p.stdout
    # 40 characters of it, each run of whitespace or control characters one space.
    assert line.endswith(re.sub(r"[\x00-\x20\x7f]+", " ", prompt)[:40] + "\u2026"), line


def test_list_errors_exit_1(server):
    p = cli(server, "list", "--status", "bogus")
    assert p.returncode == 1
    assert "Invalid status: bogus" in p.stderr
    p = cli(server, "list", "--page-size", "0")
    assert p.returncode == 1


# ---- wait -------------------------------------------------------------------------------------

def test_wait_success_prints_the_result(server):
    job_id = submit(server, "patience", "--config", '{"sleep_seconds": 0.5, "steps": 2}')
    p = cli(server, "wait", job_id)
    assert p.returncode == 0, p.stderr
    assert p.stdout == "patience\n"
    assert p.stderr == ""  # no progress line when stderr is not a terminal
    p = cli(server, "wait", job_id, "--json")
    assert p.returncode == 0
    assert json.loads(p.stdout)["status"] == "succeeded"


def test_wait_failed_job_exits_1(server):
    job_id = submit(server, "x", "--config", '{"fail_with": "boom", "sleep_seconds": 0.2}')
    p = cli(server, "wait", job_id)
    assert p.returncode == 1
    assert "boom" in p.stderr
    p = cli(server, "wait", job_id, "--json")
    assert p.returncode == 1
    assert json.loads(p.stdout)["status"] == "failed"


def test_wait_cancelled_job_exits_1(server):
    job_id = submit(server, "c", "--config", SLOW)
    proc = subprocess.Popen([RUNQ_BIN, "wait", job_id, "--json", "--api-url", server.url],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(0.5)
    with server.client() as c:
        assert c.post(f"/api/v1/runs/{job_id}/cancel").status_code == 200
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 1, err
    assert json.loads(out)["status"] == "cancelled"


def test_wait_timeout_gives_up_with_exit_1(server):
    job_id = submit(server, "t", "--config", SLOW)
    start = time.time()
    p = cli(server, "wait", job_id, "--timeout", "1")
    elapsed = time.time() - start
    assert p.returncode == 1
    assert p.stdout == ""
    assert job_id in p.stderr
    assert 0.9 <= elapsed < 10


def test_wait_unknown_job_exits_1(server):
    p = cli(server, "wait", "run_0123456789ab")
    assert p.returncode == 1
    assert "Job not found" in p.stderr


# ---- stream -----------------------------------------------------------------------------------

def test_stream_json_lines_end_with_result(server):
    job_id = submit(server, "streamed", "--config", '{"sleep_seconds": 0.6, "steps": 3}')
    p = cli(server, "stream", job_id, "--json")
    assert p.returncode == 0, p.stderr
    events = [json.loads(line) for line in p.stdout.splitlines()]
    assert events, p.stdout
    for e in events:
        assert list(e) == ["event", "id", "data"]
        assert isinstance(e["data"], dict)
        assert (e["id"] is None) == (e["event"] == "heartbeat")
    assert events[-1]["event"] == "result"
    assert events[-1]["data"] == {"result": "streamed"}
    names = [e["event"] for e in events]
    assert "status" in names and "progress" in names
    ids = [e["id"] for e in events if e["id"] is not None]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)


def test_stream_of_a_finished_job_replays(server):
    job_id = submit(server, "replayed")
    server.wait_for_status(job_id)
    p = cli(server, "stream", job_id, "--json")
    assert p.returncode == 0
    assert json.loads(p.stdout.splitlines()[-1])["data"]["result"] == "replayed"
    p = cli(server, "stream", job_id)  # human: the result on stdout
    assert p.returncode == 0
    assert p.stdout == "replayed\n"


def test_stream_failed_job_ends_with_error(server):
    job_id = submit(server, "x", "--config", '{"fail_with": "boom"}')
    p = cli(server, "stream", job_id, "--json")
    assert p.returncode == 1
    last = json.loads(p.stdout.splitlines()[-1])
    assert last["event"] == "error" and last["data"]["error"] == "boom"


def test_stream_unknown_job_exits_1(server):
    p = cli(server, "stream", "run_0123456789ab")
    assert p.returncode == 1
    assert "Job not found" in p.stderr


# ---- configuration ------------------------------------------------------------------------------

def test_api_url_from_environment_and_flag_wins(server, closed_url):
    p = runq("submit", "via env", env={"RUNQ_API_URL": server.url})
    assert p.returncode == 0, p.stderr
    job_id = p.stdout.strip()
    assert ID_RE.match(job_id)
    server.wait_for_status(job_id)
    # The flag wins over the environment.
    p = runq("result", job_id, "--api-url", server.url, env={"RUNQ_API_URL": closed_url})
    assert p.returncode == 0, p.stderr
    assert p.stdout == "via env\n"
    p = runq("result", job_id, "--api-url", closed_url, env={"RUNQ_API_URL": server.url})
    assert p.returncode == 3
