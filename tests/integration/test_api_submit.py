"""POST /api/v1/runs: the 202 reply, 422 validation, 413 and 415 (API.md "submit")."""
import json
import threading
import time
from datetime import datetime, timezone

import pytest

from conftest import (JOB_ID_RE, TS_RE, get_status, parse_ts, raw_http, submit,
                      wait_status)

RUNS = "/api/v1/runs"


def post_raw(client, content, content_type="application/json", headers=None):
    h = dict(headers or {})
    if content_type is not None:
        h["Content-Type"] = content_type
    if isinstance(content, str):
        content = content.encode()
    return client.post(RUNS, content=content, headers=h)


def validation_errors(r):
    """Asserts a FastAPI-shaped 422 and returns its list of entries."""
    assert r.status_code == 422, (r.status_code, r.text)
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert set(body) == {"detail"}, body
    assert isinstance(body["detail"], list) and body["detail"], body
    for e in body["detail"]:
        assert {"type", "loc", "msg"} <= set(e), e
        assert isinstance(e["msg"], str) and e["msg"], e
        assert isinstance(e["loc"], list) and e["loc"][0] == "body", e
    return body["detail"]


def one_error(r):
    errors = validation_errors(r)
    assert len(errors) == 1, errors
    return errors[0]


# --------------------------------------------------------------------------- 202


def test_submit_202_reply_exact(server, client):
    before = datetime.now(timezone.utc)
    r = client.post(RUNS, json={"prompt": "What is 2+2?"})
    after = datetime.now(timezone.utc)
    assert r.status_code == 202, r.text
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert set(body) == {"job_id", "status", "created_at", "poll_url", "stream_url"}
    job_id = body["job_id"]
    assert JOB_ID_RE.match(job_id), job_id
    assert body["status"] == "queued"
    assert TS_RE.match(body["created_at"]), body["created_at"]
    created = parse_ts(body["created_at"])
    assert before.timestamp() - 1 <= created.timestamp() <= after.timestamp() + 1
    assert body["poll_url"] == f"{server.url}/api/v1/runs/{job_id}"
    assert body["stream_url"] == f"{server.url}/api/v1/runs/{job_id}/stream"
    assert r.headers["location"] == body["poll_url"]
    assert r.headers["retry-after"] == "2"
    # the job is really there, with the same creation time
    status = get_status(client, job_id)
    assert status["job_id"] == job_id
    assert status["created_at"] == body["created_at"]


def test_submit_urls_built_from_host_header(make_server):
    # Names other than loopback ones must be allowed (the Host check, docs/security.md).
    s = make_server("--allowed-host", "jobs.example.test,example.org")
    with s.client() as client:
        r = client.post(RUNS, json={"prompt": "x"}, headers={"Host": "jobs.example.test:9999"})
        assert r.status_code == 202, r.text
        body = r.json()
        job_id = body["job_id"]
        assert body["poll_url"] == f"http://jobs.example.test:9999/api/v1/runs/{job_id}"
        assert body["stream_url"] == f"http://jobs.example.test:9999/api/v1/runs/{job_id}/stream"
        assert r.headers["location"] == body["poll_url"]

        r = client.post(RUNS, json={"prompt": "x"}, headers={"Host": "example.org"})
        assert r.status_code == 202, r.text
        body = r.json()
        assert body["poll_url"] == f"http://example.org/api/v1/runs/{body['job_id']}"
        assert r.headers["location"] == body["poll_url"]


def test_submit_urls_from_public_url(make_server):
    s = make_server("--public-url", "https://jobs.example.com")
    with s.client() as c:
        r = c.post(RUNS, json={"prompt": "x"}, headers={"Host": "localhost:1"})
        assert r.status_code == 202, r.text
        body = r.json()
        assert body["poll_url"] == f"https://jobs.example.com/api/v1/runs/{body['job_id']}"
        assert body["stream_url"] == body["poll_url"] + "/stream"
        assert r.headers["location"] == body["poll_url"]


def test_submit_reply_status_is_always_queued(client):
    # the echo agent finishes at once, so workers often pick the job up before the
    # reply is written: the reply still says "queued"
    for i in range(20):
        body = submit(client, f"p{i}")
        assert body["status"] == "queued"


def test_job_ids_are_unique_and_well_formed(client):
    ids = [submit(client, "x")["job_id"] for _ in range(30)]
    assert len(set(ids)) == 30
    for job_id in ids:
        assert JOB_ID_RE.match(job_id), job_id


def test_submit_stores_every_field(client):
    body = submit(client, "all fields", agent_file="agents.yaml", agent_yaml="a: b",
                  recipe_name="r", recipe_config={"x": [1, 2]}, config={"k": "v"},
                  framework="crewai", timeout=77, session_id="sess-1",
                  priority=-3, metadata={"team": "a", "ticket": "42"}, max_retries=2)
    st = wait_status(client, body["job_id"])
    assert st["status"] == "succeeded"
    assert st["session_id"] == "sess-1"
    assert st["priority"] == -3
    assert st["metadata"] == {"team": "a", "ticket": "42"}
    assert st["timeout"] == 77
    assert st["agent_id"] == "echo"


def test_submit_nulls_accepted_for_nullable_fields(client):
    body = submit(client, "nulls", agent_file=None, agent_yaml=None, recipe_name=None,
                  recipe_config=None, config=None, framework=None, webhook_url=None,
                  timeout=None, session_id=None, idempotency_key=None)
    st = wait_status(client, body["job_id"])
    assert st["status"] == "succeeded"
    assert st["timeout"] == 3600
    assert st["session_id"] is None
    assert client.get(f"{RUNS}/{body['job_id']}/result").json()["result"] == "nulls"


def test_unknown_fields_are_ignored(client):
    r = client.post(RUNS, json={"prompt": "x", "bogus": 1, "nested": {"a": [1, {}]},
                                "status": "succeeded", "job_id": "run_000000000000"})
    assert r.status_code == 202, r.text
    body = r.json()
    assert body["status"] == "queued"
    assert body["job_id"] != "run_000000000000"
    assert wait_status(client, body["job_id"])["status"] == "succeeded"


def test_timeout_zero_and_null_mean_server_default(make_server):
    s = make_server("--default-timeout", "7")
    with s.client() as c:
        for t in (0, None):
            job = submit(c, "x", timeout=t)
            assert get_status(c, job["job_id"])["timeout"] == 7
        job = submit(c, "x")
        assert get_status(c, job["job_id"])["timeout"] == 7
        job = submit(c, "x", timeout=5)
        assert get_status(c, job["job_id"])["timeout"] == 5


def test_timeout_bounds_follow_max_timeout(make_server):
    s = make_server("--max-timeout", "10", "--default-timeout", "5")
    with s.client() as c:
        assert get_status(c, submit(c, "x", timeout=10)["job_id"])["timeout"] == 10
        assert get_status(c, submit(c, "x", timeout=1)["job_id"])["timeout"] == 1
        e = one_error(c.post(RUNS, json={"prompt": "x", "timeout": 11}))
        assert e["type"] == "value_error" and e["loc"] == ["body", "timeout"], e


def test_boundary_values_accepted(shared_client):
    for fields in ({"timeout": 86400}, {"timeout": 1}, {"priority": 100},
                   {"priority": -100}, {"max_retries": 0}, {"max_retries": 10},
                   {"metadata": {f"k{i}": "v" * 8 for i in range(16)}},
                   {"idempotency_scope": "none"}, {"idempotency_scope": "global"},
                   {"idempotency_scope": "session"}, {"prompt": ""}):
        body = {"prompt": "x"}
        body.update(fields)
        r = shared_client.post(RUNS, json=body)
        assert r.status_code == 202, (fields, r.text)


def test_content_types_accepted(shared_client):
    payload = json.dumps({"prompt": "ct"})
    for ct in (None, "application/json", "application/json; charset=utf-8",
               "application/merge-patch+json", "application/vnd.runq.job+json"):
        r = post_raw(shared_client, payload, content_type=ct)
        assert r.status_code == 202, (ct, r.status_code, r.text)


def test_no_content_type_header_at_all(shared_server):
    body = b'{"prompt":"raw"}'
    req = (b"POST /api/v1/runs HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
           b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
    status, headers, resp = raw_http(shared_server.url, req)
    assert status == 202, resp
    assert json.loads(resp)["status"] == "queued"


# --------------------------------------------------------------------------- 415


@pytest.mark.parametrize("ct", ["text/plain", "application/x-www-form-urlencoded",
                                "multipart/form-data; boundary=x", "application/xml",
                                "text/json"])
def test_415_for_non_json_content_type(shared_client, ct):
    r = post_raw(shared_client, json.dumps({"prompt": "x"}), content_type=ct)
    assert r.status_code == 415, (r.status_code, r.text)
    assert r.json() == {"detail": "Content-Type must be application/json"}


def test_415_creates_no_job(server, client):
    r = post_raw(client, json.dumps({"prompt": "x"}), content_type="text/plain")
    assert r.status_code == 415
    assert client.get(RUNS).json()["total"] == 0


# --------------------------------------------------------------------------- 422


def test_422_missing_prompt_exact(client):
    r = client.post(RUNS, json={})
    e = one_error(r)
    assert e["type"] == "missing"
    assert e["loc"] == ["body", "prompt"]
    assert e["msg"] == "Field required"
    assert e["input"] == {}


def test_422_missing_prompt_input_is_the_body(shared_client):
    e = one_error(shared_client.post(RUNS, json={"session_id": "s", "config": {"a": 1}}))
    assert (e["type"], e["loc"], e["msg"]) == ("missing", ["body", "prompt"], "Field required")
    assert e["input"] == {"session_id": "s", "config": {"a": 1}}


@pytest.mark.parametrize("field,value,etype", [
    ("prompt", 123, "string_type"),
    ("prompt", None, "string_type"),
    ("prompt", ["a"], "string_type"),
    ("prompt", {"a": "b"}, "string_type"),
    ("agent_file", 5, "string_type"),
    ("agent_yaml", True, "string_type"),
    ("recipe_name", 1.5, "string_type"),
    ("framework", [], "string_type"),
    ("webhook_url", 1, "string_type"),
    ("session_id", 42, "string_type"),
    ("idempotency_key", {}, "string_type"),
    ("timeout", [1], "int_type"),
    ("timeout", {"s": 1}, "int_type"),
    ("priority", [], "int_type"),
    ("max_retries", {}, "int_type"),
    ("config", "x", "dict_type"),
    ("config", [1, 2], "dict_type"),
    ("recipe_config", 5, "dict_type"),
    ("metadata", "team=a", "dict_type"),
    ("metadata", ["a"], "dict_type"),
])
def test_422_wrong_type(shared_client, field, value, etype):
    body = {"prompt": "x", field: value}
    e = one_error(shared_client.post(RUNS, json=body))
    assert e["type"] == etype, e
    assert e["loc"] == ["body", field], e
    assert e["input"] == value, e


@pytest.mark.parametrize("field,value", [
    ("timeout", -1),
    ("timeout", 86401),
    ("priority", 101),
    ("priority", -101),
    ("max_retries", 11),
    ("max_retries", -1),
    ("idempotency_scope", "bogus"),
    ("idempotency_scope", "GLOBAL"),
    ("metadata", {f"k{i}": "v" for i in range(17)}),
    ("metadata", {"k": "v" * 100000}),
])
def test_422_value_error(shared_client, field, value):
    e = one_error(shared_client.post(RUNS, json={"prompt": "x", field: value}))
    assert e["type"] == "value_error", e
    assert e["loc"] == ["body", field], e


@pytest.mark.parametrize("meta", [{"a": 1}, {"a": None}, {"a": {"b": "c"}}, {"a": ["x"]},
                                  {"ok": "v", "bad": True}])
def test_422_metadata_values_must_be_strings(shared_client, meta):
    errors = validation_errors(shared_client.post(RUNS, json={"prompt": "x", "metadata": meta}))
    assert len(errors) == 1, errors
    e = errors[0]
    assert e["loc"][:2] == ["body", "metadata"], e
    assert e["type"] in ("value_error", "string_type"), e


@pytest.mark.parametrize("field", ["timeout", "priority", "max_retries"])
def test_422_huge_integers(shared_client, field):
    # beyond 64 bits: must be refused cleanly, not wrap around or crash
    content = '{"prompt": "x", "%s": 99999999999999999999}' % field
    e = one_error(post_raw(shared_client, content))
    assert e["loc"] == ["body", field], e
    assert e["type"] in ("value_error", "int_type"), e


def test_422_one_entry_per_bad_field(shared_client):
    body = {"prompt": 5, "timeout": [], "config": "x", "priority": 1000,
            "idempotency_scope": "weird", "session_id": 3}
    errors = validation_errors(shared_client.post(RUNS, json=body))
    locs = sorted(tuple(e["loc"]) for e in errors)
    assert locs == sorted([("body", "prompt"), ("body", "timeout"), ("body", "config"),
                           ("body", "priority"), ("body", "idempotency_scope"),
                           ("body", "session_id")]), errors
    by = {e["loc"][1]: e["type"] for e in errors}
    assert by == {"prompt": "string_type", "timeout": "int_type", "config": "dict_type",
                  "priority": "value_error", "idempotency_scope": "value_error",
                  "session_id": "string_type"}


def test_422_missing_prompt_plus_bad_field(shared_client):
    errors = validation_errors(shared_client.post(RUNS, json={"config": 1, "timeout": -5}))
    by = {tuple(e["loc"]): e["type"] for e in errors}
    assert by == {("body", "prompt"): "missing", ("body", "config"): "dict_type",
                  ("body", "timeout"): "value_error"}, errors


def test_422_creates_no_job(server, client):
    validation_errors(client.post(RUNS, json={"prompt": 1}))
    validation_errors(client.post(RUNS, json={"prompt": "x", "priority": 500}))
    assert client.get(RUNS).json()["total"] == 0
    assert client.get("/stats").json()["total_jobs"] == 0


@pytest.mark.parametrize("content,offset", [
    ('{"prompt": x}', 11),
    ('{"prompt": "x",}', 15),
    ('{"prompt": "x" "y"}', 15),
    ("nope", 0),
    ('{"prompt": "x"} trailing', 16),
    ('{"prompt": "\u00e9", x}', 17),  # a byte offset: the e-acute is two bytes
])
def test_422_malformed_json(shared_client, content, offset):
    e = one_error(post_raw(shared_client, content))
    assert e["type"] == "json_invalid", e
    assert e["loc"] == ["body", offset], e


def test_422_truncated_json(shared_client):
    e = one_error(post_raw(shared_client, '{"prompt": "abc"'))
    assert e["type"] == "json_invalid", e
    assert e["loc"][0] == "body" and isinstance(e["loc"][1], int), e
    assert 15 <= e["loc"][1] <= 16, e


@pytest.mark.parametrize("content", ['[1, 2]', '"a prompt"', "42", "null", "true",
                                     '[{"prompt": "x"}]'])
def test_422_body_not_an_object(shared_client, content):
    e = one_error(post_raw(shared_client, content))
    assert e["loc"] == ["body"], e
    assert e["type"] == "dict_type", e


# --------------------------------------------------------------------------- 413


def padded_body(size):
    """A valid submit body of exactly `size` bytes."""
    base = json.dumps({"prompt": ""})
    body = json.dumps({"prompt": "a" * (size - len(base))})
    assert len(body) == size
    return body.encode()


def test_413_over_max_body_and_exact_limit_accepted(make_server):
    s = make_server("--max-body", "2048")
    with s.client() as c:
        r = post_raw(c, padded_body(2048))
        assert r.status_code == 202, r.text
        r = post_raw(c, padded_body(2049))
        assert r.status_code == 413, (r.status_code, r.text)
        body = r.json()
        assert isinstance(body, dict) and "detail" in body, body
    with s.client() as c:
        # the server is still fine afterwards, and only the first job exists
        assert c.get(RUNS).json()["total"] == 1


def test_413_chunked_body_over_limit(make_server):
    s = make_server("--max-body", "2048")

    def gen():
        data = padded_body(5000)
        for i in range(0, len(data), 500):
            yield data[i:i + 500]

    with s.client() as c:
        r = c.post(RUNS, content=gen(), headers={"Content-Type": "application/json"})
        assert r.status_code == 413, (r.status_code, r.text)
        assert "detail" in r.json()
    with s.client() as c:
        assert c.get(RUNS).json()["total"] == 0


def test_413_default_limit_is_one_mib(server):
    with server.client() as c:
        r = post_raw(c, padded_body(1024 * 1024))
        assert r.status_code == 202, r.status_code
    with server.client() as c:
        r = post_raw(c, padded_body(1024 * 1024 + 1))
        assert r.status_code == 413, (r.status_code, r.text)
        assert "detail" in r.json()


def test_413_sent_before_the_body(server):
    # Content-Length alone shows the body is too big: the answer must come without the
    # client sending a single body byte.
    req = (b"POST /api/v1/runs HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
           b"Content-Length: 50000000\r\n\r\n")
    t0 = time.monotonic()
    status, headers, body = raw_http(server.url, req, timeout=5)
    assert status == 413
    assert time.monotonic() - t0 < 3
    assert "detail" in json.loads(body)


def test_server_survives_bad_requests(server, client):
    post_raw(client, "{", content_type="application/json")
    post_raw(client, b"\xff\xfe\x00garbage", content_type="application/json")
    post_raw(client, "x", content_type="text/plain")
    job = submit(client, "still alive")
    assert wait_status(client, job["job_id"])["status"] == "succeeded"


def test_concurrent_submits_all_acknowledged(server):
    ids, errors = [], []
    lock = threading.Lock()

    def worker(n):
        with server.client() as c:
            for i in range(25):
                r = c.post(RUNS, json={"prompt": f"{n}-{i}"})
                with lock:
                    if r.status_code == 202:
                        ids.append(r.json()["job_id"])
                    else:
                        errors.append(r.text)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(ids) == 200 and len(set(ids)) == 200
    with server.client() as c:
        assert c.get(RUNS).json()["total"] == 200


def test_422_empty_body(shared_client):
    # FastAPI answers an empty JSON body with one `missing` entry for the whole body
    e = one_error(post_raw(shared_client, b""))
    assert e["type"] in ("missing", "json_invalid"), e
    assert e["loc"][0] == "body", e
