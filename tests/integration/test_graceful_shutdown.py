"""Graceful shutdown: SIGTERM/SIGINT stop accepting, end SSE streams, give running jobs
--drain-timeout to finish and re-queue the rest; a second signal exits at once."""
import signal
import socket
import threading
import time
from urllib.parse import urlsplit

import httpx
import pytest

from conftest import db_rows, iter_sse, submit, wait_status, wait_until

RUNS = "/api/v1/runs"


def db_row(db, job_id):
    """(status, attempts, error) of a job, read straight from the store."""
    rows = db_rows(db, "SELECT status, attempts, error FROM jobs WHERE id = ?", (job_id,))
    return rows[0] if rows else None


def open_connections(s):
    """runq_http_open_connections, the scrape's own connection included."""
    with s.client() as c:
        for line in c.get("/metrics").text.splitlines():
            if line.startswith("runq_http_open_connections "):
                return float(line.split()[1])
    raise AssertionError("no runq_http_open_connections in /metrics")


def signal_and_wait_for_log(s, sig, text, timeout=5):
    s.proc.send_signal(sig)
    wait_until(lambda: any(text in line for line in s.log), timeout=timeout,
               what=f"log line {text!r}")


def test_running_job_finishes_during_drain_and_no_new_job_starts(make_server, tmp_path):
    db = str(tmp_path / "drain.db")
    s = make_server("--drain-timeout", "30", "--max-concurrent", "1", db=db)
    with s.client() as c:
        running = submit(c, "finish me", config={"sleep_seconds": 3})["job_id"]
        wait_status(c, running, "running")
        waiting = submit(c, "wait for me")["job_id"]
    t0 = time.monotonic()
    assert s.terminate(20) == 0
    took = time.monotonic() - t0
    assert 0.5 < took < 15, took
    assert db_row(db, running) == ("succeeded", 1, None)
    assert db_row(db, waiting) == ("queued", 0, None)  # not started during the drain
    assert any("drained: every running job finished" in line for line in s.log)


def test_drain_timeout_requeues_unfinished_jobs_not_fails_them(make_server, tmp_path):
    db = str(tmp_path / "drain-timeout.db")
    s = make_server("--drain-timeout", "1", db=db)
    with s.client() as c:
        job = submit(c, "too long", config={"sleep_seconds": 60})["job_id"]
        wait_status(c, job, "running")
    t0 = time.monotonic()
    assert s.terminate(20) == 0
    assert 0.8 < time.monotonic() - t0 < 10
    status, attempts, error = db_row(db, job)
    assert (status, attempts, error) == ("queued", 1, None)
    # The next start runs it again as an ordinary queued job.
    s2 = make_server("--max-attempts", "1", db=db)
    with s2.client() as c:
        st = wait_status(c, job, "running", timeout=10)
        assert st["attempts"] == 2
        c.post(f"{RUNS}/{job}/cancel")


@pytest.mark.sqlite_only  # PostgreSQL: a restarted node's old jobs are rescued when its
# lease runs out, not at start (test_cluster.py, postgres_store_test)
def test_second_signal_exits_at_once(make_server, tmp_path):
    db = str(tmp_path / "twice.db")
    s = make_server("--drain-timeout", "120", db=db)
    with s.client() as c:
        job = submit(c, "long", config={"sleep_seconds": 60})["job_id"]
        wait_status(c, job, "running")
    signal_and_wait_for_log(s, signal.SIGTERM, "shutting down")
    time.sleep(0.5)
    assert s.proc.poll() is None, "the first signal drains; it must not exit yet"
    t0 = time.monotonic()
    s.proc.send_signal(signal.SIGINT)
    assert s.proc.wait(5) == 130
    assert time.monotonic() - t0 < 3
    # Nothing acknowledged is lost: the job is still there and runs after restart.
    assert db_row(db, job)[0] in ("running", "queued")
    s2 = make_server(db=db)
    with s2.client() as c:
        assert wait_status(c, job, "running", timeout=10)["attempts"] == 2
        c.post(f"{RUNS}/{job}/cancel")


def test_listener_closes_and_sse_streams_end_while_jobs_drain(make_server, tmp_path):
    s = make_server("--drain-timeout", "30", db=str(tmp_path / "listen.db"))
    with s.client() as c:
        job = submit(c, "stream me", config={"sleep_seconds": 6, "steps": 3})["job_id"]
        wait_status(c, job, "running")
    got = {}
    streaming = threading.Event()

    def stream():
        try:
            with s.client(timeout=20) as c2:
                with c2.stream("GET", f"{RUNS}/{job}/stream") as r:
                    got["status"] = r.status_code
                    streaming.set()
                    got["events"] = list(iter_sse(r))
        except Exception as e:  # noqa: BLE001 - recorded for the assertion below
            got["error"] = repr(e)
        streaming.set()

    t = threading.Thread(target=stream)
    t.start()
    assert streaming.wait(10), "the stream did not start"
    signal_and_wait_for_log(s, signal.SIGTERM, "shutting down")
    t.join(10)
    assert not t.is_alive(), "the SSE stream must end when the server stops"
    assert "error" not in got and got["status"] == 200, got
    # Still draining (the job sleeps 6 s), but no longer accepting connections.
    assert s.proc.poll() is None
    parts = urlsplit(s.url)
    with pytest.raises(OSError):
        socket.create_connection((parts.hostname, parts.port), timeout=2).close()
    assert s.proc.wait(20) == 0


def test_sigint_drains_like_sigterm(make_server, tmp_path):
    db = str(tmp_path / "int.db")
    s = make_server("--drain-timeout", "30", db=db)
    with s.client() as c:
        job = submit(c, "ctrl-c", config={"sleep_seconds": 1})["job_id"]
        wait_status(c, job, "running")
    s.proc.send_signal(signal.SIGINT)
    assert s.proc.wait(20) == 0
    assert db_row(db, job)[0] == "succeeded"


def test_wait_long_poll_answers_at_once_on_stop(make_server, tmp_path):
    s = make_server("--drain-timeout", "30", db=str(tmp_path / "wait.db"))
    with s.client() as c:
        job = submit(c, "slow", config={"sleep_seconds": 6})["job_id"]
        wait_status(c, job, "running")
    answer = {}

    def long_poll():
        with s.client() as c2:
            t0 = time.monotonic()
            r = c2.get(f"{RUNS}/{job}", params={"wait": 30})
            answer["status"], answer["took"] = r.status_code, time.monotonic() - t0
            answer["body"] = r.json()

    t = threading.Thread(target=long_poll)
    t.start()
    # Its connection is open (the scrape's is the other); give the request a moment to
    # be read.
    wait_until(lambda: open_connections(s) >= 2, what="the long poll's connection")
    time.sleep(0.5)
    s.proc.send_signal(signal.SIGTERM)
    t.join(10)
    assert answer["status"] == 200 and answer["took"] < 5, answer
    assert answer["body"]["status"] == "running"
    assert s.proc.wait(20) == 0
