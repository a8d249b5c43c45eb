"""Job retries: max_retries re-runs a failed job with backoff; attempts counts starts."""
import time

from conftest import collect_stream, submit, wait_status


def test_failed_job_is_retried_then_fails_with_its_error(make_server):
    server = make_server("--retry-delay", "0.1")
    with server.client() as c:
        t0 = time.time()
        job_id = submit(c, "x", config={"fail_with": "still broken"}, max_retries=2)["job_id"]
        final = wait_status(c, job_id)
        took = time.time() - t0
    assert final["status"] == "failed"
    assert final["attempts"] == 3
    assert final["error"] == "still broken"
    # backoff: ~0.1 s then ~0.2 s, jitter down to half of each
    assert took >= 0.15, took


def test_no_retry_unless_asked(server, client):
    job_id = submit(client, "x", config={"fail_with": "once"})["job_id"]
    final = wait_status(client, job_id)
    assert final["status"] == "failed"
    assert final["attempts"] == 1


def test_timeouts_are_retried_too(make_server):
    server = make_server("--retry-delay", "0.05")
    with server.client() as c:
        job_id = submit(c, "x", config={"sleep_seconds": 5}, timeout=1, max_retries=1)["job_id"]
        final = wait_status(c, job_id, timeout=15)
    assert final["status"] == "failed"
    assert final["error"] == "Job timed out after 1s"
    assert final["attempts"] == 2


def test_server_caps_max_retries(make_server):
    server = make_server("--retry-delay", "0.05", "--max-retries", "1")
    with server.client() as c:
        job_id = submit(c, "x", config={"fail_with": "no"}, max_retries=5)["job_id"]
        final = wait_status(c, job_id)
    assert final["status"] == "failed"
    assert final["attempts"] == 2


def test_stream_shows_the_retry_and_ends_once(make_server):
    server = make_server("--retry-delay", "0.05")
    with server.client() as c:
        job_id = submit(c, "x", config={"fail_with": "nope"}, max_retries=1)["job_id"]
        wait_status(c, job_id)
        _, events = collect_stream(c, job_id)
    kinds = [(e.event, e.data.get("status")) for e in events]
    assert kinds == [("status", "queued"), ("status", "running"), ("status", "queued"),
                     ("status", "running"), ("error", None)], kinds
    retry = events[2].data
    assert retry["error"] == "nope"
    assert retry["retry_in"] > 0
    ids = [e.id_int for e in events]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)


def test_cancel_during_retry_backoff(make_server):
    server = make_server("--retry-delay", "5")
    with server.client() as c:
        job_id = submit(c, "x", config={"fail_with": "nope"}, max_retries=3)["job_id"]
        deadline = time.time() + 10
        while True:
            st = c.get(f"/api/v1/runs/{job_id}").json()
            if st["attempts"] == 1 and st["status"] == "queued":
                break
            assert time.time() < deadline, st
            time.sleep(0.01)
        r = c.post(f"/api/v1/runs/{job_id}/cancel")
        assert r.status_code == 200
        assert r.json()["status"] == "cancelled"
        time.sleep(0.3)
        assert c.get(f"/api/v1/runs/{job_id}").json()["status"] == "cancelled"
