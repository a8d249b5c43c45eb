"""Several nodes: a job asked about through a node other than the one that runs it
(API.md "Several nodes"): cancel stops the work there, a stream sees its events as they
happen, a long-poll returns when it ends, and Last-Event-ID resumes on another node and
after a restart. Real processes, a real PostgreSQL server.
"""
import os

import pytest

from conftest import (alive, collect_stream, get_status, iter_sse, submit, wait_status,
                      wait_until)

pytestmark = pytest.mark.postgresql_only

RUNS = "/api/v1/runs"
RECORD = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "agents",
                                      "record_run.sh"))


def events_of(events):
    """(id, event, data) of the events proper (heartbeats are comments)."""
    return [(e.id, e.event, e.data_raw) for e in events if e.event is not None]


def running_on_a(make_server, tmp_path, *args, **fields):
    """Node a alone takes a job (sleeping several steps: progress events), then node b
    starts beside it. Returns (a, b, job_id)."""
    db = str(tmp_path / "cluster.db")
    a = make_server("--node-name", "a", *args, db=db)
    with a.client() as ca:
        job_id = submit(ca, "news", **fields)["job_id"]
        wait_status(ca, job_id, "running")
    b = make_server("--node-name", "b", *args, db=db)
    return a, b, job_id


def test_cancel_through_another_node_stops_the_work_where_it_runs(make_server, tmp_path):
    runs = str(tmp_path / "runs.txt")
    db = str(tmp_path / "cluster.db")
    a = make_server("--node-name", "a", "--agent", "command", "--agent-command",
                    f"{RECORD} 60", db=db, env={"RUNQ_TEST_RUNS_FILE": runs})
    with a.client() as ca:
        job_id = submit(ca, "long")["job_id"]
        wait_until(lambda: os.path.exists(runs) and os.path.getsize(runs) > 0,
                   what="the agent to start on a")
        with open(runs) as f:
            pid = int(f.read().split()[1])
        b = make_server("--node-name", "b", db=db)
        with b.client() as cb:
            r = cb.post(f"{RUNS}/{job_id}/cancel")
            assert r.status_code == 200, r.text
            assert r.json()["status"] == "cancelled", r.text
            assert r.json()["node"] == "a"
        wait_until(lambda: not alive(pid), timeout=10, what="the agent on a to be stopped")
        assert get_status(ca, job_id)["status"] == "cancelled"
        wait_until(lambda: ca.get("/health").json()["executor_stats"]["running_jobs"] == 0,
                   what="a's slot to be free")
        # Cancelling it again, through either node, answers the same.
        assert ca.post(f"{RUNS}/{job_id}/cancel").json()["status"] == "cancelled"


def test_stream_through_another_node_sees_every_event(make_server, tmp_path):
    a, b, job_id = running_on_a(make_server, tmp_path,
                                config={"sleep_seconds": 2.0, "steps": 5})
    with b.client() as cb, a.client() as ca:
        _, seen_on_b = collect_stream(cb, job_id, timeout=30)
        _, stored = collect_stream(ca, job_id)  # the job's whole history, after its end
    got = events_of(seen_on_b)
    assert got == events_of(stored), (got, events_of(stored))
    kinds = [k for _, k, _ in got]
    assert kinds.count("progress") == 5 and kinds[-1] == "result", kinds  # one a step
    assert [int(i) for i, _, _ in got] == list(range(1, len(got) + 1))


def test_last_event_id_resumes_on_another_node_and_after_a_restart(make_server, tmp_path):
    a, b, job_id = running_on_a(make_server, tmp_path,
                                config={"sleep_seconds": 3.0, "steps": 6})
    first = []
    with a.client() as ca:
        with ca.stream("GET", f"{RUNS}/{job_id}/stream", timeout=10) as r:
            for ev in iter_sse(r):
                first.append(ev)
                if [e.event for e in first].count("progress") >= 2:
                    break
    # Resumed on b while the job still runs on a.
    second = []
    with b.client() as cb:
        with cb.stream("GET", f"{RUNS}/{job_id}/stream", timeout=10,
                       headers={"Last-Event-ID": first[-1].id}) as r:
            for ev in iter_sse(r):
                second.append(ev)
                if [e.event for e in second].count("progress") >= 1:
                    break
    with a.client() as ca:
        assert get_status(ca, job_id)["status"] == "running"
    # b restarts (a new process); the rest comes through it.
    b.terminate()
    b.start()
    with b.client() as cb:
        _, third = collect_stream(cb, job_id, timeout=30,
                                  headers={"Last-Event-ID": second[-1].id})
        _, whole = collect_stream(cb, job_id)
    joined = events_of(first) + events_of(second) + events_of(third)
    assert joined == events_of(whole), joined
    assert [k for _, k, _ in joined].count("result") == 1


def test_long_poll_through_another_node_returns_when_the_job_ends(make_server, tmp_path):
    a, b, job_id = running_on_a(make_server, tmp_path, config={"sleep_seconds": 1.0})
    with b.client(timeout=30) as cb:
        # Without news from a, b would hold it the whole 60 s: the client gives up at 30.
        st = cb.get(f"{RUNS}/{job_id}", params={"wait": 60}).json()
        assert st["status"] == "succeeded", st
        assert st["node"] == "a"


def test_killed_node_job_has_one_result_event(make_server, tmp_path):
    """kill -9 of the node running a job: the job runs again on b, and its history (as
    any node streams it) holds one `result`, ids in order."""
    db = str(tmp_path / "cluster.db")
    args = ("--lease-seconds", "1")
    a = make_server("--node-name", "a", *args, db=db)
    with a.client() as ca:
        job_id = submit(ca, "again", config={"sleep_seconds": 2.0, "steps": 4})["job_id"]
        wait_until(lambda: get_status(ca, job_id)["progress"]["percentage"] > 0,
                   what="a's first progress event")
    b = make_server("--node-name", "b", *args, db=db)
    a.kill()
    with b.client() as cb:
        st = wait_status(cb, job_id, timeout=30)
        assert st["status"] == "succeeded" and (st["attempts"], st["node"]) == (2, "b"), st
        _, history = collect_stream(cb, job_id)
    got = events_of(history)
    assert [k for _, k, _ in got].count("result") == 1, got
    assert [int(i) for i, _, _ in got] == list(range(1, len(got) + 1)), got
