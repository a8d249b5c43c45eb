"""POST /api/v1/runs/{id}/cancel and DELETE /api/v1/runs/{id} (API.md)."""
import time

import pytest

from conftest import (JOB_RECORD_FIELDS, get_status, submit, ts_seconds, wait_status,
                      wait_until)

RUNS = "/api/v1/runs"


def cancel(client, job_id):
    return client.post(f"{RUNS}/{job_id}/cancel")


# --------------------------------------------------------------------------- cancel


def test_cancel_queued_job(make_server):
    s = make_server("--max-concurrent", "1")
    with s.client() as c:
        blocker = submit(c, "b", config={"sleep_seconds": 30})
        wait_status(c, blocker["job_id"], "running")
        job = submit(c, "q")
        r = cancel(c, job["job_id"])
        assert r.status_code == 200, r.text
        body = r.json()
        assert JOB_RECORD_FIELDS <= set(body)
        assert body["job_id"] == job["job_id"]
        assert body["status"] == "cancelled"
        assert body["started_at"] is None
        assert body["completed_at"] is not None
        assert body["retry_after"] is None
        assert body["attempts"] == 0
        assert get_status(c, job["job_id"]) == body
        # it never runs, even once the worker is free
        assert cancel(c, blocker["job_id"]).status_code == 200
        wait_until(lambda: c.get("/health").json()["executor_stats"]["running_jobs"] == 0,
                   what="the worker to be free")
        time.sleep(0.3)
        st = get_status(c, job["job_id"])
        assert st["status"] == "cancelled" and st["attempts"] == 0 and st["started_at"] is None


def test_cancel_running_job_stops_it_promptly(make_server):
    s = make_server("--max-concurrent", "1")
    with s.client() as c:
        job = submit(c, "long", config={"sleep_seconds": 30, "steps": 30})
        nxt = submit(c, "next")
        wait_status(c, job["job_id"], "running")
        t0 = time.monotonic()
        r = cancel(c, job["job_id"])
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["status"] == "cancelled"
        assert body["retry_after"] is None
        assert body["completed_at"] is not None
        assert body["attempts"] == 1
        st = wait_status(c, job["job_id"], timeout=2)
        assert st["status"] == "cancelled"
        assert time.monotonic() - t0 < 2.0
        # the single worker is free again: the queued job starts right after
        n = wait_status(c, nxt["job_id"], timeout=3)
        assert n["status"] == "succeeded"
        assert time.monotonic() - t0 < 3.0
        assert ts_seconds(n["started_at"]) - ts_seconds(st["completed_at"]) < 1.0, (n, st)
        # the cancelled job really stopped: it stays cancelled, no result, no more progress
        p1 = get_status(c, job["job_id"])["progress"]
        time.sleep(1.2)
        st2 = get_status(c, job["job_id"])
        assert st2["status"] == "cancelled"
        assert st2["progress"] == p1
        assert st2["completed_at"] == st["completed_at"]


def test_cancel_cancelled_job_is_200_again(client):
    job = submit(client, "x", config={"sleep_seconds": 30})
    wait_status(client, job["job_id"], "running")
    first = cancel(client, job["job_id"])
    assert first.status_code == 200
    second = cancel(client, job["job_id"])
    assert second.status_code == 200, second.text
    assert second.json()["status"] == "cancelled"
    assert second.json()["completed_at"] == first.json()["completed_at"]


@pytest.mark.parametrize("config,status", [({}, "succeeded"),
                                           ({"fail_with": "nope"}, "failed")])
def test_cancel_finished_job_400(client, config, status):
    job = submit(client, "x", config=config)
    before = wait_status(client, job["job_id"])
    assert before["status"] == status
    r = cancel(client, job["job_id"])
    assert r.status_code == 400
    assert r.json() == {"detail": f"Cannot cancel job with status: {status}"}
    assert get_status(client, job["job_id"]) == before


def test_cancel_timed_out_job_400(client):
    job = submit(client, "x", timeout=1, config={"sleep_seconds": 10})
    wait_status(client, job["job_id"], timeout=5)
    r = cancel(client, job["job_id"])
    assert r.status_code == 400
    assert r.json() == {"detail": "Cannot cancel job with status: failed"}


def test_cancel_404(shared_client):
    r = shared_client.post(f"{RUNS}/run_abcdefabcdef/cancel")
    assert r.status_code == 404
    assert r.json() == {"detail": "Job not found: run_abcdefabcdef"}


def test_cancel_keeps_progress(client):
    job = submit(client, "x", config={"sleep_seconds": 4, "steps": 8})

    def some_progress():
        st = get_status(client, job["job_id"])
        return st if st["progress"]["steps_completed"] >= 2 else None

    wait_until(some_progress, timeout=5)
    body = cancel(client, job["job_id"]).json()
    assert body["status"] == "cancelled"
    assert 0.0 < body["progress"]["percentage"] < 100.0
    assert body["progress"]["steps_completed"] >= 2


# --------------------------------------------------------------------------- delete


@pytest.mark.parametrize("kind", ["succeeded", "failed", "cancelled"])
def test_delete_terminal_job_204_then_404(client, kind):
    if kind == "succeeded":
        job = submit(client, "x")
    elif kind == "failed":
        job = submit(client, "x", config={"fail_with": "e"})
    else:
        job = submit(client, "x", config={"sleep_seconds": 30})
        wait_status(client, job["job_id"], "running")
        cancel(client, job["job_id"])
    jid = job["job_id"]
    assert wait_status(client, jid)["status"] == kind
    r = client.delete(f"{RUNS}/{jid}")
    assert r.status_code == 204, r.text
    assert r.content == b""
    nf = {"detail": f"Job not found: {jid}"}
    for method, path in (("GET", f"{RUNS}/{jid}"), ("GET", f"{RUNS}/{jid}/result"),
                         ("POST", f"{RUNS}/{jid}/cancel"), ("DELETE", f"{RUNS}/{jid}"),
                         ("GET", f"{RUNS}/{jid}/stream")):
        r = client.request(method, path)
        assert r.status_code == 404, (method, path, r.status_code, r.text)
        assert r.json() == nf
    assert client.get(RUNS).json()["total"] == 0
    assert client.get("/stats").json()["total_jobs"] == 0


def test_delete_running_job_400(client):
    job = submit(client, "x", config={"sleep_seconds": 30})
    wait_status(client, job["job_id"], "running")
    r = client.delete(f"{RUNS}/{job['job_id']}")
    assert r.status_code == 400
    assert r.json() == {"detail": "Cannot delete running job. Cancel it first."}
    assert get_status(client, job["job_id"])["status"] == "running"
    cancel(client, job["job_id"])
    assert client.delete(f"{RUNS}/{job['job_id']}").status_code == 204


def test_delete_queued_job_400(make_server):
    s = make_server("--max-concurrent", "1")
    with s.client() as c:
        blocker = submit(c, "b", config={"sleep_seconds": 30})
        wait_status(c, blocker["job_id"], "running")
        job = submit(c, "q")
        r = c.delete(f"{RUNS}/{job['job_id']}")
        assert r.status_code == 400
        assert r.json() == {"detail": "Cannot delete running job. Cancel it first."}
        assert get_status(c, job["job_id"])["status"] == "queued"
        cancel(c, blocker["job_id"])
        assert wait_status(c, job["job_id"])["status"] == "succeeded"


def test_delete_404(shared_client):
    r = shared_client.delete(f"{RUNS}/run_ffffffffffff")
    assert r.status_code == 404
    assert r.json() == {"detail": "Job not found: run_ffffffffffff"}


def test_delete_frees_idempotency_key(client):
    first = submit(client, "x", headers={"Idempotency-Key": "k-del"})
    wait_status(client, first["job_id"])
    # while it exists, a different body conflicts
    r = client.post(RUNS, json={"prompt": "other"}, headers={"Idempotency-Key": "k-del"})
    assert r.status_code == 409
    assert client.delete(f"{RUNS}/{first['job_id']}").status_code == 204
    # once deleted, the key is free: same body -> a brand new job
    again = submit(client, "x", headers={"Idempotency-Key": "k-del"})
    assert again["job_id"] != first["job_id"]
    wait_status(client, again["job_id"])
    assert client.delete(f"{RUNS}/{again['job_id']}").status_code == 204
    # ... and a different body is fine too
    other = submit(client, "other", idempotency_key="k-del")
    assert other["job_id"] not in (first["job_id"], again["job_id"])
    assert client.get(RUNS).json()["total"] == 1


def test_delete_leaves_other_jobs(client):
    a = submit(client, "a")
    b = submit(client, "b")
    wait_status(client, a["job_id"])
    wait_status(client, b["job_id"])
    assert client.delete(f"{RUNS}/{a['job_id']}").status_code == 204
    assert get_status(client, b["job_id"])["status"] == "succeeded"
    body = client.get(RUNS).json()
    assert body["total"] == 1 and [j["job_id"] for j in body["jobs"]] == [b["job_id"]]
