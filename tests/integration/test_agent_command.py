"""`runq serve --agent command --agent-command '...'`: jobs run real local programs (the
scripts in tests/agents/), each in its own process group."""
import json
import os
import shlex
import shutil
import time

import pytest

from conftest import (STORE, alive, collect_stream, get_status, proc_stat, submit, wait_status,
                      wait_until)

AGENTS = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "agents"))
RUNS = "/api/v1/runs"


def script(name):
    return os.path.join(AGENTS, name)


def command_server(make_server, command, *args, env=None):
    """A runq whose jobs run `command` (a string given to --agent-command as is)."""
    return make_server("--agent", "command", "--agent-command", command, *args, env=env)


# --- process checks ----------------------------------------------------------------------

def live_group(pgid):
    """Pids of the live (non-zombie) processes in process group `pgid`."""
    members = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            st = proc_stat(int(name))
            if st and st[1] == pgid and st[0] not in ("Z", "X"):
                members.append(int(name))
    return members


def read_pids(path, timeout=10):
    """Waits for a script's pid file: (leader pid, grandchild pid)."""
    def read():
        try:
            with open(path) as f:
                a, b = f.read().split()
            return int(a), int(b)
        except (FileNotFoundError, ValueError):
            return None
    return wait_until(read, timeout=timeout, what=f"pid file {path}")


def assert_all_gone(leader, grandchild, timeout=3):
    """The whole process group is gone (a SIGKILLed process may take a moment)."""
    try:
        wait_until(lambda: not live_group(leader) and not alive(leader) and not alive(grandchild),
                   timeout=timeout, what=f"process group {leader} to be gone")
    finally:
        for pid in (leader, grandchild):  # never leave a test's processes behind
            try:
                if alive(pid):
                    os.kill(pid, 9)
            except ProcessLookupError:
                pass


@pytest.fixture
def leftovers():
    """Kills whatever pid files named by the test still list, if the test failed early."""
    files = []
    yield files
    for path in files:
        try:
            with open(path) as f:
                for pid in f.read().split():
                    if alive(int(pid)):
                        os.kill(int(pid), 9)
        except (OSError, ValueError):
            pass


# --- results and errors --------------------------------------------------------------------

def test_stdout_is_the_result(make_server):
    srv = command_server(make_server, script("echo.sh"))
    prompt = "first line\nzweite Zeile — ✓\n\tand no newline at the end"
    with srv.client() as c:
        job = submit(c, prompt)
        st = wait_status(c, job["job_id"])
        assert st["status"] == "succeeded", st
        assert st["agent_id"] == "command"
        assert st["progress"]["percentage"] == 100.0
        r = c.get(f"{RUNS}/{job['job_id']}/result")
        assert r.status_code == 200, r.text
        assert r.json()["result"] == prompt


def test_bytes_that_are_not_utf8_do_not_break_the_server(make_server):
    # printf turns the octal escapes into bytes: NUL, an invalid 0xFF, a lone 0xC3.
    srv = command_server(make_server, r"printf 'caf\303\251 a\000b \377 \303'")
    with srv.client() as c:
        for _ in range(2):  # the server is still there for the second job
            job = submit(c, "x")
            st = wait_status(c, job["job_id"])
            assert st["status"] == "succeeded", st
            r = c.get(f"{RUNS}/{job['job_id']}/result")
            # PostgreSQL's text cannot hold NUL: it is stored as U+FFFD (docs/scale-out.md).
            nul = "\u0000" if STORE == "sqlite" else "\ufffd"
            assert r.json()["result"] == f"caf\u00e9 a{nul}b \ufffd \ufffd"


def test_big_prompt_and_chatty_program(make_server):
    srv = command_server(make_server, script("chatty.py"))
    prompt = "p" * 900_000  # under the 1 MiB body limit
    with srv.client() as c:
        job = submit(c, prompt)
        st = wait_status(c, job["job_id"], timeout=30)
        assert st["status"] == "succeeded", st
        result = c.get(f"{RUNS}/{job['job_id']}/result").json()["result"]
        assert result == "y" * (1 << 20) + f"\nread {len(prompt)} bytes"


def test_progress_in_status_and_stream(make_server):
    srv = command_server(make_server, script("progress.sh") + " 0.8")
    with srv.client() as c:
        job = submit(c, "go")
        jid = job["job_id"]

        def half_way():
            st = get_status(c, jid)
            return st if st["progress"]["current_step"] == "half way" else None
        st = wait_until(half_way, timeout=10, what="progress 'half way'")
        assert st["status"] == "running", st
        assert st["progress"]["percentage"] == 50.0
        assert st["progress"]["steps_completed"] == 1

        _, events = collect_stream(c, jid, timeout=20)
        progress = [e.data for e in events if e.event == "progress"]
        # the script's three reports (the server may add its own 100% at the end)
        assert progress[:3] == [{"percentage": 10.0, "step": "starting"},
                                {"percentage": 50.0, "step": "half way"},
                                {"percentage": 90.0, "step": None}], progress
        assert all(p["percentage"] == 100.0 for p in progress[3:]), progress
        assert events[-1].event == "result"
        assert events[-1].data == {"result": "done\n"}

        st = get_status(c, jid)
        assert st["status"] == "succeeded"
        assert st["progress"]["percentage"] == 100.0
    # ordinary stderr lines went to the server log, tagged with the job id
    wait_until(lambda: any(f"job {jid}: a plain log line" in line for line in srv.log),
               timeout=5, what="the stderr line in the server log")
    assert not any(f"job {jid}: ::progress" in line for line in srv.log)


def test_failure_carries_exit_status_and_stderr_tail(make_server):
    srv = command_server(make_server, script("fail.sh") + " 3 25")
    with srv.client() as c:
        job = submit(c, "x")
        st = wait_status(c, job["job_id"])
        assert st["status"] == "failed", st
        head = "Command exited with status 3: "
        assert st["error"].startswith(head), st["error"]
        tail = st["error"][len(head):].split("\n")
        assert tail == [f"error line {i}" for i in range(6, 26)]  # the last 20 lines
        r = c.get(f"{RUNS}/{job['job_id']}/result")
        assert r.status_code == 400
        assert r.json() == {"detail": "Job failed. No result available.", "error": st["error"]}
        _, events = collect_stream(c, job["job_id"])
        assert events[-1].event == "error"
        assert events[-1].data == {"error": st["error"]}


def test_killed_by_signal(make_server):
    srv = command_server(make_server, script("segv.sh"))
    with srv.client() as c:
        job = submit(c, "x")
        st = wait_status(c, job["job_id"])
        assert st["status"] == "failed", st
        assert st["error"] == "Command was killed by signal SIGSEGV (11): about to crash"


def test_program_not_found(make_server):
    srv = command_server(make_server, "/nonexistent/praisonai run")
    with srv.client() as c:
        job = submit(c, "x")
        st = wait_status(c, job["job_id"])
        assert st["status"] == "failed", st
        assert st["error"] == "Cannot run /nonexistent/praisonai: No such file or directory"


def test_unclosed_quote_refuses_to_start(make_server):
    with pytest.raises(RuntimeError) as err:
        command_server(make_server, script("echo.sh") + " 'unclosed")
    assert "quote" in str(err.value), str(err.value)


# --- environment and quoting -------------------------------------------------------------

def test_job_fields_arrive_in_the_environment(make_server):
    srv = command_server(make_server, script("env_dump.py"),
                         env={"RUNQ_TEST_INHERITED": "from the server"})
    with srv.client() as c:
        job = submit(c, "the prompt", session_id="sess-7", agent_file="agents.yaml",
                     recipe_name="summarise", recipe_config={"depth": 2},
                     framework="crewai", config={"model": "m", "t": 0.5},
                     metadata={"team": "blue"}, timeout=120)
        st = wait_status(c, job["job_id"])
        assert st["status"] == "succeeded", st
        out = json.loads(c.get(f"{RUNS}/{job['job_id']}/result").json()["result"])
    env = out["env"]
    assert env["RUNQ_JOB_ID"] == job["job_id"]
    assert env["RUNQ_SESSION_ID"] == "sess-7"
    assert env["RUNQ_AGENT_FILE"] == "agents.yaml"
    assert "RUNQ_AGENT_YAML" not in env
    assert env["RUNQ_RECIPE_NAME"] == "summarise"
    assert json.loads(env["RUNQ_RECIPE_CONFIG"]) == {"depth": 2}
    assert env["RUNQ_FRAMEWORK"] == "crewai"
    assert json.loads(env["RUNQ_CONFIG"]) == {"model": "m", "t": 0.5}
    assert json.loads(env["RUNQ_METADATA"]) == {"team": "blue"}
    assert env["RUNQ_ATTEMPT"] == "1"
    assert env["RUNQ_TIMEOUT"] == "120"
    assert out["inherited"] == "from the server"
    assert out["stdin"] == "the prompt"
    assert out["pgid"] == out["pid"]  # its own process group


def test_agent_command_quoting(make_server, tmp_path):
    # The program's own path has a space in it, and the arguments need every kind of quote.
    d = tmp_path / "my agents"
    d.mkdir()
    prog = d / "args.py"
    shutil.copy(script("args.py"), prog)
    os.chmod(prog, 0o755)
    command = (shlex.quote(str(prog)) +
               r""" 'a b' "c \"d\" \$e" f\ g '$HOME' "*" '' x;y""")
    srv = command_server(make_server, command)
    with srv.client() as c:
        job = submit(c, "x")
        st = wait_status(c, job["job_id"])
        assert st["status"] == "succeeded", st
        args = json.loads(c.get(f"{RUNS}/{job['job_id']}/result").json()["result"])
    assert args == ["a b", 'c "d" $e', "f g", "$HOME", "*", "", "x;y"]


# --- output limit ------------------------------------------------------------------------

def test_output_over_the_limit_fails(make_server):
    srv = command_server(make_server, script("big_output.py") + " 5000 --then-sleep",
                         "--max-output", "4096", "--kill-grace", "0.5")
    with srv.client() as c:
        job = submit(c, "x")
        st = wait_status(c, job["job_id"], timeout=10)
        assert st["status"] == "failed", st
        assert st["error"] == "Output exceeded the limit of 4096 bytes"


def test_output_at_the_limit_is_fine(make_server):
    srv = command_server(make_server, script("big_output.py") + " 4096", "--max-output", "4096")
    with srv.client() as c:
        job = submit(c, "x")
        st = wait_status(c, job["job_id"])
        assert st["status"] == "succeeded", st
        assert c.get(f"{RUNS}/{job['job_id']}/result").json()["result"] == "x" * 4096


# --- cancel, timeout, grace: no process outlives its job ----------------------------------

def test_cancel_kills_the_whole_process_group(make_server, tmp_path, leftovers):
    pid_file = str(tmp_path / "pids")
    leftovers.append(pid_file)
    srv = command_server(make_server, script("sleeper_tree.py"))
    with srv.client() as c:
        job = submit(c, "x", config={"pid_file": pid_file})
        leader, grandchild = read_pids(pid_file)
        assert alive(leader) and alive(grandchild)
        assert proc_stat(grandchild)[1] == leader  # same process group
        assert wait_status(c, job["job_id"], "running")["status"] == "running"

        t0 = time.monotonic()
        r = c.post(f"{RUNS}/{job['job_id']}/cancel")
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "cancelled"
        assert_all_gone(leader, grandchild, timeout=3)
        assert time.monotonic() - t0 < 3
        st = get_status(c, job["job_id"])
        assert st["status"] == "cancelled"
        # the worker slot is free again: nothing running
        wait_until(lambda: c.get("/health").json()["executor_stats"]["running_jobs"] == 0,
                   timeout=5, what="the worker slot to be free")


def test_timeout_fails_the_job_and_kills_the_group(make_server, tmp_path, leftovers):
    pid_file = str(tmp_path / "pids")
    leftovers.append(pid_file)
    srv = command_server(make_server, script("sleeper_tree.py"))
    with srv.client() as c:
        # 3 s: time for the (Python) script to write its pid file on a loaded machine
        # before the timeout kills it.
        job = submit(c, "x", config={"pid_file": pid_file}, timeout=3)
        leader, grandchild = read_pids(pid_file)
        st = wait_status(c, job["job_id"], timeout=10)
        assert st["status"] == "failed", st
        assert st["error"] == "Job timed out after 3s"
        assert_all_gone(leader, grandchild, timeout=3)


def test_kill_grace_then_sigkill(make_server, tmp_path, leftovers):
    pid_file = str(tmp_path / "pids")
    leftovers.append(pid_file)
    srv = command_server(make_server, f"{script('ignore_term.sh')} {shlex.quote(pid_file)}",
                         "--kill-grace", "1.5")
    with srv.client() as c:
        job = submit(c, "x")
        leader, grandchild = read_pids(pid_file)
        wait_status(c, job["job_id"], "running")
        t0 = time.monotonic()
        assert c.post(f"{RUNS}/{job['job_id']}/cancel").json()["status"] == "cancelled"
        # SIGTERM is ignored: both are still there during the grace period ...
        time.sleep(0.7)
        assert alive(leader) and alive(grandchild)
        assert c.get("/health").json()["executor_stats"]["running_jobs"] == 1
        # ... and SIGKILL ends them when it is over.
        assert_all_gone(leader, grandchild, timeout=4)
        took = time.monotonic() - t0
        assert 1.4 <= took < 4.5, took
        wait_until(lambda: c.get("/health").json()["executor_stats"]["running_jobs"] == 0,
                   timeout=5, what="the worker slot to be free")
        assert get_status(c, job["job_id"])["status"] == "cancelled"


def test_grandchild_left_behind_on_success_is_killed(make_server, tmp_path, leftovers):
    pid_file = str(tmp_path / "pids")
    leftovers.append(pid_file)
    srv = command_server(make_server, f"{script('sleeper_tree.py')} --exit")
    with srv.client() as c:
        job = submit(c, "x", config={"pid_file": pid_file})
        st = wait_status(c, job["job_id"], timeout=10)
        assert st["status"] == "succeeded", st
        assert c.get(f"{RUNS}/{job['job_id']}/result").json()["result"] == "leaving\n"
        leader, grandchild = read_pids(pid_file)
        assert_all_gone(leader, grandchild)


def test_server_shutdown_leaves_no_process(make_server, tmp_path, leftovers):
    pid_file = str(tmp_path / "pids")
    leftovers.append(pid_file)
    srv = command_server(make_server, script("sleeper_tree.py"))
    with srv.client() as c:
        submit(c, "x", config={"pid_file": pid_file})
        leader, grandchild = read_pids(pid_file)
    assert srv.terminate(20) == 0
    assert_all_gone(leader, grandchild)
