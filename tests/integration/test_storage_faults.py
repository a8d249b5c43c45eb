"""Storage faults (issue 4, item 5): a full disk or a read-only file system under a
running server. Submits get 503 with a clear detail and Retry-After; reads go on; a job
that ends meanwhile keeps its end until it can be stored; the server recovers by itself
when the fault clears; nothing acknowledged is lost (checked after kill -9).

Real parts only: the database lives on a small tmpfs that the test mounts and fills
(disk full), or on a pass-through FUSE file system (rofs.py) whose writes fail with
EROFS while a flag file exists (read-only). Both need root (tests run as root; the CI
container is --privileged). If mounting is not permitted the tests FAIL, they do not
skip: a storage fault test that silently does not run proves nothing.
"""
import errno
import os
import subprocess
import sys
import time

import pytest

from conftest import (RUNQ_BIN, RunqServer, collect_stream, get_status, list_all, submit,
                      wait_status, wait_until)

# Faults of SQLite's own file and file system (PostgreSQL's are in test_cluster_*.py).
pytestmark = pytest.mark.sqlite_only

DISK_FULL = "Job store is not writable (disk full); retry later"
READ_ONLY = "Job store is not writable (read-only database or file system); retry later"
HERE = os.path.dirname(os.path.abspath(__file__))


def _run(cmd):
    return subprocess.run(cmd, capture_output=True, text=True)


def _unmount(path):
    for _ in range(50):
        if not os.path.ismount(path):
            return
        if _run(["umount", path]).returncode == 0:
            return
        time.sleep(0.1)
    _run(["umount", "-l", path])  # last resort: detach it, so the next test is clean


@pytest.fixture
def small_disk(tmp_path):
    """A 16 MiB tmpfs mounted by the test, unmounted afterwards."""
    d = tmp_path / "disk"
    d.mkdir()
    r = _run(["mount", "-t", "tmpfs", "-o", "size=16m,mode=0755", "tmpfs", str(d)])
    if r.returncode != 0:
        pytest.fail("the disk-full test mounts a small tmpfs and needs to run as root with "
                    "mount permitted (in a container: --privileged); `mount -t tmpfs` "
                    f"failed: {r.stderr.strip() or r.returncode}")
    yield d
    _unmount(str(d))


@pytest.fixture
def toggled_fs(tmp_path):
    """A FUSE pass-through (rofs.py) at tmp_path/'mnt' over tmp_path/'back'. Returns
    (mount point, flag path): while the flag file exists, writes fail with EROFS."""
    back, mnt, flag = tmp_path / "back", tmp_path / "mnt", tmp_path / "read-only"
    back.mkdir()
    mnt.mkdir()
    try:
        import fusepy  # noqa: F401  (Debian's python3-fusepy)
    except ImportError as e:
        pytest.fail(f"the read-only test needs Debian's python3-fusepy "
                    f"(scripts/install-deps.sh installs it): {e}")
    if not os.path.exists("/dev/fuse"):
        pytest.fail("the read-only test needs /dev/fuse (run as root; in a container: "
                    "--privileged)")
    proc = subprocess.Popen([sys.executable, os.path.join(HERE, "rofs.py"), str(back),
                             str(mnt), str(flag)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 10
    while not os.path.ismount(mnt):
        if proc.poll() is not None or time.monotonic() > deadline:
            out = proc.stdout.read() if proc.poll() is not None else ""
            proc.kill()
            pytest.fail(f"could not mount the FUSE file system of rofs.py (needs root and "
                        f"/dev/fuse; in a container: --privileged): {out.strip()}")
        time.sleep(0.05)
    yield mnt, flag
    if flag.exists():
        flag.unlink()
    _unmount(str(mnt))
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()


def fill(path, chunk=1 << 20):
    """Appends to `path` until the file system is full (the last bytes in 4 KiB steps,
    the page size of tmpfs). Returns how many bytes it added."""
    added = 0
    with open(path, "ab", buffering=0) as f:
        for size in (chunk, 4096):
            block = b"\0" * size
            while True:
                try:
                    added += f.write(block)
                except OSError as e:
                    if e.errno != errno.ENOSPC:
                        raise
                    break
    return added


def assert_unavailable(r, detail):
    assert r.status_code == 503, (r.status_code, r.text)
    assert r.json() == {"detail": detail}
    assert r.headers.get("retry-after") == "5", r.headers


def check_reads(c, server, finished_ids, acked, detail_word):
    """Everything a client reads keeps working while the store cannot be written."""
    for job_id in finished_ids:
        assert get_status(c, job_id)["status"] == "succeeded"
    r = c.get(f"/api/v1/runs/{finished_ids[0]}/result")
    assert r.status_code == 200, r.text
    assert r.json()["result"] == "early 0"
    jobs, total = list_all(c)
    assert total == len(acked)
    assert {j["job_id"] for j in jobs} == set(acked)
    assert c.get("/stats").json()["total_jobs"] == len(acked)
    _, events = collect_stream(c, finished_ids[0])
    assert events[-1].event == "result"
    assert events[-1].data == {"result": "early 0"}
    h = c.get("/health")
    assert h.status_code == 200
    body = h.json()
    assert body["status"] == "degraded", body
    assert body["store"] == "sqlite"
    assert detail_word in body["store_error"], body
    assert "store_error_since" in body
    assert set(body["executor_stats"]) == {"running_jobs", "queued_jobs", "max_concurrent",
                                          "default_timeout", "shutdown"}


def check_recovered_and_durable(server, acked, long_id, long_prompt):
    """After the fault: healthy again; then kill -9 and a restart find every
    acknowledged job, the long job's result included. Returns the log of the server
    before the restart."""
    with server.client() as c:
        wait_until(lambda: c.get("/health").json()["status"] == "healthy", timeout=15,
                   what="/health healthy again")
        assert "store_error" not in c.get("/health").json()
    server.kill()
    log = "".join(server.log)
    server.start()
    with server.client() as c:
        for job_id in acked:
            r = c.get(f"/api/v1/runs/{job_id}")
            assert r.status_code == 200, (job_id, r.status_code, r.text)
        _, total = list_all(c)
        assert total == len(acked)
        done = wait_status(c, long_id, timeout=30)
        assert done["status"] == "succeeded", done
        r = c.get(f"/api/v1/runs/{long_id}/result")
        assert r.status_code == 200, r.text
        assert r.json()["result"] == long_prompt
        # Everything left queued runs to the end.
        for job_id in acked:
            assert wait_status(c, job_id, timeout=30)["status"] == "succeeded"
        assert c.get("/health").json()["status"] == "healthy"
    return log


def start_long_job(c, prompt, sleep_s):
    body = submit(c, prompt, config={"sleep_seconds": sleep_s})
    wait_status(c, body["job_id"], "running", timeout=10)
    return body["job_id"], time.monotonic() + sleep_s


def test_disk_full_503_reads_go_on_and_recovery_without_restart(small_disk):
    db = str(small_disk / "runq.db")
    filler = small_disk / "filler"
    server = RunqServer(db, ["--max-concurrent", "1"]).start()
    try:
        with server.client() as c:
            acked = []
            early = [submit(c, f"early {i}")["job_id"] for i in range(3)]
            acked += early
            for job_id in early:
                wait_status(c, job_id)
            # A job with a large result (~300 KB, stored twice: result and its events) is
            # running on the only worker when the disk fills up; its agent ends while the
            # disk is full. Jobs acknowledged meanwhile wait in the queue.
            long_prompt = "L" * 300_000
            long_id, long_ends = start_long_job(c, long_prompt, 3)
            acked.append(long_id)

            assert fill(filler) > 0
            # Keep submitting (topping the filler up after each success) until the store
            # refuses: every acknowledged job is in `acked`.
            refused = None
            for _ in range(50):
                r = c.post("/api/v1/runs", json={"prompt": "while filling"})
                if r.status_code == 202:
                    acked.append(r.json()["job_id"])
                    fill(filler)
                    continue
                refused = r
                break
            assert refused is not None, "the store never refused a submit on a full disk"
            assert_unavailable(refused, DISK_FULL)
            # Refused again; and nothing of a refused submit is stored.
            assert_unavailable(c.post("/api/v1/runs", json={"prompt": "again"}), DISK_FULL)

            check_reads(c, server, early, acked, "disk full")

            # Cancel and delete need a write: 503 with the same detail, never 500.
            assert_unavailable(c.delete(f"/api/v1/runs/{early[1]}"), DISK_FULL)
            assert get_status(c, early[1])["status"] == "succeeded"

            # The long job's work is over, but its end cannot be stored: it still shows
            # running (from memory), and /result says so; nothing new starts meanwhile.
            time.sleep(max(0.0, long_ends - time.monotonic()) + 1.0)
            st = get_status(c, long_id)
            assert st["status"] == "running", st
            r = c.get(f"/api/v1/runs/{long_id}/result")
            assert r.status_code == 400 and "still running" in r.json()["detail"], r.text
            assert_unavailable(c.post(f"/api/v1/runs/{long_id}/cancel"), DISK_FULL)
            assert c.get("/health").json()["status"] == "degraded"

            # Space comes back: no restart, the server recovers by itself.
            filler.unlink()
            done = wait_status(c, long_id, timeout=20)
            assert done["status"] == "succeeded", done
            r = c.get(f"/api/v1/runs/{long_id}/result")
            assert r.status_code == 200 and r.json()["result"] == long_prompt
            after = submit(c, "after the disk was freed")
            acked.append(after["job_id"])
            assert wait_status(c, after["job_id"])["status"] == "succeeded"
            r = c.delete(f"/api/v1/runs/{early[1]}")
            assert r.status_code == 204, r.text
            acked.remove(early[1])
        log = check_recovered_and_durable(server, acked, long_id, long_prompt)
        assert "job store is not writable (disk full)" in log, log[-3000:]
    finally:
        server.kill()


def test_read_only_file_system_503_reads_go_on_and_recovery(toggled_fs):
    mnt, read_only = toggled_fs
    server = RunqServer(str(mnt / "runq.db"), ["--max-concurrent", "1"]).start()
    try:
        with server.client() as c:
            acked = []
            early = [submit(c, f"early {i}")["job_id"] for i in range(3)]
            acked += early
            for job_id in early:
                wait_status(c, job_id)
            long_prompt = "R" * 50_000
            long_id, long_ends = start_long_job(c, long_prompt, 2)
            # One worker, busy with the long job: this one waits in the queue.
            queued = submit(c, "queued behind")["job_id"]
            acked += [long_id, queued]

            read_only.touch()  # the file system turns read-only under the running server
            assert_unavailable(c.post("/api/v1/runs", json={"prompt": "refused"}), READ_ONLY)
            assert_unavailable(c.post("/api/v1/runs", json={"prompt": "refused too",
                                                             "idempotency_key": "k1"}),
                               READ_ONLY)
            check_reads(c, server, early, acked, "read-only")
            assert_unavailable(c.delete(f"/api/v1/runs/{early[2]}"), READ_ONLY)
            assert_unavailable(c.post(f"/api/v1/runs/{queued}/cancel"), READ_ONLY)
            assert get_status(c, queued)["status"] == "queued"

            time.sleep(max(0.0, long_ends - time.monotonic()) + 1.0)
            st = get_status(c, long_id)
            assert st["status"] == "running", st
            assert_unavailable(c.post(f"/api/v1/runs/{long_id}/cancel"), READ_ONLY)

            read_only.unlink()  # writable again: recovery without a restart
            done = wait_status(c, long_id, timeout=20)
            assert done["status"] == "succeeded", done
            assert wait_status(c, queued, timeout=20)["status"] == "succeeded"
            ok = submit(c, "refused too", idempotency_key="k1")  # the key was never taken
            acked.append(ok["job_id"])
            assert c.delete(f"/api/v1/runs/{early[2]}").status_code == 204
            acked.remove(early[2])
        log = check_recovered_and_durable(server, acked, long_id, long_prompt)
        assert "job store is not writable (read-only database or file system)" in log
        assert "job store is writable again" in log
    finally:
        server.kill()


def test_read_only_at_start_is_refused_with_a_clear_message(toggled_fs):
    """runq does not start on a database it cannot write (documented choice): it exits 1
    and says what to do. Once the file system is writable again it starts as usual."""
    mnt, read_only = toggled_fs
    db = str(mnt / "runq.db")
    server = RunqServer(db).start()
    try:
        with server.client() as c:
            job_id = submit(c, "before")["job_id"]
            wait_status(c, job_id)
        assert server.terminate(10) == 0
        read_only.touch()
        proc = subprocess.run([RUNQ_BIN, "serve", "--port", "0", "--db", db],
                              capture_output=True, text=True, timeout=20)
        assert proc.returncode == 1, (proc.returncode, proc.stdout, proc.stderr)
        out = proc.stdout + proc.stderr
        assert f"cannot open SQLite database '{db}'" in out, out
        assert "is read-only, and runq must write it" in out, out
        read_only.unlink()
        server.start()
        with server.client() as c:
            assert get_status(c, job_id)["status"] == "succeeded"
            assert c.get("/health").json()["status"] == "healthy"
    finally:
        server.kill()


def test_retry_of_a_failed_attempt_waits_for_the_store(toggled_fs):
    """A failed attempt due for a retry goes back to the queue only when the store can
    record it: while it cannot, the job shows running; afterwards it is retried as if
    nothing had happened (attempts 2, then its final error)."""
    mnt, read_only = toggled_fs
    server = RunqServer(str(mnt / "runq.db"),
                        ["--max-concurrent", "1", "--retry-delay", "0.1"]).start()
    try:
        with server.client() as c:
            job_id = submit(c, "flaky", max_retries=1,
                            config={"sleep_seconds": 1.0, "fail_with": "boom"})["job_id"]
            wait_status(c, job_id, "running", timeout=10)
            read_only.touch()
            time.sleep(2.0)  # the first attempt has failed by now; its re-queue cannot be stored
            st = get_status(c, job_id)
            assert st["status"] == "running" and st["attempts"] == 1, st
            read_only.unlink()
            done = wait_status(c, job_id, timeout=20)
            assert done["status"] == "failed", done
            assert done["error"] == "boom"
            assert done["attempts"] == 2, done
    finally:
        server.kill()
