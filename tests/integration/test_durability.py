"""Durability: every 202'd job survives kill -9; queued jobs run after a restart; jobs
that were running are re-queued and run again (attempts counts each start)."""
import threading
import time

import httpx
import pytest

from conftest import (collect_stream, get_status, list_all, submit, ts_seconds,
                      wait_status, wait_until)

RUNS = "/api/v1/runs"


def test_kill_9_mid_storm_loses_no_acknowledged_job(make_server, tmp_path):
    db = str(tmp_path / "storm.db")
    s = make_server("--max-concurrent", "4", db=db)
    with s.client() as c:
        # Still running at the kill however slow the build: they must run again.
        long_ids = [submit(c, f"long-{i}", config={"sleep_seconds": 6.0})["job_id"]
                    for i in range(3)]
        for j in long_ids:
            wait_status(c, j, "running")

    acked = {}
    errors = []
    lock = threading.Lock()
    killed = threading.Event()

    def worker(n):
        with s.client(timeout=10) as c:
            i = 0
            while not killed.is_set():
                i += 1
                prompt = f"storm-{n}-{i}"
                config = {"sleep_seconds": 0.05} if i % 3 == 0 else {}
                try:
                    r = c.post(RUNS, json={"prompt": prompt, "config": config})
                except httpx.TransportError as e:
                    if not killed.is_set():
                        with lock:
                            errors.append(repr(e))
                    return
                with lock:
                    if r.status_code == 202:
                        acked[r.json()["job_id"]] = prompt
                    else:
                        errors.append((r.status_code, r.text))

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    wait_until(lambda: len(acked) >= 50 or errors, timeout=30, what="50 acknowledged submits")
    time.sleep(0.3)
    killed.set()
    s.kill()  # kill -9 while submits are in flight
    for t in threads:
        t.join(15)
    assert errors == []
    assert len(acked) >= 50, len(acked)
    for i, j in enumerate(long_ids):
        acked[j] = f"long-{i}"

    s2 = make_server("--max-concurrent", "50", db=db)
    with s2.client() as c:
        jobs, total = list_all(c)
        ids = [j["job_id"] for j in jobs]
        assert len(ids) == total
        assert len(ids) == len(set(ids)), "a job is listed twice"
        missing = set(acked) - set(ids)
        assert not missing, f"{len(missing)} acknowledged jobs lost, e.g. {sorted(missing)[:5]}"

        def drained():
            by = c.get("/stats").json()["by_status"]
            return by.get("queued", 0) == 0 and by.get("running", 0) == 0

        wait_until(drained, timeout=60, interval=0.1, what="the queue to drain")
        jobs, total = list_all(c)
        assert total == len(ids)
        by_id = {j["job_id"]: j for j in jobs}
        for job_id, prompt in acked.items():
            st = by_id[job_id]
            assert st["status"] == "succeeded", st
            assert st["attempts"] in (1, 2), st
            r = c.get(f"{RUNS}/{job_id}/result")
            assert r.status_code == 200 and r.json()["result"] == prompt, (job_id, r.text)
        for j in long_ids:
            assert by_id[j]["attempts"] == 2, by_id[j]


@pytest.mark.sqlite_only  # PostgreSQL: a restarted node's old jobs are rescued when its
# lease runs out, not at start (test_cluster.py, postgres_store_test)
def test_running_job_is_rerun_after_kill_9(make_server, tmp_path):
    db = str(tmp_path / "rerun.db")
    s = make_server(db=db)
    with s.client() as c:
        job = submit(c, "rerun me", config={"sleep_seconds": 1.0, "steps": 2})
        first = wait_status(c, job["job_id"], "running")
        assert first["attempts"] == 1
    s.kill()
    s2 = make_server(db=db)
    with s2.client() as c:
        st = get_status(c, job["job_id"])
        assert st["status"] in ("queued", "running"), st
        done = wait_status(c, job["job_id"], timeout=10)
        assert done["status"] == "succeeded", done
        assert done["attempts"] == 2
        assert done["created_at"] == job["created_at"]
        assert ts_seconds(done["started_at"]) > ts_seconds(first["started_at"])
        assert done["progress"]["percentage"] == 100.0
        r = c.get(f"{RUNS}/{job['job_id']}/result")
        assert r.json()["result"] == "rerun me"
        assert r.json()["duration_seconds"] < 3.0


@pytest.mark.sqlite_only  # PostgreSQL: a restarted node's old jobs are rescued when its
# lease runs out, not at start (test_cluster.py, postgres_store_test)
def test_queued_jobs_run_after_restart_in_priority_order(make_server, tmp_path):
    db = str(tmp_path / "queued.db")
    s = make_server("--max-concurrent", "1", db=db)
    with s.client() as c:
        blocker = submit(c, "blocker", priority=-10, config={"sleep_seconds": 30})
        wait_status(c, blocker["job_id"], "running")
        a = submit(c, "a", priority=0)["job_id"]
        b = submit(c, "b", priority=5)["job_id"]
        cc = submit(c, "c", priority=1)["job_id"]
        d = submit(c, "d", priority=0)["job_id"]
        for j in (a, b, cc, d):
            assert get_status(c, j)["status"] == "queued"
    s.kill()
    s2 = make_server("--max-concurrent", "1", db=db)
    with s2.client() as c:
        sts = {j: wait_status(c, j, timeout=10) for j in (a, b, cc, d)}
        for st in sts.values():
            assert st["status"] == "succeeded" and st["attempts"] == 1, st
        order = sorted(sts, key=lambda j: ts_seconds(sts[j]["started_at"]))
        assert order == [b, cc, a, d]
        # the re-queued blocker runs last (lowest priority), as its 2nd attempt
        bl = wait_status(c, blocker["job_id"], "running", timeout=5)
        assert bl["attempts"] == 2
        assert ts_seconds(bl["started_at"]) >= ts_seconds(sts[d]["completed_at"])
        r = c.post(f"{RUNS}/{blocker['job_id']}/cancel")
        assert r.status_code == 200 and r.json()["status"] == "cancelled"


def test_finished_jobs_survive_restart_unchanged(make_server, tmp_path):
    db = str(tmp_path / "finished.db")
    s = make_server(db=db)
    with s.client() as c:
        ok = submit(c, "ok \u00e9", session_id="S", metadata={"k": "v"}, priority=4,
                    config={"sleep_seconds": 0.2, "steps": 2})["job_id"]
        bad = submit(c, "bad", config={"fail_with": "broken"})["job_id"]
        can = submit(c, "can", config={"sleep_seconds": 30})["job_id"]
        wait_status(c, can, "running")
        c.post(f"{RUNS}/{can}/cancel")
        before = {j: wait_status(c, j) for j in (ok, bad, can)}
        result_before = c.get(f"{RUNS}/{ok}/result").json()
        streams_before = {j: [(e.id, e.event, e.data) for e in collect_stream(c, j)[1]
                              if e.event != "heartbeat"]
                          for j in (ok, bad, can)}
        listed_before = c.get(RUNS).json()
    s.kill()
    s2 = make_server(db=db)
    with s2.client() as c:
        for j, st in before.items():
            assert get_status(c, j) == st
        assert c.get(f"{RUNS}/{ok}/result").json() == result_before
        assert c.get(f"{RUNS}/{bad}/result").json() == {
            "detail": "Job failed. No result available.", "error": "broken"}
        for j, evs in streams_before.items():
            after = [(e.id, e.event, e.data) for e in collect_stream(c, j)[1]
                     if e.event != "heartbeat"]
            assert after == evs, j
        assert c.get(RUNS).json() == listed_before
        # new jobs still get fresh ids and go first in the list
        new = submit(c, "new")["job_id"]
        assert new not in before
        assert c.get(RUNS).json()["jobs"][0]["job_id"] == new


def test_idempotency_key_survives_restart(make_server, tmp_path):
    db = str(tmp_path / "idem.db")
    s = make_server(db=db)
    with s.client() as c:
        a = submit(c, "x", headers={"Idempotency-Key": "durable"})
    s.kill()
    s2 = make_server(db=db)
    with s2.client() as c:
        b = submit(c, "x", headers={"Idempotency-Key": "durable"})
        assert b["job_id"] == a["job_id"]
        r = c.post(RUNS, json={"prompt": "y"}, headers={"Idempotency-Key": "durable"})
        assert r.status_code == 409
        assert c.get(RUNS).json()["total"] == 1


def test_every_single_202_is_durable(make_server, tmp_path):
    # kill -9 right after each acknowledgement: the job must be there
    db = str(tmp_path / "each.db")
    acked = []
    for round_ in range(3):
        s = make_server(db=db)
        with s.client() as c:
            acked.append(submit(c, f"r{round_}", config={"sleep_seconds": 30})["job_id"])
        s.kill()
    s = make_server(db=db)
    with s.client() as c:
        for j in acked:
            assert get_status(c, j)["job_id"] == j
            c.post(f"{RUNS}/{j}/cancel")
        assert c.get(RUNS).json()["total"] == 3


def test_graceful_stop_requeues_running_job(make_server, tmp_path):
    db = str(tmp_path / "term.db")
    s = make_server(db=db)
    with s.client() as c:
        job = submit(c, "term", config={"sleep_seconds": 30})
        wait_status(c, job["job_id"], "running")
    t0 = time.monotonic()
    s.terminate(10)
    assert time.monotonic() - t0 < 5, "SIGTERM must stop the running job promptly"
    s2 = make_server(db=db)
    with s2.client() as c:
        st = wait_status(c, job["job_id"], "running", timeout=5)
        assert st["attempts"] == 2
        c.post(f"{RUNS}/{job['job_id']}/cancel")
        assert get_status(c, job["job_id"])["status"] == "cancelled"


def test_sigterm_mid_storm_loses_no_acknowledged_job(make_server, tmp_path):
    """A graceful stop while submits pour in: each answer is a 202 (then the job is
    kept) or a 503 with Retry-After (then nothing was stored), or no answer at all."""
    db = str(tmp_path / "term-storm.db")
    s = make_server("--max-concurrent", "2", db=db)
    acked, refused, errors = {}, [], []
    lock = threading.Lock()
    stopping = threading.Event()

    def worker(n):
        with s.client(timeout=10) as c:
            i = 0
            while True:
                i += 1
                prompt = f"t-{n}-{i}"
                try:
                    r = c.post(RUNS, json={"prompt": prompt,
                                           "config": {"sleep_seconds": 0.05}})
                except httpx.TransportError as e:
                    if not stopping.is_set():
                        with lock:
                            errors.append(repr(e))
                    return
                with lock:
                    if r.status_code == 202:
                        acked[r.json()["job_id"]] = prompt
                    elif r.status_code == 503 and stopping.is_set():
                        refused.append((r.headers.get("retry-after"), r.json()))
                    else:
                        errors.append((r.status_code, r.text))

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    wait_until(lambda: len(acked) >= 20 or errors, timeout=30, what="20 acknowledged submits")
    time.sleep(0.2)
    stopping.set()
    t0 = time.monotonic()
    s.terminate(15)
    assert time.monotonic() - t0 < 10
    for t in threads:
        t.join(15)
    assert errors == []
    for retry_after, body in refused:
        assert retry_after is not None and int(retry_after) > 0
        assert isinstance(body, dict) and isinstance(body.get("detail"), str)
    assert len(acked) >= 20

    s2 = make_server("--max-concurrent", "50", db=db)
    with s2.client() as c:
        jobs, total = list_all(c)
        ids = [j["job_id"] for j in jobs]
        assert len(ids) == len(set(ids))
        assert not set(acked) - set(ids)
        for job_id, prompt in acked.items():
            st = wait_status(c, job_id, timeout=30)
            assert st["status"] == "succeeded", st
        for job_id, prompt in list(acked.items())[::7]:
            assert c.get(f"{RUNS}/{job_id}/result").json()["result"] == prompt


@pytest.mark.sqlite_only
def test_online_backup_while_serving_is_consistent_and_restorable(make_server, tmp_path):
    """docs/operations.md: SQLite's online backup of a running server's file is a
    consistent snapshot holding every job acknowledged before it, and a server started on
    the copy runs its queued jobs."""
    import sqlite3

    db = str(tmp_path / "live.db")
    s = make_server("--max-concurrent", "2", db=db)
    stop = threading.Event()
    acked = []

    def submitter():
        with s.client() as c:
            i = 0
            while not stop.is_set():
                i += 1
                acked.append(submit(c, f"b{i}", config={"sleep_seconds": 0.2})["job_id"])

    t = threading.Thread(target=submitter)
    t.start()
    wait_until(lambda: len(acked) >= 50, timeout=20, what="50 submits")
    before = list(acked)  # every job acknowledged before the backup starts
    backup = str(tmp_path / "backup.db")
    src = sqlite3.connect(db)
    dst = sqlite3.connect(backup)
    src.backup(dst)
    dst.close()
    src.close()
    stop.set()
    t.join(20)

    con = sqlite3.connect(backup)
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    ids = {r[0] for r in con.execute("SELECT id FROM jobs")}
    con.close()
    assert not set(before) - ids
    s.kill()

    restored = make_server(db=backup)
    with restored.client() as c:
        for job_id in before:
            assert wait_status(c, job_id, timeout=30)["status"] == "succeeded"
