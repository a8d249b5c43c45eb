"""/health, /stats, unknown paths (404) and wrong methods (405) (API.md "Service")."""
import os
import re

import pytest

from conftest import STATUSES, STORE, RunqServer, submit, wait_status, wait_until

RUNS = "/api/v1/runs"


def health(client):
    r = client.get("/health")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/json")
    return r.json()


def stats(client):
    r = client.get("/stats")
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"total_jobs", "by_status", "executor"}, body
    assert set(body["by_status"]) <= set(STATUSES), body
    assert all(isinstance(v, int) for v in body["by_status"].values())
    return body


def by_status(body, status):
    return body["by_status"].get(status, 0)


def test_health_exact_defaults(client):
    body = health(client)
    expected = {
        "status": "healthy", "store": STORE, "auth_required": False,
        "executor_stats": {"running_jobs": 0, "queued_jobs": 0, "max_concurrent": 10,
                           "default_timeout": 3600, "shutdown": False}}
    if STORE == "postgresql":  # a node of a cluster says which one it is
        assert re.fullmatch(r".+:\d+", body["node"]), body  # hostname:pid
        expected["node"] = body["node"]
    assert body == expected


def test_health_reflects_flags(make_server):
    s = make_server("--max-concurrent", "3", "--default-timeout", "42")
    with s.client() as c:
        ex = health(c)["executor_stats"]
        assert ex == {"running_jobs": 0, "queued_jobs": 0, "max_concurrent": 3,
                      "default_timeout": 42, "shutdown": False}


def test_health_counts_running_and_queued(make_server):
    s = make_server("--max-concurrent", "1")
    with s.client() as c:
        blocker = submit(c, "b", config={"sleep_seconds": 30})
        wait_status(c, blocker["job_id"], "running")
        q = [submit(c, f"q{i}") for i in range(2)]
        ex = health(c)["executor_stats"]
        assert (ex["running_jobs"], ex["queued_jobs"]) == (1, 2), ex
        c.post(f"{RUNS}/{q[0]['job_id']}/cancel")
        ex = health(c)["executor_stats"]
        assert (ex["running_jobs"], ex["queued_jobs"]) == (1, 1), ex
        c.post(f"{RUNS}/{blocker['job_id']}/cancel")
        wait_status(c, q[1]["job_id"])
        wait_until(lambda: health(c)["executor_stats"]["running_jobs"] == 0, timeout=3)
        assert health(c)["executor_stats"]["queued_jobs"] == 0


@pytest.mark.sqlite_only
def test_health_with_memory_db():
    s = RunqServer(":memory:").start()
    try:
        with s.client() as c:
            body = health(c)
            assert body["status"] == "healthy" and body["store"] == "sqlite"
            job = submit(c, "mem")
            assert wait_status(c, job["job_id"])["status"] == "succeeded"
    finally:
        s.terminate(10)


def test_stats_empty(client):
    body = stats(client)
    assert body["total_jobs"] == 0
    for s in STATUSES:
        assert by_status(body, s) == 0


def test_stats_numbers(make_server):
    s = make_server("--max-concurrent", "1")
    with s.client() as c:
        for i in range(3):
            wait_status(c, submit(c, f"ok{i}")["job_id"])
        for i in range(2):
            wait_status(c, submit(c, f"bad{i}", config={"fail_with": "x"})["job_id"])
        blocker = submit(c, "b", config={"sleep_seconds": 30})
        wait_status(c, blocker["job_id"], "running")
        queued = [submit(c, f"q{i}") for i in range(4)]
        c.post(f"{RUNS}/{queued[0]['job_id']}/cancel")
        body = stats(c)
        assert body["total_jobs"] == 10
        expected = {"succeeded": 3, "failed": 2, "running": 1, "queued": 3, "cancelled": 1}
        for st, n in expected.items():
            assert by_status(body, st) == n, (st, body)
        assert sum(body["by_status"].values()) == body["total_jobs"]
        # deleting removes it from the numbers
        done = c.get(RUNS, params={"status": "succeeded"}).json()["jobs"][0]["job_id"]
        assert c.delete(f"{RUNS}/{done}").status_code == 204
        body = stats(c)
        assert body["total_jobs"] == 9 and by_status(body, "succeeded") == 2
        c.post(f"{RUNS}/{blocker['job_id']}/cancel")


@pytest.mark.parametrize("method,path", [
    ("GET", "/nope"), ("GET", "/api/v1"), ("GET", "/ui/nope.js"), ("GET", "/ui/a/b"), ("GET", "/api/v1/nope"),
    ("POST", "/nope"), ("GET", "/api/v1/runs/x/y/z"), ("GET", "/api/v2/runs"),
    ("DELETE", "/api/v1/runs/x/result/extra"), ("GET", "/healthz"),
])
def test_unknown_path_404(shared_client, method, path):
    r = shared_client.request(method, path)
    assert r.status_code == 404, (method, path, r.status_code, r.text)
    assert r.headers["content-type"].startswith("application/json")
    assert r.json() == {"detail": "Not Found"}


def allow_set(r):
    return {m.strip().upper() for m in r.headers["allow"].split(",") if m.strip()}


@pytest.mark.parametrize("method,path,allowed", [
    ("PUT", RUNS, {"GET", "POST"}),
    ("DELETE", RUNS, {"GET", "POST"}),
    ("PATCH", f"{RUNS}/run_000000000000", {"GET", "DELETE"}),
    ("POST", f"{RUNS}/run_000000000000", {"GET", "DELETE"}),
    ("GET", f"{RUNS}/run_000000000000/cancel", {"POST"}),
    ("DELETE", f"{RUNS}/run_000000000000/cancel", {"POST"}),
    ("POST", f"{RUNS}/run_000000000000/result", {"GET"}),
    ("POST", f"{RUNS}/run_000000000000/stream", {"GET"}),
    ("POST", "/health", {"GET"}),
    ("DELETE", "/stats", {"GET"}),
])
def test_wrong_method_405(shared_client, method, path, allowed):
    r = shared_client.request(method, path)
    assert r.status_code == 405, (method, path, r.status_code, r.text)
    assert r.json() == {"detail": "Method Not Allowed"}
    got = allow_set(r)
    assert allowed <= got <= allowed | {"HEAD", "OPTIONS"}, r.headers["allow"]


def test_405_does_not_create_or_touch_jobs(client):
    job = submit(client, "x")
    wait_status(client, job["job_id"])
    assert client.put(f"{RUNS}/{job['job_id']}").status_code == 405
    assert client.get(f"{RUNS}/{job['job_id']}/cancel").status_code == 405
    assert client.put(RUNS, json={"prompt": "y"}).status_code == 405
    assert client.get(RUNS).json()["total"] == 1
    assert client.get(f"{RUNS}/{job['job_id']}").json()["status"] == "succeeded"


def test_keep_alive_many_requests_one_connection(client):
    for i in range(50):
        assert client.get("/health").status_code == 200
    job = submit(client, "ka")
    assert wait_status(client, job["job_id"])["status"] == "succeeded"


def test_logs_listening_line(server):
    assert any(f"listening on {server.url}" in line for line in server.log), server.log
    assert server.url.startswith("http://127.0.0.1:")


def test_io_threads_follow_the_cpus_runq_may_use(make_server):
    # --io-threads 0 (the default) counts the CPUs of runq's affinity mask (and cgroup
    # quota), not the host's: pinned to one CPU, one I/O thread.
    cpus = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(cpus)})
    try:
        pinned = make_server()
    finally:
        os.sched_setaffinity(0, cpus)
    started = next(line for line in pinned.log if "listening on http" in line)
    assert "10 workers, 1 I/O thread)" in started, started
    chosen = make_server("--io-threads", "3")
    started = next(line for line in chosen.log if "listening on http" in line)
    assert "3 I/O threads)" in started, started
