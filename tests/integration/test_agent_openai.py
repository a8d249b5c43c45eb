"""`--agent openai` against a fake OpenAI-compatible server (fake_openai.py) on loopback:
results and errors, streamed `output` events, retries with backoff, cancel, timeout, TLS."""
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid

import httpx
import pytest

from conftest import collect_stream, submit, wait_status, wait_until

HERE = os.path.dirname(os.path.abspath(__file__))
FAKE = os.path.join(HERE, "fake_openai.py")
API_KEY = "sk-test-123"


class FakeOpenAI:
    """One fake_openai.py process."""

    def __init__(self, *args):
        self.proc = subprocess.Popen([sys.executable, FAKE, *args], stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True)
        line = self.proc.stdout.readline()
        if not line.startswith("PORT "):
            self.proc.kill()
            raise RuntimeError("fake_openai.py did not start: %r" % line)
        self.port = int(line.split()[1])
        self.scheme = "https" if "--tls-cert" in args else "http"
        self.url = "%s://127.0.0.1:%d" % (self.scheme, self.port)
        self.control = "http://127.0.0.1:%d" % self.port

    def requests(self, prompt=None, verify=None):
        r = httpx.get(self.url + "/_requests", verify=verify or False, timeout=10)
        r.raise_for_status()
        reqs = r.json()
        return [q for q in reqs if prompt is None or q["prompt"] == prompt]

    def stop(self):
        self.proc.kill()
        self.proc.wait(10)


@pytest.fixture(scope="module")
def fake():
    f = FakeOpenAI()
    yield f
    f.stop()


def openai_args(fake, *extra):
    return ("--agent", "openai", "--openai-base-url", fake.url + "/v1",
            "--model", "fake-model", *extra)


@pytest.fixture
def oai(make_server, fake):
    """runq with the openai agent pointed at the fake server, with an API key."""
    return make_server(*openai_args(fake), env={"OPENAI_API_KEY": API_KEY})


@pytest.fixture
def oai_client(oai):
    with oai.client() as c:
        yield c


def unique(text):
    """A prompt no other test uses (the fake's counters are per prompt)."""
    return "%s id%s" % (text, uuid.uuid4().hex[:8])


def expected_reply(prompt):
    return "You said: " + prompt


def gaps(reqs):
    return [b["t"] - a["t"] for a, b in zip(reqs, reqs[1:])]


# ---- results --------------------------------------------------------------------------

def test_result_usage_and_the_request_sent(oai_client, fake):
    prompt = unique("hello world")
    job = submit(oai_client, prompt)
    status = wait_status(oai_client, job["job_id"])
    assert status["status"] == "succeeded", status
    assert status["agent_id"] == "openai:fake-model"
    assert status["run_id"].startswith("chatcmpl-fake")

    r = oai_client.get(f"/api/v1/runs/{job['job_id']}/result")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["result"] == expected_reply(prompt)
    n_words = len(expected_reply(prompt).split(" "))
    assert body["metrics"]["usage"] == {
        "prompt_tokens": len(prompt.split()), "completion_tokens": n_words,
        "total_tokens": len(prompt.split()) + n_words}
    assert body["metrics"]["model"] == "fake-model"

    [req] = fake.requests(prompt)
    assert req["path"] == "/v1/chat/completions"
    assert req["headers"]["authorization"] == "Bearer " + API_KEY
    assert req["headers"]["content-type"] == "application/json"
    assert req["headers"]["user-agent"] == "runq/0.1"
    sent = req["body"]
    assert sent["model"] == "fake-model"
    assert sent["messages"] == [{"role": "user", "content": prompt}]
    assert sent["stream"] is True
    assert sent["stream_options"] == {"include_usage": True}
    assert "temperature" not in sent and "max_tokens" not in sent


def test_streamed_output_arrives_as_output_events_in_order(oai_client, fake):
    prompt = unique("SLOW:150 one two three four five")
    job = submit(oai_client, prompt)
    _, events = collect_stream(oai_client, job["job_id"], timeout=30)
    names = [e.event for e in events]
    assert names[-1] == "result", names
    outputs = [e for e in events if e.event == "output"]
    pieces = [w + " " for w in expected_reply(prompt).split(" ")]
    pieces[-1] = pieces[-1][:-1]
    # One event per streamed piece, in the order the model sent them.
    assert [e.data["delta"] for e in outputs] == pieces
    assert "".join(e.data["delta"] for e in outputs) == events[-1].data["result"]
    ids = [e.id_int for e in events if e.id is not None]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    # All output events come before the result, and they came live, not at the end.
    assert max(i for i, n in enumerate(names) if n == "output") < names.index("result")
    assert events[-1].t - outputs[0].t > 0.5
    steps = [e.data.get("step") for e in events if e.event == "progress"]
    assert "Waiting for model" in steps and "Receiving" in steps


def test_per_job_config_overrides_reach_the_model_server(oai_client, fake):
    prompt = unique("configured")
    config = {"model": "other-model", "system": "Be brief.", "temperature": 0.25,
              "max_tokens": 42}
    job = submit(oai_client, prompt, config=config)
    status = wait_status(oai_client, job["job_id"])
    assert status["status"] == "succeeded", status
    [req] = fake.requests(prompt)
    sent = req["body"]
    assert sent["model"] == "other-model"
    assert sent["messages"] == [{"role": "system", "content": "Be brief."},
                                {"role": "user", "content": prompt}]
    assert sent["temperature"] == 0.25
    assert sent["max_tokens"] == 42
    result = oai_client.get(f"/api/v1/runs/{job['job_id']}/result").json()
    assert result["metrics"]["model"] == "other-model"


def test_a_bad_config_value_fails_without_a_call(oai_client, fake):
    prompt = unique("bad config")
    job = submit(oai_client, prompt, config={"temperature": "hot"})
    status = wait_status(oai_client, job["job_id"])
    assert status["status"] == "failed"
    assert status["error"] == "config.temperature must be a number"
    assert fake.requests(prompt) == []


def test_a_non_streamed_answer_is_accepted(oai_client, fake):
    prompt = unique("NOSTREAM please")
    job = submit(oai_client, prompt)
    _, events = collect_stream(oai_client, job["job_id"])
    assert events[-1].event == "result"
    assert events[-1].data["result"] == expected_reply(prompt)
    assert [e.data["delta"] for e in events if e.event == "output"] == [expected_reply(prompt)]
    result = oai_client.get(f"/api/v1/runs/{job['job_id']}/result").json()
    assert result["metrics"]["usage"]["total_tokens"] > 0


def test_a_close_delimited_stream_without_usage(oai_client, fake):
    prompt = unique("CLOSE_DELIMITED NOUSAGE words here")
    job = submit(oai_client, prompt)
    status = wait_status(oai_client, job["job_id"])
    assert status["status"] == "succeeded", status
    result = oai_client.get(f"/api/v1/runs/{job['job_id']}/result").json()
    assert result["result"] == expected_reply(prompt)
    assert "usage" not in result["metrics"]


def test_no_api_key_sends_no_authorization(make_server, fake):
    server = make_server(*openai_args(fake), env={"OPENAI_API_KEY": ""})
    with server.client() as c:
        prompt = unique("anonymous")
        job = submit(c, prompt)
        assert wait_status(c, job["job_id"])["status"] == "succeeded"
    [req] = fake.requests(prompt)
    assert "authorization" not in req["headers"]


# ---- errors and retries ---------------------------------------------------------------

def test_429_is_retried_honouring_retry_after(oai_client, fake):
    prompt = unique("RATE_LIMIT:2 busy")
    job = submit(oai_client, prompt)
    status = wait_status(oai_client, job["job_id"], timeout=30)
    assert status["status"] == "succeeded", status
    reqs = fake.requests(prompt)
    assert [q["status"] for q in reqs] == [429, 429, 200]
    # Retry-After: 1 wins over the first backoffs (0.25-0.5 s, 0.5-1 s).
    assert all(g >= 0.95 for g in gaps(reqs)), gaps(reqs)
    result = oai_client.get(f"/api/v1/runs/{job['job_id']}/result").json()
    assert result["result"] == expected_reply(prompt)
    assert result["metrics"]["attempts"] == 3


def test_500_is_retried_with_backoff(oai_client, fake):
    prompt = unique("FAIL500:1 flaky")
    job = submit(oai_client, prompt)
    status = wait_status(oai_client, job["job_id"], timeout=30)
    assert status["status"] == "succeeded", status
    reqs = fake.requests(prompt)
    assert [q["status"] for q in reqs] == [500, 200]
    assert gaps(reqs)[0] >= 0.2  # base 0.5 s with jitter in [0.5, 1]


def test_persistent_500_gives_up_after_max_attempts_with_growing_backoff(oai_client, fake):
    prompt = unique("FAIL500:99 down")
    job = submit(oai_client, prompt)
    status = wait_status(oai_client, job["job_id"], timeout=40)
    assert status["status"] == "failed", status
    assert "HTTP 500" in status["error"] and "Internal boom" in status["error"]
    assert "gave up after 5 attempts" in status["error"]
    reqs = fake.requests(prompt)
    assert len(reqs) == 5
    g = gaps(reqs)
    # Exponential: each wait is in [0.5, 1] x 0.5 s x 2^(n-1).
    assert g[0] >= 0.2 and g[3] >= 1.8, g
    assert g[3] > g[0], g
    r = oai_client.get(f"/api/v1/runs/{job['job_id']}/result")
    assert r.status_code == 400
    assert r.json()["error"] == status["error"]


def test_401_fails_at_once_with_the_servers_message(oai_client, fake):
    prompt = unique("BADKEY")
    job = submit(oai_client, prompt)
    status = wait_status(oai_client, job["job_id"])
    assert status["status"] == "failed"
    assert status["error"] == ("the model server answered HTTP 401: "
                               "Incorrect API key provided")
    time.sleep(0.8)  # a retry would have come by now
    assert len(fake.requests(prompt)) == 1


def test_connection_refused_is_retried_then_fails_clearly(make_server):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    server = make_server("--agent", "openai", "--openai-base-url",
                         f"http://127.0.0.1:{port}/v1", env={"OPENAI_API_KEY": API_KEY})
    with server.client() as c:
        job = submit(c, "anyone there?")
        t0 = time.monotonic()
        status = wait_status(c, job["job_id"], timeout=40)
        elapsed = time.monotonic() - t0
    assert status["status"] == "failed"
    assert f"connect to 127.0.0.1:{port}" in status["error"]
    assert "refused" in status["error"].lower()
    assert "gave up after 5 attempts" in status["error"]
    assert elapsed >= 3.0  # four backoffs: at least 0.25 + 0.5 + 1 + 2 s


def test_a_stream_cut_after_partial_output_fails_without_retry(oai_client, fake):
    prompt = unique("CUTOFF midway")
    job = submit(oai_client, prompt)
    _, events = collect_stream(oai_client, job["job_id"])
    assert events[-1].event == "error"
    assert "after partial output" in events[-1].data["error"]
    assert [e.data["delta"] for e in events if e.event == "output"] == ["You ", "said: "]
    time.sleep(0.8)
    assert len(fake.requests(prompt)) == 1


# ---- cancel and timeout ---------------------------------------------------------------

def test_cancel_during_a_slow_stream_aborts_the_call(oai_client, fake):
    prompt = unique("SLOW:300 " + " ".join("w%d" % i for i in range(40)))
    job = submit(oai_client, prompt)
    job_id = job["job_id"]
    # Wait until output is flowing.
    wait_until(lambda: oai_client.get(f"/api/v1/runs/{job_id}").json()["progress"]
               ["current_step"] == "Receiving", timeout=15, what="output")
    t0 = time.monotonic()
    r = oai_client.post(f"/api/v1/runs/{job_id}/cancel")
    assert r.status_code == 200, r.text
    status = wait_status(oai_client, job_id)
    assert status["status"] == "cancelled"
    # The worker slot is free again quickly: the health view no longer counts it.
    wait_until(lambda: oai_client.get("/health").json()["executor_stats"]["running_jobs"] == 0,
               timeout=2, what="the worker to stop")
    assert time.monotonic() - t0 < 1.5
    # The fake server sees the connection go away (its next write fails).
    [req] = wait_until(lambda: [q for q in fake.requests(prompt) if q["disconnected"]],
                       timeout=5, what="the fake server to see the close")
    assert not req["finished"]
    time.sleep(0.5)
    assert len(fake.requests(prompt)) == 1  # no retry after a cancel


def test_timeout_stops_a_slow_stream(oai_client, fake):
    prompt = unique("SLOW:400 " + " ".join("t%d" % i for i in range(40)))
    job = submit(oai_client, prompt, timeout=1)
    t0 = time.monotonic()
    status = wait_status(oai_client, job["job_id"], timeout=10)
    assert status["status"] == "failed"
    assert status["error"] == "Job timed out after 1s"
    assert time.monotonic() - t0 < 3.0
    wait_until(lambda: [q for q in fake.requests(prompt) if q["disconnected"]], timeout=5,
               what="the fake server to see the close")


# ---- TLS ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tls_fake(tmp_path_factory):
    assert shutil.which("openssl"), "the openssl tool is needed (scripts/install-deps.sh)"
    d = tmp_path_factory.mktemp("tls")
    cert, key = str(d / "cert.pem"), str(d / "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", cert,
                    "-days", "2", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
                   check=True, capture_output=True)
    f = FakeOpenAI("--tls-cert", cert, "--tls-key", key, "--api-key", API_KEY)
    f.cert = cert
    yield f
    f.stop()


def test_https_with_ca_file_works(make_server, tls_fake):
    server = make_server(*openai_args(tls_fake, "--ca-file", tls_fake.cert),
                         env={"OPENAI_API_KEY": API_KEY})
    with server.client() as c:
        prompt = unique("over TLS")
        job = submit(c, prompt)
        status = wait_status(c, job["job_id"])
        assert status["status"] == "succeeded", status
        result = c.get(f"/api/v1/runs/{job['job_id']}/result").json()
        assert result["result"] == expected_reply(prompt)
    [req] = tls_fake.requests(prompt, verify=tls_fake.cert)
    assert req["headers"]["authorization"] == "Bearer " + API_KEY


def test_https_without_the_ca_fails_certificate_verification(make_server, tls_fake):
    server = make_server(*openai_args(tls_fake), env={"OPENAI_API_KEY": API_KEY})
    with server.client() as c:
        prompt = unique("untrusted")
        job = submit(c, prompt)
        status = wait_status(c, job["job_id"])
    assert status["status"] == "failed"
    assert "TLS handshake with 127.0.0.1:%d" % tls_fake.port in status["error"]
    assert "certificate verify failed" in status["error"]
    assert tls_fake.requests(prompt, verify=tls_fake.cert) == []
