"""Webhooks (API.md "Webhooks"): one signed POST per terminal state, retried with backoff
after a failing receiver, delivered after a kill -9 and restart, private targets refused
unless allowed, and never holding a job worker. The receivers are HTTP servers on
loopback inside the test, so the server runs with --allow-private-webhooks."""
import base64
import hashlib
import hmac
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from conftest import (get_status, is_float_token, json_number_token, submit, ts_seconds,
                      wait_status, wait_until)

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
KEY = base64.b64decode(SECRET[len("whsec_"):])
BODY_FIELDS = ["job_id", "status", "result", "error", "completed_at", "duration_seconds"]


class Delivery:
    def __init__(self, path, headers, body):
        self.t = time.monotonic()
        self.path = path
        self.headers = {k.lower(): v for k, v in headers.items()}
        self.raw = body
        self.body = json.loads(body)

    @property
    def id(self):
        return self.headers.get("webhook-id")


class Receiver:
    """A webhook receiver on 127.0.0.1. `answers`: status codes for the first requests
    (then 200); `hang`: how many of the first requests are held until release()
    lets them go (release(n): n of them)."""

    def __init__(self, port=0, answers=(), hang=0):
        self.deliveries = []
        self.answers = list(answers)
        self.hang = hang
        self.released = threading.Semaphore(0)
        self.cond = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(n)
                with receiver.cond:
                    receiver.deliveries.append(Delivery(self.path, self.headers, body))
                    index = len(receiver.deliveries) - 1
                    receiver.cond.notify_all()
                if index < receiver.hang:
                    receiver.released.acquire(timeout=30)
                code = receiver.answers[index] if index < len(receiver.answers) else 200
                self.send_response(code)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path="/hook"):
        return f"http://127.0.0.1:{self.port}{path}"

    def wait_for(self, n, timeout=15):
        """Waits until at least n deliveries arrived; returns a copy of the list."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while len(self.deliveries) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"expected {n} deliveries, got {len(self.deliveries)}: "
                        f"{[d.body for d in self.deliveries]}")
                self.cond.wait(left)
            return list(self.deliveries)

    def count(self):
        with self.cond:
            return len(self.deliveries)

    def release(self, n=1000):
        self.released.release(n)

    def close(self):
        self.released.release(1000)
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def make_receiver():
    """Factory: make_receiver(port=0, answers=(), hang=0) -> a started Receiver."""
    receivers = []

    def make(**kw):
        r = Receiver(**kw)
        receivers.append(r)
        return r

    yield make
    for r in receivers:
        r.close()


def expected_signature(delivery, key=KEY):
    signed = f"{delivery.headers['webhook-id']}.{delivery.headers['webhook-timestamp']}."
    mac = hmac.new(key, signed.encode() + delivery.raw, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def assert_signed(delivery, key=KEY):
    h = delivery.headers
    assert h["content-type"] == "application/json"
    assert h["user-agent"] == "runq-webhooks/0.1"
    ts = h["webhook-timestamp"]
    assert ts.isdigit() and abs(int(ts) - time.time()) < 30, ts
    # The header may carry several space-separated signatures; ours must be among them.
    assert expected_signature(delivery, key) in h["webhook-signature"].split(" ")
    # A tampered body or timestamp does not verify.
    tampered = Delivery(delivery.path, delivery.headers, delivery.raw.replace(b"}", b" }", 1))
    assert expected_signature(tampered, key) not in h["webhook-signature"].split(" ")


def assert_body_matches(delivery, status):
    """The delivery body against the job's status object."""
    body = delivery.body
    assert list(body) == BODY_FIELDS, body
    assert body["job_id"] == status["job_id"]
    assert body["status"] == status["status"]
    assert body["error"] == status["error"]
    assert body["completed_at"] == status["completed_at"]
    ts_seconds(body["completed_at"])
    if status["started_at"] is None:
        assert body["duration_seconds"] is None
    else:
        assert isinstance(body["duration_seconds"], float)
        assert is_float_token(json_number_token(delivery.raw.decode(), "duration_seconds"))
        want = ts_seconds(status["completed_at"]) - ts_seconds(status["started_at"])
        assert abs(body["duration_seconds"] - want) < 1e-3, (body, status)
    if status["status"] != "succeeded":
        assert body["result"] is None
    assert delivery.id == "msg_" + status["job_id"]


def wh_server(make_server, *args, **kw):
    return make_server("--allow-private-webhooks", "--webhook-secret", SECRET, *args, **kw)


def test_every_terminal_state_delivers_one_signed_post(make_server, make_receiver):
    rx = make_receiver()
    s = wh_server(make_server, "--max-concurrent", "1")
    with s.client() as c:
        # Cancelled while running, and cancelled while still queued behind it.
        running = submit(c, "long", config={"sleep_seconds": 30},
                         webhook_url=rx.url("/running"))["job_id"]
        wait_status(c, running, "running")
        queued = submit(c, "queued", webhook_url=rx.url("/queued"))["job_id"]
        assert get_status(c, queued)["status"] == "queued"
        assert c.post(f"/api/v1/runs/{queued}/cancel").status_code == 200
        assert c.post(f"/api/v1/runs/{running}/cancel").status_code == 200
        # Succeeded, failed, timed out.
        ok = submit(c, "hello webhook", webhook_url=rx.url("/ok"))["job_id"]
        failed = submit(c, "f", config={"fail_with": "boom"}, webhook_url=rx.url("/failed"))[
            "job_id"]
        timed_out = submit(c, "t", timeout=1, config={"sleep_seconds": 10},
                           webhook_url=rx.url("/timeout"))["job_id"]
        no_hook = submit(c, "no webhook")["job_id"]
        for j in (running, queued, ok, failed, timed_out, no_hook):
            wait_status(c, j, timeout=20)

        deliveries = rx.wait_for(5, timeout=15)
        time.sleep(1.5)  # nothing more arrives: one POST per job
        assert rx.count() == 5, [d.body for d in rx.deliveries]
        by_job = {d.body["job_id"]: d for d in deliveries}
        assert set(by_job) == {running, queued, ok, failed, timed_out}
        for j in by_job:
            assert_signed(by_job[j])
            assert_body_matches(by_job[j], get_status(c, j))
        # Each went to its own URL (path and query kept).
        assert by_job[ok].path == "/ok" and by_job[queued].path == "/queued"

        assert by_job[ok].body["status"] == "succeeded"
        assert by_job[ok].body["result"] == "hello webhook"
        assert by_job[ok].body["error"] is None
        assert by_job[failed].body["status"] == "failed"
        assert by_job[failed].body["error"] == "boom"
        assert by_job[timed_out].body["status"] == "failed"
        assert by_job[timed_out].body["error"] == "Job timed out after 1s"
        assert by_job[running].body["status"] == "cancelled"
        assert by_job[queued].body["status"] == "cancelled"
        assert by_job[queued].body["duration_seconds"] is None
        assert len({d.id for d in deliveries}) == 5  # webhook-id unique per delivery


def test_retried_with_growing_backoff_after_failing_receiver(make_server, make_receiver):
    rx = make_receiver(answers=[500, 503])
    s = wh_server(make_server)
    with s.client() as c:
        job = submit(c, "retry me", webhook_url=rx.url())["job_id"]
        st = wait_status(c, job)
        d = rx.wait_for(3, timeout=15)
        time.sleep(1.5)
        assert rx.count() == 3  # the 200 ended it
        # Same delivery each time: same id and body; each attempt signed afresh.
        assert {x.id for x in d} == {"msg_" + job}
        assert d[0].raw == d[1].raw == d[2].raw
        for x in d:
            assert_signed(x)
            assert_body_matches(x, st)
        gap1, gap2 = d[1].t - d[0].t, d[2].t - d[1].t
        # base 1 s, doubling, ±20% jitter
        assert 0.7 <= gap1 <= 3.0, gap1
        assert gap2 > gap1 and gap2 >= 1.4, (gap1, gap2)


def test_one_free_worker_delivers_every_due_webhook_in_turn(make_server, make_receiver):
    """Both delivery workers are held by a slow receiver while four more webhooks fall
    due; one worker is let go: it delivers all four in turn, none left waiting (e.g. on
    a claim that a store shared by several nodes keeps on what it handed out)."""
    rx = make_receiver(hang=2)
    s = wh_server(make_server)
    with s.client() as c:
        for name in ("held 1", "held 2"):
            submit(c, name, webhook_url=rx.url())
        rx.wait_for(2)  # both workers are busy
        ids = [submit(c, f"next {i}", webhook_url=rx.url())["job_id"] for i in range(4)]
        for job_id in ids:
            wait_status(c, job_id)  # its webhook is due
        rx.release(1)
        got = rx.wait_for(6, timeout=30)
        assert {d.id for d in got[2:]} == {"msg_" + j for j in ids}
        rx.release()


def test_given_up_after_max_attempts(make_server, make_receiver):
    rx = make_receiver(answers=[500] * 10)
    s = wh_server(make_server, "--webhook-max-attempts", "2")
    with s.client() as c:
        job = submit(c, "x", webhook_url=rx.url())["job_id"]
        wait_status(c, job)
        d = rx.wait_for(2, timeout=10)
        time.sleep(3.5)  # a third try would have come after ~2 s
        assert rx.count() == 2
        assert d[0].id == d[1].id == "msg_" + job
    wait_until(lambda: any("giving up" in line and job in line for line in s.log),
               what="the give-up warning")


def free_port():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


def test_pending_webhook_delivered_after_kill_9_and_restart(make_server, make_receiver,
                                                             tmp_path):
    db = str(tmp_path / "wh.db")
    port = free_port()  # nothing listens there yet: the receiver is down
    url = f"http://127.0.0.1:{port}/late"
    s = wh_server(make_server, db=db)
    with s.client() as c:
        job = submit(c, "deliver me later", webhook_url=url)["job_id"]
        st = wait_status(c, job)
    wait_until(lambda: any("webhooks: delivery for job " + job in line and "failed" in line
                           for line in s.log), timeout=10, what="a failed first attempt")
    s.kill()  # kill -9 before any attempt succeeded

    rx = make_receiver(port=port)
    time.sleep(2.5)  # the retry would be due by now: nothing runs to send it
    assert rx.count() == 0
    s2 = wh_server(make_server, db=db)
    d = rx.wait_for(1, timeout=10)
    time.sleep(1.0)
    assert rx.count() == 1
    assert d[0].path == "/late"
    assert d[0].id == "msg_" + job
    assert_signed(d[0])
    assert_body_matches(d[0], st)
    assert d[0].body["result"] == "deliver me later"
    # Delivered: a further restart sends nothing again.
    s2.terminate(10)
    s3 = wh_server(make_server, db=db)
    time.sleep(1.5)
    assert rx.count() == 1
    with s3.client() as c:
        assert get_status(c, job)["status"] == "succeeded"


def test_slow_receiver_does_not_hold_a_worker(make_server, make_receiver):
    rx = make_receiver(hang=1)
    s = wh_server(make_server, "--max-concurrent", "1")
    try:
        with s.client() as c:
            first = submit(c, "first", webhook_url=rx.url())["job_id"]
            wait_status(c, first)
            rx.wait_for(1, timeout=10)  # its webhook is now hanging in the receiver
            t0 = time.monotonic()
            second = submit(c, "second")["job_id"]
            assert wait_status(c, second, timeout=5)["status"] == "succeeded"
            assert time.monotonic() - t0 < 3
    finally:
        rx.release()
    assert rx.count() == 1


def test_unsigned_without_secret(make_server, make_receiver):
    rx = make_receiver()
    s = make_server("--allow-private-webhooks")
    with s.client() as c:
        job = submit(c, "plain", webhook_url=rx.url())["job_id"]
        st = wait_status(c, job)
        d = rx.wait_for(1)
    assert "webhook-signature" not in d[0].headers
    assert d[0].headers["webhook-id"] == "msg_" + job
    assert d[0].headers["webhook-timestamp"].isdigit()
    assert_body_matches(d[0], st)


def test_raw_secret_signs_with_its_own_bytes(make_server, make_receiver):
    rx = make_receiver()
    s = make_server("--allow-private-webhooks", "--webhook-secret", "plain-text-secret")
    with s.client() as c:
        submit(c, "raw", webhook_url=rx.url())
        d = rx.wait_for(1)
    assert_signed(d[0], key=b"plain-text-secret")


@pytest.mark.parametrize("url, msg", [
    ("http://127.0.0.1:9/hook", "Value error, Webhook URL cannot be a localhost address"),
    ("http://localhost:8080/hook", "Value error, Webhook URL cannot be a localhost address"),
    ("http://[::1]/hook", "Value error, Webhook URL cannot be a localhost address"),
    ("http://10.0.0.5/hook",
     "Value error, Webhook URL resolves to a private or restricted network address"),
    ("http://192.168.1.1/hook",
     "Value error, Webhook URL resolves to a private or restricted network address"),
    ("http://169.254.169.254/latest/meta-data",
     "Value error, Webhook URL resolves to a private or restricted network address"),
    ("http://[::ffff:10.1.2.3]/hook",
     "Value error, Webhook URL resolves to a private or restricted network address"),
])
def test_private_targets_refused_without_the_flag(shared_client, url, msg):
    r = shared_client.post("/api/v1/runs", json={"prompt": "x", "webhook_url": url})
    assert r.status_code == 422, r.text
    assert r.json() == {"detail": [{"type": "value_error", "loc": ["body", "webhook_url"],
                                    "msg": msg, "input": url}]}


def test_private_targets_accepted_with_the_flag(make_server):
    s = make_server("--allow-private-webhooks")
    with s.client() as c:
        for url in ("http://127.0.0.1:9/hook", "http://localhost:9/hook", "http://[::1]:9/"):
            submit(c, "x", webhook_url=url)
        # (Still running at teardown, so no delivery to that address is attempted.)
        submit(c, "x", webhook_url="http://10.0.0.5/hook", config={"sleep_seconds": 60})
