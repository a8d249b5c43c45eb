"""Fixtures that start the real runq binary on a free port and talk HTTP to it.

The suite runs against either store: RUNQ_TEST_STORE=sqlite (the default) or
postgresql. With PostgreSQL, each SQLite file path a test names (`db=...`, or the
fixture's own) stands for a fresh database of its own on one throwaway server that the
run starts (scripts/pg-test-server.sh; or RUNQ_TEST_PG_URI, a server already running):
a restart on the same path finds the same database. Tests about SQLite's own file are
marked `sqlite_only` and are deselected (and counted as such) on PostgreSQL."""
import hashlib
from contextlib import closing as _closing
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest

RUNQ_BIN = os.environ.get(
    "RUNQ_BIN", os.path.join(os.path.dirname(__file__), "..", "..", "build", "runq"))
LISTEN_RE = re.compile(r"listening on (http://[^\s]+)")
# What a sanitizer build of runq (scripts/test-sanitized.sh) prints when it finds a bug.
SANITIZER_RE = re.compile(r"ERROR: (Address|Leak|Memory)Sanitizer|WARNING: ThreadSanitizer|"
                          r"runtime error: |SUMMARY: \w+Sanitizer")


STORE = os.environ.get("RUNQ_TEST_STORE", "sqlite")
assert STORE in ("sqlite", "postgresql"), f"RUNQ_TEST_STORE={STORE!r}: sqlite or postgresql"
PG_SCRIPT = os.path.join(os.path.dirname(__file__), "..", "..", "scripts", "pg-test-server.sh")


class Postgres:
    """The run's PostgreSQL server, started on first use; a fresh database per path."""

    def __init__(self):
        self.dir = None     # the throwaway server's directory (None: RUNQ_TEST_PG_URI's)
        self.uri = None     # the server's URI (its `postgres` database)
        self.conn = None
        self.databases = {}  # SQLite path -> URI of its database

    def server_uri(self):
        if self.uri is None:
            self.uri = os.environ.get("RUNQ_TEST_PG_URI")
            if not self.uri:
                self.dir = tempfile.mkdtemp(prefix="runq-pg-")
                out = subprocess.run(["bash", PG_SCRIPT, "start", self.dir], check=True,
                                     capture_output=True, text=True)
                self.uri = out.stdout.strip()
        return self.uri

    def connection(self):
        if self.conn is None:
            import psycopg2  # Debian's python3-psycopg2; only the PostgreSQL run needs it
            self.conn = psycopg2.connect(self.server_uri())
            self.conn.autocommit = True
        return self.conn

    def execute(self, sql, params=None):
        with self.connection().cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchall() if cur.description else None

    def database_for(self, path):
        """The URI of the database that stands for SQLite file `path` (created once)."""
        if path not in self.databases:
            name = "runq_" + hashlib.sha1(path.encode()).hexdigest()[:20]
            # FILE_COPY: a small database copied at once (fsync is off) beats WAL_LOG.
            self.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            self.execute(f"CREATE DATABASE {name} STRATEGY FILE_COPY")
            parts = urlsplit(self.server_uri())
            self.databases[path] = urlunsplit(parts._replace(path="/" + name))
        return self.databases[path]

    def connection_to(self, path):
        """A new connection to the database of SQLite path `path` (close it after use)."""
        import psycopg2
        con = psycopg2.connect(self.database_for(path))
        con.autocommit = True
        return _closing(con)

    def drop(self, path):
        uri = self.databases.pop(path, None)
        if uri:
            self.execute(f"DROP DATABASE IF EXISTS {urlsplit(uri).path[1:]} WITH (FORCE)")

    def crash(self):
        """Stops the server as a crash would (`pg_ctl stop -m immediate`)."""
        self._close()
        subprocess.run(["bash", PG_SCRIPT, "stop", self.dir, "immediate"], check=True,
                       capture_output=True)

    def restart(self):
        subprocess.run(["bash", PG_SCRIPT, "restart", self.dir], check=True,
                       capture_output=True)

    def _close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def stop(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None
        if self.dir:
            subprocess.run(["bash", PG_SCRIPT, "stop", self.dir, "immediate"], check=False,
                           capture_output=True)
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None


POSTGRES = Postgres()


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "sqlite_only: about SQLite's own file (deselected on PostgreSQL)")
    config.addinivalue_line(
        "markers", "postgresql_only: several nodes on one database (deselected on SQLite)")


def pytest_collection_modifyitems(config, items):
    other = "sqlite_only" if STORE == "postgresql" else "postgresql_only"
    keep = [i for i in items if i.get_closest_marker(other) is None]
    dropped = [i for i in items if i.get_closest_marker(other) is not None]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep


def pytest_unconfigure(config):
    POSTGRES.stop()


def db_arg(db_path):
    """What runq's --db is for this SQLite path in this run (the path, or a database)."""
    if STORE == "postgresql" and not db_path.startswith(("postgresql://", "postgres://")):
        return POSTGRES.database_for(db_path)
    return db_path


def db_rows(db_path, sql, params=()):
    """Rows of a read query (`?` placeholders) run straight on the store behind
    `db_path`: the SQLite file, or its PostgreSQL database. For tests that look past the
    API at what is stored (a process killed, a drain)."""
    if STORE == "postgresql":
        with POSTGRES.connection_to(db_path) as con, con.cursor() as cur:
            cur.execute(sql.replace("?", "%s"), params)
            return [tuple(r) for r in cur.fetchall()]
    import sqlite3
    con = sqlite3.connect(db_path, timeout=10)
    try:
        return con.execute(sql, params).fetchall()
    finally:
        con.close()


class RunqServer:
    """One runq process. `url` is its base URL; `log` holds what it printed."""

    def __init__(self, db_path, args=(), env=None):
        self.db_path = db_path
        self.args = list(args)
        self.env = env
        self.proc = None
        self.url = None
        self.log = []
        self.pump = None

    def start(self, timeout=15):
        cmd = [RUNQ_BIN, "serve", "--port", "0", "--db", db_arg(self.db_path)] + self.args
        env = dict(os.environ)
        # Servers are stopped at teardown with jobs still running; draining them would
        # only slow the suite. Tests of the drain pass --drain-timeout themselves.
        env.setdefault("RUNQ_DRAIN_TIMEOUT", "0")
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

        self.pump = threading.Thread(target=pump, daemon=True)
        self.pump.start()
        if not found.wait(timeout) or self.url is None:
            self.kill()
            raise RuntimeError("runq did not start:\n" + "".join(self.log))
        return self

    def sanitizer_reports(self):
        """Lines of sanitizer reports in what the process printed (once it has exited)."""
        if self.pump:
            self.pump.join(10)
        return [line for line in self.log if SANITIZER_RE.search(line)]

    def client(self, **kw):
        return httpx.Client(base_url=self.url, timeout=kw.pop("timeout", 30), **kw)

    def kill(self):
        """kill -9: the process gets no chance to clean up."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.drain_log()

    def terminate(self, timeout=30):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                code = self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                raise
            self.drain_log()
            return code
        return self.proc.returncode if self.proc else None

    def drain_log(self):
        """After the process has exited: wait until `log` holds all it printed."""
        if self.pump and self.proc and self.proc.poll() is not None:
            self.pump.join(10)

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
    if STORE == "postgresql":
        for path in {s.db_path for s in servers}:
            POSTGRES.drop(path)
    # Under ASan/UBSan/TSan a report fails the test even if every answer was right.
    reports = [(s, s.sanitizer_reports()) for s in servers]
    for s, lines in reports:
        if lines:
            pytest.fail("sanitizer report from runq:\n" + "".join(s.log[-200:]), pytrace=False)


@pytest.fixture
def server(make_server):
    """A fresh runq with its own SQLite file, the echo agent and default settings."""
    return make_server()


@pytest.fixture
def client(server):
    with server.client() as c:
        yield c


# ---------------------------------------------------------------------------------------
# Helpers and fixtures for the HTTP API tests (test_api_*.py, test_seed_workflow.py,
# test_scheduling.py, test_durability.py). Additions only: the fixtures above are unchanged.
# Test modules import the helpers with `from conftest import ...`.
# ---------------------------------------------------------------------------------------
import json as _json
import socket as _socket
from datetime import datetime as _datetime, timezone as _timezone
from urllib.parse import urlsplit as _urlsplit

JOB_ID_RE = re.compile(r"^run_[0-9a-f]{12,}$")
TS_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$")
TERMINAL = ("succeeded", "failed", "cancelled")
STATUSES = ("queued", "running", "succeeded", "failed", "cancelled")
# Every field of the Job record, plus the extensions runq always carries.
JOB_RECORD_FIELDS = {"job_id", "status", "progress", "created_at", "started_at",
                     "completed_at", "agent_id", "run_id", "session_id", "error",
                     "retry_after"}
JOB_EXTENSION_FIELDS = {"priority", "metadata", "attempts", "timeout"}
PROGRESS_FIELDS = {"percentage", "current_step", "steps_completed", "steps_total"}


def parse_ts(value):
    """RFC 3339 `...T..:..:..ffffffZ` -> aware datetime (asserts the exact format)."""
    assert isinstance(value, str) and TS_RE.match(value), f"bad timestamp {value!r}"
    return _datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=_timezone.utc)


def ts_seconds(value):
    return parse_ts(value).timestamp()


def json_number_token(text, key):
    """The raw JSON text of the number that follows `"key":` in `text` (first match)."""
    m = re.search(r'"' + re.escape(key) + r'"\s*:\s*(-?[0-9][0-9.eE+\-]*)', text)
    assert m, f"no number for {key!r} in {text!r}"
    return m.group(1)


def is_float_token(token):
    """JSON floats in runq always carry a decimal point (or an exponent)."""
    return "." in token or "e" in token or "E" in token


def submit(client, prompt="hello", *, expect=202, headers=None, **fields):
    """POSTs a job; asserts the status code; returns the parsed body."""
    body = {"prompt": prompt}
    body.update(fields)
    r = client.post("/api/v1/runs", json=body, headers=headers)
    assert r.status_code == expect, (r.status_code, r.text)
    return r.json()


def get_status(client, job_id):
    r = client.get(f"/api/v1/runs/{job_id}")
    assert r.status_code == 200, (r.status_code, r.text)
    return r.json()


def wait_status(client, job_id, statuses=TERMINAL, timeout=20, interval=0.01):
    """Polls the status until it is one of `statuses`; returns the status object."""
    if isinstance(statuses, str):
        statuses = (statuses,)
    deadline = time.monotonic() + timeout
    while True:
        body = get_status(client, job_id)
        if body["status"] in statuses:
            return body
        if time.monotonic() > deadline:
            raise AssertionError(f"job {job_id} never reached {statuses}: {body}")
        time.sleep(interval)


def proc_stat(pid):
    """(state, pgrp) of a process, or None if there is none."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            s = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = s[s.rindex(")") + 2:].split()
    return fields[0], int(fields[2])


def alive(pid):
    """Zombies count as gone: this machine's init may never reap orphans."""
    st = proc_stat(pid)
    return st is not None and st[0] not in ("Z", "X")


def wait_until(fn, timeout=10, interval=0.01, what="condition"):
    """Calls fn() until it returns something truthy; returns that value."""
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(interval)


def list_all(client, **params):
    """Every job of the list endpoint (all pages, page_size 100), newest first."""
    jobs, page = [], 1
    while True:
        r = client.get("/api/v1/runs", params=dict(params, page=page, page_size=100))
        assert r.status_code == 200, r.text
        body = r.json()
        jobs.extend(body["jobs"])
        if len(body["jobs"]) < 100:
            return jobs, body["total"]
        page += 1


class SSEEvent:
    """One Server-Sent Event as read off the wire."""

    def __init__(self, fields, comments):
        self.fields = fields          # [(name, value)] in wire order
        self.comments = comments      # comment lines (":...") seen before it
        self.t = time.monotonic()     # when it was read
        names = [n for n, _ in fields]
        self.names = names
        self.event = next((v for n, v in fields if n == "event"), None)
        self.id = next((v for n, v in fields if n == "id"), None)
        self.data_lines = [v for n, v in fields if n == "data"]
        self.data_raw = "\n".join(self.data_lines)
        try:
            self.data = _json.loads(self.data_raw)
        except ValueError:
            self.data = None

    @property
    def id_int(self):
        return int(self.id)

    def __repr__(self):
        return f"SSEEvent({self.fields!r})"


def iter_sse(response):
    """Parses an SSE response incrementally; yields SSEEvent objects as they arrive."""
    buf = b""
    fields, comments = [], []
    for chunk in response.iter_bytes():
        buf += chunk
        while True:
            idx = buf.find(b"\n")
            if idx < 0:
                break
            line, buf = buf[:idx], buf[idx + 1:]
            if line.endswith(b"\r"):
                line = line[:-1]
            text = line.decode("utf-8")
            if text == "":
                if fields:
                    yield SSEEvent(fields, comments)
                fields, comments = [], []
            elif text.startswith(":"):
                comments.append(text)
            else:
                name, _, value = text.partition(":")
                if value.startswith(" "):
                    value = value[1:]
                fields.append((name, value))
    if fields:
        yield SSEEvent(fields, comments)


def collect_stream(client, job_id, headers=None, timeout=15, read_timeout=10):
    """Reads a job's whole stream (until the server ends it); returns (response, events).
    Fails if it takes longer than `timeout` seconds overall."""
    deadline = time.monotonic() + timeout
    events = []
    with client.stream("GET", f"/api/v1/runs/{job_id}/stream", headers=headers,
                       timeout=read_timeout) as r:
        assert r.status_code == 200, (r.status_code, r.read())
        for ev in iter_sse(r):
            events.append(ev)
            if time.monotonic() > deadline:
                raise AssertionError(f"stream of {job_id} did not end: {events}")
    return r, events


def raw_http(url, request_bytes, timeout=5.0, send_body=None):
    """Sends raw bytes to the server of `url`; returns (status, headers, body bytes) of
    the first response (body read by Content-Length, or until close)."""
    parts = _urlsplit(url)
    s = _socket.create_connection((parts.hostname, parts.port), timeout=timeout)
    try:
        s.sendall(request_bytes)
        if send_body is not None:
            try:
                s.sendall(send_body)
            except OSError:
                pass
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        n = int(headers.get("content-length", "-1"))
        while (n < 0 or len(body) < n):
            try:
                chunk = s.recv(65536)
            except OSError:
                break
            if not chunk:
                break
            body += chunk
        return status, headers, body[:n] if n >= 0 else body
    finally:
        s.close()


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory):
    """One runq per test module, for tests whose requests change no shared state that
    another test of the module looks at (validation errors, 404s, 405s, ...)."""
    s = RunqServer(str(tmp_path_factory.mktemp("shared") / "runq.db")).start()
    yield s
    try:
        s.terminate(10)
    except Exception:
        s.kill()
    if STORE == "postgresql":
        POSTGRES.drop(s.db_path)


@pytest.fixture
def shared_client(shared_server):
    with shared_server.client() as c:
        yield c
