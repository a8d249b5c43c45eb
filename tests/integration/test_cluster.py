"""Several runq nodes on one PostgreSQL database (API.md "Several nodes"): each job runs
once, any node answers for any job, and the jobs of a node that is killed or frozen past
its lease run again elsewhere, its late result discarded. Real processes, a real server.
"""
import os
import signal
import threading
from collections import Counter

import httpx
import pytest

from conftest import Postgres, get_status, submit, ts_seconds, wait_status, wait_until

pytestmark = pytest.mark.postgresql_only

RUNS = "/api/v1/runs"
RECORD = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "agents",
                                      "record_run.sh"))


@pytest.fixture
def runs_file(tmp_path):
    return str(tmp_path / "runs.txt")


def recorded(runs_file):
    """job id -> how many times the agent started it (on any node)."""
    if not os.path.exists(runs_file):
        return Counter()
    with open(runs_file) as f:
        return Counter(line.split()[0] for line in f if line.strip())


def start_nodes(make_server, tmp_path, runs_file, n, *args, sleep=0):
    """n nodes on one database, each running the recording agent."""
    db = str(tmp_path / "cluster.db")
    return [make_server("--agent", "command", "--agent-command", f"{RECORD} {sleep}",
                        "--node-name", f"node{i}", *args, db=db,
                        env={"RUNQ_TEST_RUNS_FILE": runs_file})
            for i in range(n)]


def test_each_job_runs_once_and_any_node_answers_for_any_job(make_server, tmp_path, runs_file):
    nodes = start_nodes(make_server, tmp_path, runs_file, 3, "--max-concurrent", "2",
                        sleep=0.05)
    clients = [n.client() for n in nodes]
    try:
        ids = []
        lock = threading.Lock()

        def submitter(k):
            for i in range(20):
                job = submit(clients[k], f"job {k}-{i}")
                with lock:
                    ids.append(job["job_id"])

        threads = [threading.Thread(target=submitter, args=(k,)) for k in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(set(ids)) == 60
        ran_on = Counter()
        for i, job_id in enumerate(ids):
            c = clients[i % 3]  # asked on any node, not necessarily the one that took it
            st = wait_status(c, job_id, timeout=60)
            assert st["status"] == "succeeded", st
            assert st["attempts"] == 1, st
            ran_on[st["node"]] += 1
            # every node tells the same story about it
            for other in clients:
                assert get_status(other, job_id)["node"] == st["node"]
            r = clients[(i + 1) % 3].get(f"{RUNS}/{job_id}/result")
            assert r.status_code == 200 and r.json()["result"] == f"ran {job_id}", r.text
        runs = recorded(runs_file)
        assert set(runs) == set(ids)
        assert max(runs.values()) == 1, [k for k, v in runs.items() if v > 1]
        assert len(ran_on) >= 2, ran_on  # the work was shared
        # the whole cluster's counts, from any node
        for c in clients:
            assert c.get("/stats").json()["by_status"]["succeeded"] == 60
            assert c.get(RUNS, params={"page_size": 1}).json()["total"] == 60
    finally:
        for c in clients:
            c.close()


def test_idempotency_key_is_one_job_across_nodes(make_server, tmp_path, runs_file):
    a, b = start_nodes(make_server, tmp_path, runs_file, 2)
    with a.client() as ca, b.client() as cb:
        first = submit(ca, "same", headers={"Idempotency-Key": "k-1"})
        again = submit(cb, "same", headers={"Idempotency-Key": "k-1"})
        assert again["job_id"] == first["job_id"]
        r = cb.post(RUNS, json={"prompt": "other"}, headers={"Idempotency-Key": "k-1"})
        assert r.status_code == 409, r.text
        wait_status(cb, first["job_id"])
    assert recorded(runs_file)[first["job_id"]] == 1


def test_highest_priority_first_across_the_whole_queue(make_server, tmp_path):
    """Jobs queued through two nodes run in one global order: priority, then age."""
    db = str(tmp_path / "cluster.db")
    a = make_server("--node-name", "a", "--max-concurrent", "1", db=db)
    with a.client() as ca:
        long = submit(ca, "long", config={"sleep_seconds": 60})["job_id"]
        wait_status(ca, long, "running")  # a's only slot, for the whole test
        b = make_server("--node-name", "b", "--max-concurrent", "1", db=db)
        with b.client() as cb:
            short = submit(cb, "short", config={"sleep_seconds": 1.0})["job_id"]
            wait_status(cb, short, "running")  # b's only slot, for a second
            priorities = [0, 5, 1, 9, 3, 7]
            ids = {submit((ca, cb)[i % 2], f"p{p}", priority=p)["job_id"]: p
                   for i, p in enumerate(priorities)}
            done = [wait_status(cb, job_id, timeout=30) for job_id in ids]
            order = [ids[st["job_id"]] for st in sorted(done, key=lambda st: st["started_at"])]
            assert order == sorted(priorities, reverse=True), order
            assert {st["node"] for st in done} == {"b"}
        assert ca.post(f"{RUNS}/{long}/cancel").status_code == 200


def test_killed_node_jobs_finish_on_another_node(make_server, tmp_path, runs_file):
    """kill -9 of the node running a job: after its lease (1 s) the job runs again on
    the other node (attempts 2) and ends once, with one result."""
    db = str(tmp_path / "cluster.db")
    env = {"RUNQ_TEST_RUNS_FILE": runs_file}
    args = ("--agent", "command", "--agent-command", f"{RECORD} 1.5", "--lease-seconds", "1")
    a = make_server(*args, "--node-name", "a", db=db, env=env)
    with a.client() as ca:
        job_id = submit(ca, "survive")["job_id"]
        wait_until(lambda: recorded(runs_file)[job_id] == 1, what="the run on a")
        assert get_status(ca, job_id)["node"] == "a"
    b = make_server(*args, "--node-name", "b", db=db, env=env)
    a.kill()
    with b.client() as cb:
        st = wait_status(cb, job_id, timeout=30)
        assert st["status"] == "succeeded", st
        assert (st["attempts"], st["node"]) == (2, "b"), st
        assert cb.get(f"{RUNS}/{job_id}/result").json()["result"] == f"ran {job_id}"
    assert recorded(runs_file)[job_id] == 2


def test_frozen_node_past_its_lease_has_its_late_result_discarded(make_server, tmp_path,
                                                                  runs_file):
    """SIGSTOP the node running a job for longer than its lease: another node runs the
    job again; when the frozen node resumes, what it reports is refused."""
    db = str(tmp_path / "cluster.db")
    env = {"RUNQ_TEST_RUNS_FILE": runs_file}
    args = ("--agent", "command", "--lease-seconds", "1")
    a = make_server(*args, "--agent-command", f"{RECORD} 0.5", "--node-name", "a", db=db,
                    env=env)
    with a.client() as ca:
        job_id = submit(ca, "frozen")["job_id"]
        wait_until(lambda: recorded(runs_file)[job_id] == 1, what="the run on a")
    a.proc.send_signal(signal.SIGSTOP)
    try:
        b = make_server(*args, "--agent-command", f"{RECORD} 3", "--node-name", "b", db=db,
                        env=env)
        with b.client() as cb:
            wait_until(lambda: recorded(runs_file)[job_id] == 2, timeout=30,
                       what="the second attempt on b")
            assert get_status(cb, job_id)["node"] == "b"
    finally:
        a.proc.send_signal(signal.SIGCONT)
    # a wakes up with its 0.5 s run done long ago: its end must not be recorded over b's
    # attempt, which is still going (3 s)
    with a.client() as ca:
        st = wait_status(ca, job_id, timeout=30)
        assert st["status"] == "succeeded" and (st["attempts"], st["node"]) == (2, "b"), st
        # the end is b's (3 s after its start), not a's late one (at once after SIGCONT)
        assert ts_seconds(st["completed_at"]) - ts_seconds(st["started_at"]) >= 2.9, st
    assert recorded(runs_file)[job_id] == 2


def test_queue_length_and_its_limit_are_the_whole_clusters(make_server, tmp_path):
    """/health's queued_jobs and --max-queued count every node's queued jobs."""
    db = str(tmp_path / "cluster.db")
    args = ("--max-concurrent", "1", "--max-queued", "3")
    a = make_server("--node-name", "a", *args, db=db)
    b = make_server("--node-name", "b", *args, db=db)
    with a.client() as ca, b.client() as cb:
        blockers = [submit(c, "block", config={"sleep_seconds": 60})["job_id"]
                    for c in (ca, cb)]
        for job_id in blockers:
            wait_status(ca, job_id, "running")  # both nodes' only slots are taken
        for i in range(3):
            submit(ca, f"q{i}")
        wait_until(lambda: cb.get("/health").json()["executor_stats"]["queued_jobs"] == 3,
                   what="b to count a's queued jobs")
        r = cb.post(RUNS, json={"prompt": "one too many"})
        assert r.status_code == 429, r.text
        for job_id in blockers:
            for c in (ca, cb):  # cancelled through the node that runs it
                c.post(f"{RUNS}/{job_id}/cancel")


def test_database_restart_under_submit_load_loses_no_acknowledged_job(make_server):
    """PostgreSQL crashes (`pg_ctl stop -m immediate`) and comes back while a client
    submits: meanwhile submits get 503 with Retry-After (never a 500, never a hang), the
    node reconnects by itself, and every job that got a 202 ends succeeded."""
    pg = Postgres()  # a server of this test's own: it is crashed on purpose
    try:
        node = make_server("--max-concurrent", "4", db=pg.database_for("restart"))
        acked, refused, errors = [], [], []
        stop = threading.Event()

        def submitter():
            with node.client(timeout=10) as c:
                i = 0
                while not stop.is_set():
                    i += 1
                    try:
                        r = c.post(RUNS, json={"prompt": f"r{i}"})
                    except httpx.HTTPError as e:
                        errors.append(repr(e))
                        continue
                    if r.status_code == 202:
                        acked.append(r.json()["job_id"])
                    elif r.status_code == 503:
                        assert r.json() == {"detail": "Store unavailable"}, r.text
                        assert "retry-after" in r.headers
                        refused.append(i)
                    else:
                        errors.append((r.status_code, r.text))

        t = threading.Thread(target=submitter)
        t.start()
        try:
            wait_until(lambda: len(acked) >= 50, timeout=30, what="50 submits")
            pg.crash()
            wait_until(lambda: refused, timeout=30, what="a 503 while the database is down")
            with node.client() as c:
                r = c.get("/health")
                assert r.status_code == 503 and r.json()["status"] == "unhealthy", r.text
            pg.restart()
            n = len(acked)
            wait_until(lambda: len(acked) >= n + 50, timeout=60,
                       what="submits acknowledged again")
        finally:
            stop.set()
            t.join(30)
        assert not errors, errors[:5]
        with node.client() as c:
            for job_id in acked:
                assert wait_status(c, job_id, timeout=60)["status"] == "succeeded"
            assert c.get("/health").json()["status"] == "healthy"
    finally:
        pg.stop()


def test_all_nodes_restarted_run_every_job(make_server, tmp_path, runs_file):
    """Every node stops (SIGTERM, no drain time) while jobs run and wait, then all start
    again: every job ends succeeded. (A stopped run goes back to the queue and runs again,
    maybe on the node still up, which may stop it too.)"""
    nodes = start_nodes(make_server, tmp_path, runs_file, 2, "--max-concurrent", "2",
                        sleep=0.5)
    with nodes[0].client() as c:
        ids = [submit(c, f"r{i}")["job_id"] for i in range(10)]
        wait_until(lambda: len(recorded(runs_file)) >= 3, what="jobs running on the nodes")
    for n in nodes:
        assert n.terminate() == 0
    for n in nodes:
        n.start()
    with nodes[1].client() as c:
        for job_id in ids:
            assert wait_status(c, job_id, timeout=60)["status"] == "succeeded", job_id
    assert set(recorded(runs_file)) == set(ids)
