"""Fixtures that start the real runq binary on a free port and talk HTTP to it."""
import os
import re
import signal
import subprocess
import threading
import time

import httpx
import pytest

RUNQ_BIN = os.environ.get(
    "RUNQ_BIN", os.path.join(os.path.dirname(__file__), "..", "..", "build", "runq"))
LISTEN_RE = re.compile(r"listening on (http://[^\s]+)")


class RunqServer:
    """One runq process. `url` is its base URL; `log` holds what it printed."""

    def __init__(self, db_path, args=(), env=None):
        self.db_path = db_path
        self.args = list(args)
        self.env = env
        self.proc = None
        self.url = None
        self.log = []

    def start(self, timeout=15):
        cmd = [RUNQ_BIN, "serve", "--port", "0", "--db", self.db_path] + self.args
        env = dict(os.environ)
        env.update(self.env or {})
        self.log = []
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True, env=env)
        found = threading.Event()

        def pump():
            for line in self.proc.stdout:
                self.log.append(line)
                m = LISTEN_RE.search(line)
                if m and not found.is_set():
                    self.url = m.group(1)
                    found.set()
            found.set()

        threading.Thread(target=pump, daemon=True).start()
        if not found.wait(timeout) or self.url is None:
            self.kill()
            raise RuntimeError("runq did not start:\n" + "".join(self.log))
        return self

    def client(self, **kw):
        return httpx.Client(base_url=self.url, timeout=kw.pop("timeout", 30), **kw)

    def kill(self):
        """kill -9: the process gets no chance to clean up."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def terminate(self, timeout=30):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                raise
        return self.proc.returncode if self.proc else None

    def wait_for_status(self, job_id, statuses=("succeeded", "failed", "cancelled"),
                        timeout=20):
        """Polls until the job reaches one of `statuses`; returns its status object."""
        deadline = time.time() + timeout
        with self.client() as c:
            while True:
                body = c.get(f"/api/v1/runs/{job_id}").json()
                if body.get("status") in statuses:
                    return body
                if time.time() > deadline:
                    raise AssertionError(f"job {job_id} stuck in {body}")
                time.sleep(0.02)


@pytest.fixture
def make_server(tmp_path):
    """Factory: make_server(*extra_args, db=None, env=None) -> started RunqServer."""
    servers = []

    def make(*args, db=None, env=None):
        s = RunqServer(db or str(tmp_path / "runq.db"), args, env).start()
        servers.append(s)
        return s

    yield make
    for s in servers:
        try:
            s.terminate(10)
        except Exception:
            s.kill()


@pytest.fixture
def server(make_server):
    """A fresh runq with its own SQLite file, the echo agent and default settings."""
    return make_server()


@pytest.fixture
def client(server):
    with server.client() as c:
        yield c
