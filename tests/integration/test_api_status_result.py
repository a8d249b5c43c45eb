"""GET /api/v1/runs/{id} and /result, and ?wait=N on both (API.md + the seed page)."""
import threading
import time

import pytest

from conftest import (JOB_EXTENSION_FIELDS, JOB_RECORD_FIELDS, PROGRESS_FIELDS, TS_RE,
                      get_status, is_float_token, json_number_token, parse_ts,
                      submit, ts_seconds, wait_status, wait_until)

RUNS = "/api/v1/runs"


def check_record_shape(st):
    assert JOB_RECORD_FIELDS | JOB_EXTENSION_FIELDS <= set(st), sorted(st)
    assert set(st["progress"]) == PROGRESS_FIELDS, st["progress"]
    assert isinstance(st["progress"]["percentage"], float)
    assert isinstance(st["progress"]["steps_completed"], int)
    assert st["status"] in ("queued", "running", "succeeded", "failed", "cancelled")
    assert TS_RE.match(st["created_at"])
    for k in ("started_at", "completed_at"):
        assert st[k] is None or TS_RE.match(st[k]), (k, st[k])
    assert isinstance(st["attempts"], int)
    assert isinstance(st["priority"], int)
    assert isinstance(st["metadata"], dict)
    assert isinstance(st["timeout"], int)


# --------------------------------------------------------------------------- status


def test_status_of_succeeded_job_every_field(client):
    job = submit(client, "hello there", session_id="s-1", priority=7,
                 metadata={"team": "qa"}, timeout=30)
    st = wait_status(client, job["job_id"])
    check_record_shape(st)
    assert st["job_id"] == job["job_id"]
    assert st["status"] == "succeeded"
    assert st["created_at"] == job["created_at"]
    assert st["agent_id"] == "echo"
    assert st["run_id"] is None or isinstance(st["run_id"], str)
    assert st["session_id"] == "s-1"
    assert st["error"] is None
    assert st["retry_after"] is None
    assert st["priority"] == 7
    assert st["metadata"] == {"team": "qa"}
    assert st["attempts"] == 1
    assert st["timeout"] == 30
    assert st["progress"]["percentage"] == 100.0
    created, started, completed = (ts_seconds(st[k]) for k in
                                   ("created_at", "started_at", "completed_at"))
    assert created <= started <= completed
    assert completed - created < 5


def test_status_percentage_100_is_a_float_on_the_wire(client):
    job = submit(client, "x")
    wait_status(client, job["job_id"])
    r = client.get(f"{RUNS}/{job['job_id']}")
    assert r.headers["content-type"].startswith("application/json")
    assert json_number_token(r.text, "percentage") == "100.0", r.text


def test_status_defaults(client):
    job = submit(client, "x")
    st = wait_status(client, job["job_id"])
    assert st["priority"] == 0
    assert st["metadata"] == {}
    assert st["timeout"] == 3600
    assert st["session_id"] is None


def test_status_queued_and_running(make_server):
    s = make_server("--max-concurrent", "1")
    with s.client() as c:
        blocker = submit(c, "block", config={"sleep_seconds": 30})
        queued = submit(c, "wait", session_id="q")
        running = wait_status(c, blocker["job_id"], "running")
        check_record_shape(running)
        assert running["retry_after"] == 5
        assert running["started_at"] is not None and running["completed_at"] is None
        assert running["attempts"] == 1
        assert running["error"] is None
        assert running["agent_id"] == "echo"
        assert parse_ts(running["started_at"]) >= parse_ts(running["created_at"])

        r = c.get(f"{RUNS}/{queued['job_id']}")
        st = r.json()
        check_record_shape(st)
        assert st["status"] == "queued"
        assert st["retry_after"] == 2
        assert st["started_at"] is None and st["completed_at"] is None
        assert st["attempts"] == 0
        assert st["error"] is None
        assert st["progress"]["percentage"] == 0.0
        assert st["progress"]["steps_completed"] == 0
        assert json_number_token(r.text, "percentage") == "0.0", r.text
        c.post(f"{RUNS}/{blocker['job_id']}/cancel")


def test_status_progress_while_running(client):
    job = submit(client, "steps", config={"sleep_seconds": 2.0, "steps": 4})
    def running_with_a_step():
        s = get_status(client, job["job_id"])
        return s if s["status"] == "running" and s["progress"]["steps_completed"] >= 1 else None

    st = wait_until(running_with_a_step, timeout=5, what="a progress step")
    p = st["progress"]
    assert 0.0 < p["percentage"] < 100.0
    assert p["steps_total"] == 4
    assert isinstance(p["current_step"], str)
    assert 1 <= p["steps_completed"] <= 4
    final = wait_status(client, job["job_id"])
    assert final["status"] == "succeeded"
    assert final["progress"]["percentage"] == 100.0
    assert final["progress"]["steps_completed"] == 4
    assert final["progress"]["steps_total"] == 4


def test_status_of_failed_job(client):
    job = submit(client, "x", config={"fail_with": "boom: it broke"})
    st = wait_status(client, job["job_id"])
    check_record_shape(st)
    assert st["status"] == "failed"
    assert st["error"] == "boom: it broke"
    assert st["retry_after"] is None
    assert st["completed_at"] is not None and st["started_at"] is not None
    assert st["progress"]["percentage"] < 100.0  # failure keeps the last value
    assert st["attempts"] == 1


def test_status_404(shared_client):
    for job_id in ("run_000000000000", "run_deadbeefdeadbeef", "nope"):
        r = shared_client.get(f"{RUNS}/{job_id}")
        assert r.status_code == 404
        assert r.json() == {"detail": f"Job not found: {job_id}"}


# --------------------------------------------------------------------------- result


def test_result_200_exact(client):
    prompt = "Line one\nLine \"two\"\ttab \\ back \u00e9\u4e2d\U0001F680 \u0001 end"
    job = submit(client, prompt, config={"sleep_seconds": 0.3})
    st = wait_status(client, job["job_id"])
    r = client.get(f"{RUNS}/{job['job_id']}/result")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert {"job_id", "status", "result", "duration_seconds", "created_at",
            "completed_at", "started_at", "error"} <= set(body), body
    assert body["job_id"] == job["job_id"]
    assert body["status"] == "succeeded"
    assert body["result"] == prompt
    assert body["error"] is None
    assert body["created_at"] == st["created_at"] == job["created_at"]
    assert body["started_at"] == st["started_at"]
    assert body["completed_at"] == st["completed_at"]
    assert isinstance(body["duration_seconds"], float)
    assert is_float_token(json_number_token(r.text, "duration_seconds")), r.text
    expected = ts_seconds(body["completed_at"]) - ts_seconds(body["started_at"])
    assert abs(body["duration_seconds"] - expected) < 0.002, (body, expected)
    assert 0.3 <= body["duration_seconds"] < 2.0


def test_result_of_instant_job_duration_is_float(client):
    job = submit(client, "fast")
    wait_status(client, job["job_id"])
    r = client.get(f"{RUNS}/{job['job_id']}/result")
    assert r.status_code == 200
    assert r.json()["result"] == "fast"
    assert is_float_token(json_number_token(r.text, "duration_seconds")), r.text
    assert 0.0 <= r.json()["duration_seconds"] < 1.0


def test_result_of_big_prompt(client):
    prompt = "".join(chr(0x20 + (i % 90)) for i in range(200_000))
    job = submit(client, prompt)
    wait_status(client, job["job_id"])
    assert client.get(f"{RUNS}/{job['job_id']}/result").json()["result"] == prompt


def test_result_400_running(client):
    job = submit(client, "x", config={"sleep_seconds": 30})
    wait_status(client, job["job_id"], "running")
    r = client.get(f"{RUNS}/{job['job_id']}/result")
    assert r.status_code == 400
    assert r.json() == {"detail": "Job is still running. Current status: running"}
    client.post(f"{RUNS}/{job['job_id']}/cancel")


def test_result_400_queued(make_server):
    s = make_server("--max-concurrent", "1")
    with s.client() as c:
        blocker = submit(c, "x", config={"sleep_seconds": 30})
        wait_status(c, blocker["job_id"], "running")
        job = submit(c, "y")
        r = c.get(f"{RUNS}/{job['job_id']}/result")
        assert r.status_code == 400
        assert r.json() == {"detail": "Job is still queued. Current status: queued"}
        c.post(f"{RUNS}/{blocker['job_id']}/cancel")


def test_result_400_failed_with_error(client):
    job = submit(client, "x", config={"fail_with": "Agent execution timeout"})
    wait_status(client, job["job_id"])
    r = client.get(f"{RUNS}/{job['job_id']}/result")
    assert r.status_code == 400
    assert r.json() == {"detail": "Job failed. No result available.",
                        "error": "Agent execution timeout"}


def test_result_400_cancelled(client):
    job = submit(client, "x", config={"sleep_seconds": 30})
    wait_status(client, job["job_id"], "running")
    assert client.post(f"{RUNS}/{job['job_id']}/cancel").status_code == 200
    r = client.get(f"{RUNS}/{job['job_id']}/result")
    assert r.status_code == 400
    body = r.json()
    assert set(body) == {"detail", "error"}, body
    assert body["detail"] == "Job was cancelled. No result available."
    assert body["error"] is None or isinstance(body["error"], str)
    assert body["error"] == get_status(client, job["job_id"])["error"]


def test_result_404(shared_client):
    r = shared_client.get(f"{RUNS}/run_0123456789ab/result")
    assert r.status_code == 404
    assert r.json() == {"detail": "Job not found: run_0123456789ab"}


# --------------------------------------------------------------------------- ?wait=N


@pytest.mark.parametrize("endpoint", ["", "/result"])
def test_wait_returns_as_soon_as_terminal(client, endpoint):
    job = submit(client, "waited", config={"sleep_seconds": 0.5})
    t0 = time.monotonic()
    r = client.get(f"{RUNS}/{job['job_id']}{endpoint}", params={"wait": 10})
    elapsed = time.monotonic() - t0
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "succeeded"
    if endpoint:
        assert r.json()["result"] == "waited"
    assert 0.3 <= elapsed < 1.5, elapsed


@pytest.mark.parametrize("endpoint,code", [("", 200), ("/result", 400)])
def test_wait_times_out_at_n(client, endpoint, code):
    job = submit(client, "x", config={"sleep_seconds": 30})
    wait_status(client, job["job_id"], "running")
    t0 = time.monotonic()
    r = client.get(f"{RUNS}/{job['job_id']}{endpoint}", params={"wait": 1})
    elapsed = time.monotonic() - t0
    assert r.status_code == code, r.text
    if endpoint:
        assert r.json() == {"detail": "Job is still running. Current status: running"}
    else:
        assert r.json()["status"] == "running"
    assert 0.9 <= elapsed < 1.8, elapsed
    client.post(f"{RUNS}/{job['job_id']}/cancel")


def test_wait_on_terminal_job_is_immediate(client):
    job = submit(client, "x")
    wait_status(client, job["job_id"])
    for endpoint in ("", "/result"):
        t0 = time.monotonic()
        r = client.get(f"{RUNS}/{job['job_id']}{endpoint}", params={"wait": 60})
        assert r.status_code == 200
        assert time.monotonic() - t0 < 0.5


def test_wait_zero_is_immediate(client):
    job = submit(client, "x", config={"sleep_seconds": 30})
    wait_status(client, job["job_id"], "running")
    t0 = time.monotonic()
    r = client.get(f"{RUNS}/{job['job_id']}", params={"wait": 0})
    assert r.status_code == 200 and r.json()["status"] == "running"
    assert time.monotonic() - t0 < 0.5
    client.post(f"{RUNS}/{job['job_id']}/cancel")


def test_wait_ends_on_cancel(server, client):
    job = submit(client, "x", config={"sleep_seconds": 30})
    wait_status(client, job["job_id"], "running")
    out = {}

    def waiter():
        with server.client() as c:
            t0 = time.monotonic()
            r = c.get(f"{RUNS}/{job['job_id']}", params={"wait": 20})
            out["elapsed"] = time.monotonic() - t0
            out["status"] = r.json()["status"]

    t = threading.Thread(target=waiter)
    t.start()
    time.sleep(0.3)
    assert client.post(f"{RUNS}/{job['job_id']}/cancel").status_code == 200
    t.join(10)
    assert out["status"] == "cancelled"
    assert out["elapsed"] < 1.5, out


def test_wait_on_queued_job_follows_it_to_the_end(make_server):
    s = make_server("--max-concurrent", "1")
    with s.client() as c:
        blocker = submit(c, "b", config={"sleep_seconds": 0.5})
        job = submit(c, "q")
        t0 = time.monotonic()
        r = c.get(f"{RUNS}/{job['job_id']}/result", params={"wait": 10})
        assert r.status_code == 200, r.text
        assert r.json()["result"] == "q"
        assert time.monotonic() - t0 < 2.0
        assert get_status(c, blocker["job_id"])["status"] == "succeeded"


@pytest.mark.parametrize("endpoint", ["", "/result"])
@pytest.mark.parametrize("wait", ["61", "-1", "abc", "1.5x", "99999999999999999999"])
def test_wait_out_of_range_422(shared_client, endpoint, wait):
    job = submit(shared_client, "x")
    r = shared_client.get(f"{RUNS}/{job['job_id']}{endpoint}", params={"wait": wait})
    assert r.status_code == 422, (r.status_code, r.text)
    detail = r.json()["detail"]
    assert isinstance(detail, list) and detail[0]["loc"] == ["query", "wait"], detail


@pytest.mark.parametrize("endpoint", ["", "/result"])
def test_wait_on_unknown_job_is_404_at_once(shared_client, endpoint):
    t0 = time.monotonic()
    r = shared_client.get(f"{RUNS}/run_aaaaaaaaaaaa{endpoint}", params={"wait": 5})
    assert r.status_code == 404
    assert r.json() == {"detail": "Job not found: run_aaaaaaaaaaaa"}
    assert time.monotonic() - t0 < 1.0


def test_many_concurrent_waiters(server, client):
    job = submit(client, "x", config={"sleep_seconds": 0.5})
    results = []

    def waiter():
        with server.client() as c:
            results.append(c.get(f"{RUNS}/{job['job_id']}/result",
                                 params={"wait": 10}).status_code)

    threads = [threading.Thread(target=waiter) for _ in range(20)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert results == [200] * 20
    assert time.monotonic() - t0 < 3.0
