"""The scheduler: priority, FIFO within a priority, --max-concurrent, per-job timeout."""
import time

from conftest import get_status, submit, ts_seconds, wait_status, wait_until

RUNS = "/api/v1/runs"


def start_order(client, ids):
    sts = [wait_status(client, j) for j in ids]
    assert all(s["status"] == "succeeded" for s in sts), sts
    return [s["job_id"] for s in sorted(sts, key=lambda s: (ts_seconds(s["started_at"])))]


def block(client, seconds=30):
    """Occupies the (only) worker; by default until release() however slow the build."""
    blocker = submit(client, "blocker", config={"sleep_seconds": seconds})
    wait_status(client, blocker["job_id"], "running")
    return blocker


def release(client, blocker):
    assert client.post(f"{RUNS}/{blocker['job_id']}/cancel").status_code == 200


def test_priority_order(make_server):
    s = make_server("--max-concurrent", "1")
    with s.client() as c:
        blocker = block(c)
        low = submit(c, "low", priority=-5, config={"sleep_seconds": 0.02})["job_id"]
        high = submit(c, "high", priority=10, config={"sleep_seconds": 0.02})["job_id"]
        normal = submit(c, "normal", config={"sleep_seconds": 0.02})["job_id"]
        release(c, blocker)
        assert start_order(c, [low, high, normal]) == [high, normal, low]
        b = wait_status(c, blocker["job_id"])
        for j in (low, high, normal):
            assert ts_seconds(get_status(c, j)["started_at"]) >= ts_seconds(b["completed_at"])


def test_priority_extremes(make_server):
    s = make_server("--max-concurrent", "1")
    with s.client() as c:
        blocker = block(c)
        ids = {p: submit(c, f"p{p}", priority=p)["job_id"] for p in (0, -100, 100, 1, -1)}
        release(c, blocker)
        order = start_order(c, list(ids.values()))
        assert order == [ids[100], ids[1], ids[0], ids[-1], ids[-100]]


def test_fifo_within_a_priority(make_server):
    s = make_server("--max-concurrent", "1")
    with s.client() as c:
        blocker = block(c)
        ids = [submit(c, f"f{i}", priority=3)["job_id"] for i in range(8)]
        release(c, blocker)
        assert start_order(c, ids) == ids


def test_priority_then_fifo_mixed(make_server):
    s = make_server("--max-concurrent", "1")
    with s.client() as c:
        blocker = block(c)
        plan = [("a0", 0), ("b5", 5), ("c0", 0), ("d5", 5), ("e-1", -1), ("f5", 5), ("g0", 0)]
        ids = {name: submit(c, name, priority=p)["job_id"] for name, p in plan}
        release(c, blocker)
        order = start_order(c, list(ids.values()))
        names = {v: k for k, v in ids.items()}
        assert [names[j] for j in order] == ["b5", "d5", "f5", "a0", "c0", "g0", "e-1"]


def test_max_concurrent_is_respected(make_server):
    s = make_server("--max-concurrent", "3")
    with s.client() as c:
        ids = [submit(c, f"c{i}", config={"sleep_seconds": 0.6})["job_id"] for i in range(7)]
        seen_running = []
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            ex = c.get("/health").json()["executor_stats"]
            seen_running.append(ex["running_jobs"])
            listed = c.get(RUNS, params={"status": "running"}).json()["total"]
            assert listed <= 3, listed
            if c.get("/stats").json()["by_status"].get("succeeded", 0) == 7:
                break
            time.sleep(0.02)
        assert max(seen_running) == 3, seen_running
        sts = [wait_status(c, j) for j in ids]
        # no instant has more than 3 jobs between started_at and completed_at
        points = []
        for st in sts:
            points.append((ts_seconds(st["started_at"]), 1))
            points.append((ts_seconds(st["completed_at"]), -1))
        cur = peak = 0
        for _, d in sorted(points, key=lambda p: (p[0], p[1])):
            cur += d
            peak = max(peak, cur)
        assert peak == 3, sts
        # the first three started together, at once
        starts = sorted(ts_seconds(st["started_at"]) for st in sts)
        assert starts[2] - starts[0] < 0.45
        assert starts[3] - starts[0] >= 0.5


def test_all_workers_used(make_server):
    s = make_server("--max-concurrent", "4")
    with s.client() as c:
        ids = [submit(c, f"w{i}", config={"sleep_seconds": 1.0})["job_id"] for i in range(4)]
        sts = [wait_status(c, j) for j in ids]
        # All four ran at the same time: each started before any ended.
        assert max(ts_seconds(st["started_at"]) for st in sts) < min(
            ts_seconds(st["completed_at"]) for st in sts), sts


def test_timeout_fails_job_promptly(client):
    t0 = time.monotonic()
    job = submit(client, "x", timeout=1, config={"sleep_seconds": 10})
    st = wait_status(client, job["job_id"], timeout=5)
    elapsed = time.monotonic() - t0
    assert st["status"] == "failed"
    assert st["error"] == "Job timed out after 1s"
    assert st["timeout"] == 1
    assert st["retry_after"] is None
    assert st["attempts"] == 1
    assert 0.9 <= elapsed < 3.0, elapsed
    ran = ts_seconds(st["completed_at"]) - ts_seconds(st["started_at"])
    assert 0.95 <= ran < 2.0, ran
    r = client.get(f"{RUNS}/{job['job_id']}/result")
    assert r.status_code == 400
    assert r.json() == {"detail": "Job failed. No result available.",
                        "error": "Job timed out after 1s"}


def test_timeout_message_uses_the_jobs_timeout(client):
    job = submit(client, "x", timeout=2, config={"sleep_seconds": 10})
    st = wait_status(client, job["job_id"], timeout=6)
    assert st["error"] == "Job timed out after 2s"


def test_default_timeout_applies(make_server):
    s = make_server("--default-timeout", "1")
    with s.client() as c:
        job = submit(c, "x", config={"sleep_seconds": 10})
        st = wait_status(c, job["job_id"], timeout=5)
        assert st["status"] == "failed"
        assert st["error"] == "Job timed out after 1s"
        assert st["timeout"] == 1


def test_job_finishing_before_timeout_succeeds(client):
    job = submit(client, "x", timeout=2, config={"sleep_seconds": 0.5})
    st = wait_status(client, job["job_id"], timeout=5)
    assert st["status"] == "succeeded" and st["error"] is None


def test_timeout_counts_running_time_not_queued_time(make_server):
    s = make_server("--max-concurrent", "1")
    with s.client() as c:
        block(c, 1.5)
        job = submit(c, "q", timeout=1, config={"sleep_seconds": 0.3})
        st = wait_status(c, job["job_id"], timeout=6)
        assert st["status"] == "succeeded", st


def test_timed_out_job_frees_its_worker(make_server):
    s = make_server("--max-concurrent", "1")
    with s.client() as c:
        slow = submit(c, "slow", timeout=1, config={"sleep_seconds": 30})
        nxt = submit(c, "next")
        a = wait_status(c, slow["job_id"], timeout=5)
        b = wait_status(c, nxt["job_id"], timeout=5)
        assert a["status"] == "failed" and b["status"] == "succeeded"
        assert ts_seconds(b["started_at"]) - ts_seconds(a["completed_at"]) < 1.0


def test_cancel_running_frees_worker_for_next_in_priority_order(make_server):
    s = make_server("--max-concurrent", "1")
    with s.client() as c:
        long = submit(c, "long", config={"sleep_seconds": 30})
        wait_status(c, long["job_id"], "running")
        lo = submit(c, "lo", priority=-1)["job_id"]
        hi = submit(c, "hi", priority=1)["job_id"]
        t0 = time.monotonic()
        assert c.post(f"{RUNS}/{long['job_id']}/cancel").status_code == 200
        assert start_order(c, [lo, hi]) == [hi, lo]
        assert time.monotonic() - t0 < 3.0


def test_queue_drains_completely(make_server):
    s = make_server("--max-concurrent", "2")
    with s.client() as c:
        ids = [submit(c, f"d{i}")["job_id"] for i in range(60)]
        wait_until(lambda: c.get("/stats").json()["by_status"].get("succeeded", 0) == 60,
                   timeout=15)
        for j in ids[::10]:
            assert c.get(f"{RUNS}/{j}/result").json()["result"] == f"d{ids.index(j)}"
        ex = c.get("/health").json()["executor_stats"]
        assert ex["running_jobs"] == 0 and ex["queued_jobs"] == 0
