"""GET /openapi.json: the OpenAPI 3.1 document, checked against the server's real answers.

For each answer produced here, the JSON body must match the documented schema of that
operation and status: every field of the body documented (objects are closed unless the
schema says `additionalProperties`), every documented required field present, types and
enums right. The checker below is small on purpose (no jsonschema dependency)."""
import json
import os
import re

import httpx
import pytest

from conftest import raw_http, submit, wait_status, wait_until

RUNS = "/api/v1/runs"
DOC_PATH = os.path.join(os.path.dirname(__file__), "..", "..", "docs", "openapi.json")
KEY = "runq-openapi-key-8e2d4c6a1f0b3957"
DATE_TIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$")


# ---------------------------------------------------------------------------------------
# The schema checker: the subset of JSON Schema 2020-12 the document uses.

class SchemaError(AssertionError):
    pass


def json_type(v):
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, int):
        return "integer"
    if isinstance(v, float):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    return "object"


def check(doc, schema, value, where="$"):
    """Raises SchemaError if `value` does not match `schema`."""
    if "$ref" in schema:
        ref = schema["$ref"]
        assert ref.startswith("#/"), ref
        target = doc
        for part in ref[2:].split("/"):
            target = target[part]
        return check(doc, target, value, where)
    for key in ("oneOf", "anyOf"):
        if key in schema:
            errors = []
            for sub in schema[key]:
                try:
                    check(doc, sub, value, where)
                    break
                except SchemaError as e:
                    errors.append(str(e))
            else:
                raise SchemaError(f"{where}: matches none of {key}: {errors}")
    if "type" in schema:
        types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        t = json_type(value)
        if not (t in types or (t == "integer" and "number" in types)):
            raise SchemaError(f"{where}: {value!r} is {t}, documented {types}")
    if "const" in schema and value != schema["const"]:
        raise SchemaError(f"{where}: {value!r} != const {schema['const']!r}")
    if "enum" in schema and value not in schema["enum"]:
        raise SchemaError(f"{where}: {value!r} not in {schema['enum']}")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            raise SchemaError(f"{where}: {value} < {schema['minimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            raise SchemaError(f"{where}: {value} > {schema['maximum']}")
    if isinstance(value, str):
        if "pattern" in schema and not re.search(schema["pattern"], value):
            raise SchemaError(f"{where}: {value!r} does not match {schema['pattern']}")
        if schema.get("format") == "date-time" and not DATE_TIME_RE.match(value):
            raise SchemaError(f"{where}: {value!r} is not a runq timestamp")
    if isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            check(doc, schema["items"], item, f"{where}[{i}]")
    if isinstance(value, dict):
        props = schema.get("properties", {})
        for name in schema.get("required", []):
            if name not in value:
                raise SchemaError(f"{where}: documented required field {name!r} missing")
        extra = schema.get("additionalProperties", False if props else True)
        for name, v in value.items():
            if name in props:
                check(doc, props[name], v, f"{where}.{name}")
            elif extra is False:
                raise SchemaError(f"{where}: field {name!r} is not documented")
            elif isinstance(extra, dict):
                check(doc, extra, v, f"{where}.{name}")


def test_checker_catches_undocumented_and_missing_fields():
    doc = {"components": {"schemas": {"E": {"type": "object", "required": ["a"],
                                            "additionalProperties": False,
                                            "properties": {"a": {"type": "string"}}}}}}
    s = {"$ref": "#/components/schemas/E"}
    check(doc, s, {"a": "x"})
    with pytest.raises(SchemaError, match="not documented"):
        check(doc, s, {"a": "x", "b": 1})
    with pytest.raises(SchemaError, match="missing"):
        check(doc, s, {})
    with pytest.raises(SchemaError, match="is integer"):
        check(doc, s, {"a": 1})


# ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def doc():
    with open(DOC_PATH) as f:
        return json.load(f)


class Checker:
    """Checks answers against `doc` and remembers which (path, method, code) it saw."""

    def __init__(self, doc):
        self.doc = doc
        self.seen = set()

    def __call__(self, response, path, method):
        op = self.doc["paths"][path][method.lower()]
        code = str(response.status_code)
        assert code in op["responses"], f"{method} {path}: {code} not documented"
        spec = op["responses"][code]
        while "$ref" in spec:
            spec = self.doc["components"]["responses"][spec["$ref"].split("/")[-1]]
        content = spec.get("content")
        if not content:
            assert response.content == b"", f"{method} {path} {code}: undocumented body"
        else:
            ctype = response.headers["content-type"].split(";")[0]
            media = next((v for k, v in content.items() if k.split(";")[0] == ctype), None)
            assert media is not None, f"{method} {path} {code}: {ctype} not documented"
            if ctype == "application/json":
                check(self.doc, media["schema"], response.json(), f"{method} {path} {code}")
        for name in spec.get("headers", {}):
            assert name.lower() in response.headers, f"{method} {path} {code}: no {name}"
        self.seen.add((path, method.lower(), code))
        return response


def test_served_document_is_the_source_file(client, doc):
    r = client.get("/openapi.json")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/json")
    assert r.json() == doc
    assert doc["openapi"].startswith("3.1")
    schemes = doc["components"]["securitySchemes"]
    assert schemes["bearerAuth"] == {**schemes["bearerAuth"], "type": "http", "scheme": "bearer"}
    assert schemes["apiKeyHeader"]["name"] == "X-API-Key"
    assert doc["paths"]["/health"]["get"]["security"] == []


def test_every_route_documented(doc):
    want = {("/api/v1/runs", "get"), ("/api/v1/runs", "post"),
            ("/api/v1/runs/{job_id}", "get"), ("/api/v1/runs/{job_id}", "delete"),
            ("/api/v1/runs/{job_id}/result", "get"), ("/api/v1/runs/{job_id}/cancel", "post"),
            ("/api/v1/runs/{job_id}/stream", "get"), ("/health", "get"), ("/stats", "get"),
            ("/metrics", "get"), ("/openapi.json", "get")}
    have = {(p, m) for p, item in doc["paths"].items() for m in item
            if m in ("get", "post", "put", "delete", "patch")}
    assert have == want
    stream = doc["paths"]["/api/v1/runs/{job_id}/stream"]["get"]["responses"]["200"]
    assert "text/event-stream" in stream["content"]
    submit_op = doc["paths"]["/api/v1/runs"]["post"]
    for code in ("202", "401", "409", "413", "415", "422", "429", "503"):
        assert code in submit_op["responses"], code


def test_answers_match_the_document(make_server, doc):
    s = make_server("--max-concurrent", "1", "--max-body", "4096")
    ck = Checker(doc)
    with s.client() as c:
        # A running blocker keeps the next job queued.
        blocker = ck(c.post(RUNS, json={"prompt": "b", "config": {"sleep_seconds": 30}}),
                     "/api/v1/runs", "POST").json()["job_id"]
        wait_status(c, blocker, "running")
        ck(c.get(f"{RUNS}/{blocker}"), "/api/v1/runs/{job_id}", "GET")
        queued = submit(c, "q", metadata={"k": "v"}, priority=3, session_id="s1")["job_id"]
        ck(c.get(f"{RUNS}/{queued}"), "/api/v1/runs/{job_id}", "GET")
        ck(c.get(f"{RUNS}/{queued}/result"), "/api/v1/runs/{job_id}/result", "GET")  # 400
        ck(c.delete(f"{RUNS}/{queued}"), "/api/v1/runs/{job_id}", "DELETE")  # 400
        ck(c.get(RUNS, params={"session_id": "s1"}), "/api/v1/runs", "GET")
        ck(c.get(RUNS), "/api/v1/runs", "GET")
        ck(c.post(f"{RUNS}/{queued}/cancel"), "/api/v1/runs/{job_id}/cancel", "POST")
        ck(c.get(f"{RUNS}/{queued}/result"), "/api/v1/runs/{job_id}/result", "GET")
        ck(c.post(f"{RUNS}/{blocker}/cancel"), "/api/v1/runs/{job_id}/cancel", "POST")

        ok = submit(c, "hello")["job_id"]
        wait_status(c, ok, "succeeded")
        ck(c.get(f"{RUNS}/{ok}"), "/api/v1/runs/{job_id}", "GET")
        ck(c.get(f"{RUNS}/{ok}/result"), "/api/v1/runs/{job_id}/result", "GET")
        ck(c.get(f"{RUNS}/{ok}/result", params={"wait": 1}), "/api/v1/runs/{job_id}/result", "GET")
        ck(c.post(f"{RUNS}/{ok}/cancel"), "/api/v1/runs/{job_id}/cancel", "POST")  # 400
        bad = submit(c, "x", config={"fail_with": "boom"})["job_id"]
        wait_status(c, bad, "failed")
        ck(c.get(f"{RUNS}/{bad}"), "/api/v1/runs/{job_id}", "GET")
        ck(c.get(f"{RUNS}/{bad}/result"), "/api/v1/runs/{job_id}/result", "GET")
        ck(c.get(RUNS, params={"status": "failed"}), "/api/v1/runs", "GET")
        ck(c.delete(f"{RUNS}/{bad}"), "/api/v1/runs/{job_id}", "DELETE")  # 204

        with c.stream("GET", f"{RUNS}/{ok}/stream") as r:
            r.read()
            ck(r, "/api/v1/runs/{job_id}/stream", "GET")
        missing = "run_0123456789abcdef0123"
        for path, method in ((f"{RUNS}/{missing}", "GET"), (f"{RUNS}/{missing}/result", "GET"),
                             (f"{RUNS}/{missing}/cancel", "POST"), (f"{RUNS}/{missing}", "DELETE"),
                             (f"{RUNS}/{missing}/stream", "GET")):
            template = path.replace(missing, "{job_id}")
            assert ck(c.request(method, path), template, method).status_code == 404

        # Idempotency: replay 202, conflict 409.
        h = {"Idempotency-Key": "k-1"}
        ck(c.post(RUNS, json={"prompt": "i"}, headers=h), "/api/v1/runs", "POST")
        ck(c.post(RUNS, json={"prompt": "i"}, headers=h), "/api/v1/runs", "POST")
        assert ck(c.post(RUNS, json={"prompt": "j"}, headers=h),
                  "/api/v1/runs", "POST").status_code == 409
        # Validation and the other refusals of a submit.
        for body in ({}, {"prompt": 5, "timeout": "x", "metadata": {"a": 1}}):
            assert ck(c.post(RUNS, json=body), "/api/v1/runs", "POST").status_code == 422
        r = c.post(RUNS, content=b'{"prompt": ', headers={"Content-Type": "application/json"})
        assert ck(r, "/api/v1/runs", "POST").status_code == 422
        r = c.post(RUNS, content=b"prompt=x", headers={"Content-Type": "text/plain"})
        assert ck(r, "/api/v1/runs", "POST").status_code == 415
        r = c.post(RUNS, json={"prompt": "x" * 5000})
        assert ck(r, "/api/v1/runs", "POST").status_code == 413
        assert ck(c.get(f"{RUNS}/{ok}", params={"wait": 999}),
                  "/api/v1/runs/{job_id}", "GET").status_code == 422
        assert ck(c.get(RUNS, params={"page_size": 0}), "/api/v1/runs", "GET").status_code == 422
        assert ck(c.get(RUNS, params={"status": "nope"}), "/api/v1/runs", "GET").status_code == 400

        ck(c.get("/health"), "/health", "GET")
        ck(c.get("/stats"), "/stats", "GET")
        ck(c.get("/metrics"), "/metrics", "GET")
        ck(c.get("/openapi.json"), "/openapi.json", "GET")

    # 429: a full queue.
    full = make_server("--max-queued", "1", "--max-concurrent", "1",
                       db=str(os.path.dirname(s.db_path)) + "/full.db")
    with full.client() as c:
        first = submit(c, "a", config={"sleep_seconds": 30})["job_id"]
        wait_status(c, first, "running")
        submit(c, "b")
        r = ck(c.post(RUNS, json={"prompt": "c"}), "/api/v1/runs", "POST")
        assert r.status_code == 429

    # 401 on every documented path but /health.
    keyed = make_server("--api-key", KEY, db=str(os.path.dirname(s.db_path)) + "/keyed.db")
    with keyed.client() as c:
        for path, item in doc["paths"].items():
            for method in item:
                if method not in ("get", "post", "delete"):
                    continue
                real = path.replace("{job_id}", missing)
                r = c.request(method.upper(), real, json={"prompt": "x"} if method == "post" else None)
                if path == "/health":
                    assert r.status_code == 200
                else:
                    assert ck(r, path, method.upper()).status_code == 401, path

    codes = {(p, m, code) for p, m, code in ck.seen}
    for want in (("/api/v1/runs", "post", "202"), ("/api/v1/runs", "post", "409"),
                 ("/api/v1/runs", "post", "422"), ("/api/v1/runs", "post", "429"),
                 ("/api/v1/runs", "post", "401"), ("/api/v1/runs/{job_id}", "get", "404"),
                 ("/api/v1/runs/{job_id}/result", "get", "200"),
                 ("/api/v1/runs/{job_id}/result", "get", "400")):
        assert want in codes, want
