"""Hostile HTTP clients against the real runq binary, over raw sockets.

Limits, timeouts and framing: 431 for a huge header block, slowloris and idle keep-alive
timeouts, 413 without reading the body, pipelining, HTTP/1.0 and Connection: close,
chunked bodies and Expect: 100-continue, bad bytes in JSON strings and absurd query
values (422), --max-connections (503), garbage and clients that vanish mid-request.

Tests that need a non-default limit start their own runq with the flag
(--header-timeout, --idle-timeout, --max-header-bytes, --max-connections); the others
share one runq per module.
"""
import json
import select
import socket
import struct
import threading
import time
from urllib.parse import urlsplit

import pytest

from conftest import raw_http, submit


# ---------------------------------------------------------------------------------------
# A raw connection that can read several responses off one socket.

class RawConn:
    def __init__(self, url, timeout=5.0):
        parts = urlsplit(url)
        self.sock = socket.create_connection((parts.hostname, parts.port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.timeout = timeout

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send(self, data):
        self.sock.sendall(data)

    def _fill(self, timeout=None):
        """Reads more bytes into the buffer; False on end of stream or reset.
        Raises socket.timeout if nothing comes within `timeout`."""
        self.sock.settimeout(self.timeout if timeout is None else timeout)
        try:
            chunk = self.sock.recv(65536)
        except (ConnectionResetError, BrokenPipeError):
            return False
        if not chunk:
            return False
        self.buf += chunk
        return True

    def read_until(self, delim, timeout=None):
        while delim not in self.buf:
            if not self._fill(timeout):
                raise AssertionError(f"connection ended before {delim!r}; got {self.buf!r}")
        idx = self.buf.index(delim) + len(delim)
        out, self.buf = self.buf[:idx], self.buf[idx:]
        return out

    def read_n(self, n):
        while len(self.buf) < n:
            if not self._fill():
                raise AssertionError(f"connection ended after {len(self.buf)} of {n} bytes")
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def read_head(self, timeout=None):
        head = self.read_until(b"\r\n\r\n", timeout).decode("latin-1")
        lines = head[:-4].split("\r\n")
        assert lines[0].startswith("HTTP/1."), lines[0]
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        return status, headers

    def read_response(self, timeout=None):
        """(status, headers, body bytes) of the next response on this connection."""
        status, headers = self.read_head(timeout)
        if headers.get("transfer-encoding", "").lower() == "chunked":
            body = b""
            while True:
                size = int(self.read_until(b"\r\n").strip().split(b";")[0], 16)
                data = self.read_n(size)
                assert self.read_n(2) == b"\r\n"
                if size == 0:
                    break
                body += data
        elif "content-length" in headers:
            body = self.read_n(int(headers["content-length"]))
        else:
            while self._fill():
                pass
            body, self.buf = self.buf, b""
        return status, headers, body

    def closed_by_peer(self, timeout=3.0):
        """True if the server closes (or resets) the connection within `timeout`
        without sending anything more."""
        if self.buf:
            return False
        try:
            return not self._fill(timeout)
        except socket.timeout:
            return False


def req(method, target, headers=(), body=b"", version="1.1", host=True):
    lines = [f"{method} {target} HTTP/{version}"]
    if host:
        lines.append("Host: localhost")
    lines.extend(headers)
    if body and not any(h.lower().startswith(("content-length", "transfer-encoding"))
                        for h in headers):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def get(target, *headers, version="1.1"):
    return req("GET", target, headers, version=version)


def post_json(target, body_bytes, *headers):
    return req("POST", target, ("Content-Type: application/json",) + headers, body_bytes)


def detail(body):
    return json.loads(body)["detail"]


def server_alive(srv):
    assert srv.proc.poll() is None, "runq exited:\n" + "".join(srv.log[-50:])
    status, _, body = raw_http(srv.url, get("/health", "Connection: close"))
    assert status == 200, body


@pytest.fixture
def srv(shared_server):
    """The module's shared runq (default limits); checked to be alive after each test."""
    yield shared_server
    server_alive(shared_server)


# ---------------------------------------------------------------------------------------
# Header block limits

def test_header_block_over_default_limit_gets_431_and_close(srv):
    big = "X-Big: " + "a" * 40_000  # the default limit is 16 KiB
    with RawConn(srv.url) as c:
        c.send(get("/health", big))
        status, headers, body = c.read_response()
        assert status == 431
        assert headers.get("connection") == "close"
        assert headers.get("content-type") == "application/json"
        assert detail(body) == "Request header fields too large"
        assert c.closed_by_peer()


def test_many_small_headers_over_limit_get_431(srv):
    many = [f"X-H{i}: {'v' * 50}" for i in range(600)]  # ~36 KB in small headers
    status, headers, body = raw_http(srv.url, get("/health", *many))
    assert status == 431, body


def test_max_header_bytes_flag(make_server):
    s = make_server("--max-header-bytes", "2048")
    status, _, _ = raw_http(s.url, get("/health", "X-Pad: " + "p" * 1000))
    assert status == 200
    status, headers, body = raw_http(s.url, get("/health", "X-Pad: " + "p" * 3000))
    assert status == 431, body
    assert headers.get("connection") == "close"


def test_request_target_of_10kb_is_served(srv):
    target = "/api/v1/runs?session_id=" + "s" * 10_000
    status, _, body = raw_http(srv.url, get(target))
    assert status == 200, body
    page = json.loads(body)
    assert page["jobs"] == [] and page["total"] == 0


def test_request_target_over_header_limit_gets_431(srv):
    status, _, _ = raw_http(srv.url, get("/api/v1/runs?session_id=" + "s" * 40_000))
    assert status == 431


# ---------------------------------------------------------------------------------------
# Timeouts

def _time_until_closed(c, trickle=None, limit=6.0, step=0.2):
    """Seconds until the server closes `c` (sending `trickle` bytes one at a time every
    `step` seconds meanwhile), or None if it is still open after `limit` seconds."""
    t0 = time.monotonic()
    pending = bytearray(trickle or b"")
    while time.monotonic() - t0 < limit:
        if pending:
            try:
                c.sock.sendall(bytes(pending[:1]))
            except OSError:
                return time.monotonic() - t0
            del pending[:1]
        r, _, _ = select.select([c.sock], [], [], step)
        if r:
            try:
                data = c.sock.recv(65536)
            except OSError:
                return time.monotonic() - t0
            if not data:
                return time.monotonic() - t0
            raise AssertionError(f"unexpected data from the server: {data!r}")
    return None


def test_slowloris_cut_off_after_header_timeout(make_server):
    s = make_server("--header-timeout", "1")
    with RawConn(s.url) as c:
        c.send(b"GET /health HTTP/1.1\r\n")
        # One byte every 0.2 s, forever: each byte arrives well within any per-read
        # timeout, so only a deadline on the whole header block can end this.
        took = _time_until_closed(c, trickle=b"X-Slow: " + b"z" * 1000)
    assert took is not None, "slowloris client was never cut off"
    assert 0.7 <= took < 3.0, took
    server_alive(s)


def test_silent_connection_closed_after_header_timeout(make_server):
    s = make_server("--header-timeout", "1")
    with RawConn(s.url) as c:
        took = _time_until_closed(c)
    assert took is not None and 0.7 <= took < 3.0, took


def test_trickled_body_cut_off_after_body_timeout(make_server):
    s = make_server("--body-timeout", "1")
    with RawConn(s.url) as c:
        c.send(b"POST /api/v1/runs HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
               b"Content-Length: 5000\r\n\r\n")
        # The body comes a byte every 0.2 s: only a deadline on the whole body ends it.
        took = _time_until_closed(c, trickle=b"{" + b" " * 4000)
    assert took is not None, "a client trickling its body was never cut off"
    assert 0.7 <= took < 3.0, took
    server_alive(s)


def test_idle_keepalive_connection_closed_after_idle_timeout(make_server):
    s = make_server("--idle-timeout", "1", "--header-timeout", "10")
    with RawConn(s.url) as c:
        c.send(get("/health"))
        status, headers, _ = c.read_response()
        assert status == 200 and headers.get("connection") != "close"
        t0 = time.monotonic()
        assert c.closed_by_peer(timeout=4.0)
        took = time.monotonic() - t0
    assert 0.7 <= took < 3.0, took


def test_keepalive_connection_survives_a_short_pause(srv):
    with RawConn(srv.url) as c:
        c.send(get("/health"))
        assert c.read_response()[0] == 200
        time.sleep(1.2)
        c.send(get("/health"))
        assert c.read_response()[0] == 200


# ---------------------------------------------------------------------------------------
# Body limits

def test_big_content_length_gets_413_without_the_body(srv):
    with RawConn(srv.url) as c:
        t0 = time.monotonic()
        c.send(req("POST", "/api/v1/runs", ("Content-Type: application/json",
                                             "Content-Length: 100000000")))
        status, headers, body = c.read_response(timeout=3)
        assert time.monotonic() - t0 < 1.0  # did not wait for 100 MB that never comes
        assert status == 413
        assert headers.get("connection") == "close"
        assert "too large" in detail(body)
        assert c.closed_by_peer()


def test_413_readable_while_client_keeps_sending_body(srv):
    size = 4_000_000  # 4x the default --max-body
    with RawConn(srv.url) as c:
        c.send(req("POST", "/api/v1/runs", ("Content-Type: application/json",
                                             f"Content-Length: {size}")))

        def blast():
            try:
                c.sock.sendall(b"x" * size)
            except OSError:
                pass  # the server may close once it has answered: fine

        sender = threading.Thread(target=blast, daemon=True)
        sender.start()
        status, headers, body = c.read_response(timeout=5)
        assert status == 413
        assert "too large" in detail(body)
        sender.join(10)


def test_413_with_expect_continue_sends_no_100(srv):
    with RawConn(srv.url) as c:
        c.send(req("POST", "/api/v1/runs", ("Content-Type: application/json",
                                             "Expect: 100-continue",
                                             "Content-Length: 50000000")))
        status, _, _ = c.read_response(timeout=3)
        assert status == 413  # not 100 first


def test_chunked_body_over_limit_gets_413(srv):
    with RawConn(srv.url) as c:
        c.send(req("POST", "/api/v1/runs", ("Content-Type: application/json",
                                             "Transfer-Encoding: chunked")))
        chunk = b"x" * 65536
        try:
            for _ in range(24):  # 1.5 MiB > 1 MiB
                c.send(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
        except OSError:
            pass
        status, _, body = c.read_response()
        assert status == 413, body


# ---------------------------------------------------------------------------------------
# Framing: pipelining, HTTP/1.0, Connection: close, chunked, 100-continue

def test_pipelined_requests_answered_in_order(srv):
    with srv.client() as client:
        ids = [submit(client, f"pipe {i}")["job_id"] for i in range(2)]
    with RawConn(srv.url) as c:
        c.send(get(f"/api/v1/runs/{ids[0]}") + get("/no/such/path") +
               get(f"/api/v1/runs/{ids[1]}"))
        r1, r2, r3 = c.read_response(), c.read_response(), c.read_response()
    assert r1[0] == 200 and json.loads(r1[2])["job_id"] == ids[0]
    assert r2[0] == 404
    assert r3[0] == 200 and json.loads(r3[2])["job_id"] == ids[1]


def test_pipelined_post_and_gets(srv):
    body = json.dumps({"prompt": "pipelined"}).encode()
    with RawConn(srv.url) as c:
        c.send(post_json("/api/v1/runs", body) + get("/health") + get("/health"))
        s1, _, b1 = c.read_response()
        s2, _, _ = c.read_response()
        s3, _, _ = c.read_response()
    assert (s1, s2, s3) == (202, 200, 200), b1
    assert json.loads(b1)["job_id"].startswith("run_")


def test_http10_closes_after_answer(srv):
    with RawConn(srv.url) as c:
        c.send(b"GET /health HTTP/1.0\r\n\r\n")
        status, headers, body = c.read_response()
        assert status == 200 and body
        assert headers.get("connection", "").lower() != "keep-alive"
        assert c.closed_by_peer()


def test_http10_keepalive_stays_open(srv):
    with RawConn(srv.url) as c:
        c.send(b"GET /health HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        status, headers, _ = c.read_response()
        assert status == 200
        assert headers.get("connection", "").lower() == "keep-alive"
        assert not c.closed_by_peer(timeout=0.5)
        c.send(b"GET /health HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        assert c.read_response()[0] == 200


def test_connection_close_honoured(srv):
    with RawConn(srv.url) as c:
        c.send(get("/health", "Connection: close"))
        status, headers, _ = c.read_response()
        assert status == 200
        assert headers.get("connection", "").lower() == "close"
        assert c.closed_by_peer()


def test_connection_close_on_a_pipelined_request_ends_the_pipeline(srv):
    with RawConn(srv.url) as c:
        c.send(get("/health", "Connection: close") + get("/health"))
        assert c.read_response()[0] == 200
        assert c.closed_by_peer()  # the second request is not answered


def test_chunked_post_accepted(srv):
    body = json.dumps({"prompt": "chunked hello"}).encode()
    with RawConn(srv.url) as c:
        c.send(req("POST", "/api/v1/runs", ("Content-Type: application/json",
                                             "Transfer-Encoding: chunked")))
        half = len(body) // 2
        c.send(b"%x\r\n" % half + body[:half] + b"\r\n")
        time.sleep(0.05)
        rest = body[half:]
        c.send(b"%x\r\n" % len(rest) + rest + b"\r\n0\r\n\r\n")
        status, _, rbody = c.read_response()
        assert status == 202, rbody
        job_id = json.loads(rbody)["job_id"]
        # Keep-alive afterwards, and the prompt arrived whole.
        c.send(get(f"/api/v1/runs/{job_id}"))
        assert c.read_response()[0] == 200
    result = srv.wait_for_status(job_id)
    assert result["status"] == "succeeded"


def test_expect_100_continue(srv):
    body = json.dumps({"prompt": "after continue"}).encode()
    with RawConn(srv.url) as c:
        c.send(req("POST", "/api/v1/runs", ("Content-Type: application/json",
                                             "Expect: 100-continue",
                                             f"Content-Length: {len(body)}")))
        interim = c.read_until(b"\r\n\r\n", timeout=3)
        assert interim.startswith(b"HTTP/1.1 100 Continue\r\n"), interim
        c.send(body)
        status, _, rbody = c.read_response()
        assert status == 202, rbody


# ---------------------------------------------------------------------------------------
# Bad bytes in JSON, absurd query values

@pytest.mark.parametrize("body", [
    b'{"prompt": "bad \xff\xfe bytes"}',
    b'{"prompt": "overlong \xc0\xaf"}',
    b'{"prompt": "surrogate \xed\xa0\x80"}',
    b'{"prompt": "truncated \xe2\x82"}',
    b'{"prompt": "nul \\u0000 escaped"}',
    b'{"prompt": "raw nul \x00 byte"}',
    b'{"prompt": "ok", "metadata": {"k": "v\\u0000"}}',
    b'{"prompt": "ok", "metadata": {"\xff": "v"}}',
], ids=["ff-fe", "overlong", "surrogate", "truncated", "escaped-nul", "raw-nul",
        "metadata-nul", "metadata-key-bad-utf8"])
def test_bad_bytes_in_json_strings_get_422(srv, body):
    status, headers, rbody = raw_http(srv.url, post_json("/api/v1/runs", body))
    assert status == 422, rbody
    assert headers.get("content-type") == "application/json"
    assert "detail" in json.loads(rbody)


@pytest.mark.parametrize("query", [
    "page=99999999999999999999", "page=-1", "page=0", "page=1.5", "page=",
    "page_size=1e3", "page_size=99999999999999999999", "page_size=-5", "page_size=abc",
])
def test_absurd_list_query_values_get_422(srv, query):
    status, _, body = raw_http(srv.url, get(f"/api/v1/runs?{query}"))
    assert status == 422, (query, body)
    assert "detail" in json.loads(body)


@pytest.mark.parametrize("wait", ["abc", "-1", "99999999999999999999", "1e3"])
@pytest.mark.parametrize("endpoint", ["", "/result"])
def test_absurd_wait_values_get_422(srv, endpoint, wait):
    with srv.client() as client:
        job_id = submit(client, "wait check")["job_id"]
    status, _, body = raw_http(srv.url, get(f"/api/v1/runs/{job_id}{endpoint}?wait={wait}"))
    assert status == 422, (endpoint, wait, body)


# ---------------------------------------------------------------------------------------
# --max-connections

def test_max_connections_refuses_with_quick_503(make_server):
    s = make_server("--max-connections", "5")
    idle = [RawConn(s.url) for _ in range(5)]
    try:
        # Make sure all five are accepted and registered: one request on each.
        for c in idle:
            c.send(get("/health"))
            assert c.read_response()[0] == 200
        for _ in range(3):  # refusals do not use up room either
            with RawConn(s.url) as extra:
                t0 = time.monotonic()
                status, headers, body = extra.read_response(timeout=2)  # sent nothing
                took = time.monotonic() - t0
                assert status == 503, body
                assert took < 1.0, took
                assert headers.get("retry-after") == "1"
                assert headers.get("connection") == "close"
                assert headers.get("content-type") == "application/json"
                assert json.loads(body) == {"detail": "Too many connections"}
                assert extra.closed_by_peer(timeout=1.0)
        # A client that sends its request first also reads the 503.
        status, _, _ = raw_http(s.url, get("/health"), timeout=2)
        assert status == 503
        # The five open connections are still served.
        idle[0].send(get("/health"))
        assert idle[0].read_response()[0] == 200
        # Close two: new connections get served again (the server notices the close
        # asynchronously, so allow a moment).
        for c in idle[:2]:
            c.close()
        kept = []
        deadline = time.monotonic() + 3
        while len(kept) < 2 and time.monotonic() < deadline:
            c = RawConn(s.url)
            c.send(get("/health"))
            if c.read_response(timeout=2)[0] == 200:
                kept.append(c)
            else:
                c.close()
                time.sleep(0.05)
        assert len(kept) == 2, "freed connection slots were not reused"
        idle.extend(kept)
        # Full again: 5 open (3 old + 2 new).
        status, _, _ = raw_http(s.url, get("/health"), timeout=2)
        assert status == 503
    finally:
        for c in idle:
            c.close()
    server_alive_eventually(s)


def server_alive_eventually(s, timeout=3.0):
    deadline = time.monotonic() + timeout
    while True:
        status, _, _ = raw_http(s.url, get("/health", "Connection: close"))
        if status == 200:
            return
        assert time.monotonic() < deadline, f"/health still answers {status}"
        time.sleep(0.05)


def test_max_connections_counts_silent_connections(make_server):
    s = make_server("--max-connections", "5", "--header-timeout", "30")
    idle = [RawConn(s.url) for _ in range(5)]  # connect, send nothing
    try:
        with RawConn(s.url) as extra:
            t0 = time.monotonic()
            status, _, _ = extra.read_response(timeout=2)
            assert status == 503
            assert time.monotonic() - t0 < 1.0
    finally:
        for c in idle:
            c.close()
    server_alive_eventually(s)


# ---------------------------------------------------------------------------------------
# Garbage, and clients that vanish

@pytest.mark.parametrize("garbage", [
    b"\x00\x01\x02\x03\xff\xfe garbage\r\n\r\n",
    b"THIS IS NOT HTTP\r\n\r\n",
    b"GET /health HTTP/9.9\r\n\r\n",
    b"GET /health\r\n\r\n",
    b"GET  /health  HTTP/1.1\r\nHost: localhost\r\n\r\n",
    b"G\x00T /health HTTP/1.1\r\nHost: localhost\r\n\r\n",
    b"GET /health HTTP/1.1\r\nBad Header Name: x\r\n\r\n",
    b"GET /health HTTP/1.1\r\nX-Ctl: a\x01b\r\n\r\n",
    b"POST /api/v1/runs HTTP/1.1\r\nHost: localhost\r\nContent-Length: abc\r\n\r\n",
    b"POST /api/v1/runs HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
    b"POST /api/v1/runs HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
], ids=["binary", "not-http", "bad-version", "http09", "double-spaces", "nul-in-method",
        "space-in-header-name", "control-char-in-value", "bad-content-length",
        "duplicate-content-length", "bad-chunk-size"])
def test_garbage_gets_400_and_server_keeps_serving(srv, garbage):
    with RawConn(srv.url) as c:
        c.send(garbage)
        status, headers, body = c.read_response()
        assert status == 400, body
        assert headers.get("connection") == "close"
        assert c.closed_by_peer()
    with srv.client() as client:
        assert client.get("/health").status_code == 200


def test_clients_vanishing_mid_request_do_not_hurt_the_server(make_server):
    s = make_server()
    host, port = urlsplit(s.url).hostname, urlsplit(s.url).port
    partials = [
        b"GET /health HTTP/1.1\r\nHost: localhost\r\n",                             # mid-headers
        b"GET /hea",                                                         # mid-line
        b"POST /api/v1/runs HTTP/1.1\r\nHost: localhost\r\nContent-Length: 500\r\n\r\n{\"pro",
        b"POST /api/v1/runs HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab",
        b"POST /api/v1/runs HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
        b"Content-Length: 17\r\n\r\n{\"prompt\": \"bye\"}",                  # whole, unread
        b"GET /api/v1/runs HTTP/1.1\r\nHost: localhost\r\n\r\n",                     # whole, unread
        b"",                                                                 # nothing
    ]
    errors = []

    def worker(i):
        try:
            for _ in range(5):
                sock = socket.create_connection((host, port), timeout=5)
                data = partials[i % len(partials)]
                if data:
                    sock.sendall(data)
                if i % 2:
                    # Reset instead of a clean close.
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                    struct.pack("ii", 1, 0))
                sock.close()
        except OSError as e:
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors, errors[:3]
    time.sleep(0.3)
    server_alive(s)
    with s.client() as client:
        job = submit(client, "still fine")
    assert s.wait_for_status(job["job_id"])["status"] == "succeeded"
