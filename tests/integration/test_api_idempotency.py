"""Idempotency keys on POST /api/v1/runs (API.md "Idempotency")."""
import json
import threading

from conftest import get_status, submit, wait_status

RUNS = "/api/v1/runs"


def conflict_text(job_id):
    return f"Idempotency key already used for job {job_id} with a different request"


def total(client):
    return client.get(RUNS).json()["total"]


def test_same_key_same_body_same_job(server, client):
    r1 = client.post(RUNS, json={"prompt": "x", "session_id": "s"},
                     headers={"Idempotency-Key": "key-1"})
    assert r1.status_code == 202
    first = r1.json()
    wait_status(client, first["job_id"])
    r2 = client.post(RUNS, json={"prompt": "x", "session_id": "s"},
                     headers={"Idempotency-Key": "key-1"})
    assert r2.status_code == 202, r2.text
    second = r2.json()
    assert second["job_id"] == first["job_id"]
    assert second["created_at"] == first["created_at"]
    assert second["status"] == "queued"
    assert second["poll_url"] == first["poll_url"]
    assert second["stream_url"] == first["stream_url"]
    assert r2.headers["location"] == first["poll_url"]
    assert r2.headers["retry-after"] == "2"
    assert total(client) == 1
    assert client.get("/stats").json()["total_jobs"] == 1
    # nothing was started again
    assert get_status(client, first["job_id"])["attempts"] == 1


def test_replay_while_job_is_running_starts_nothing(client):
    body = {"prompt": "slow", "config": {"sleep_seconds": 30}, "idempotency_key": "k-run"}
    first = client.post(RUNS, json=body).json()
    wait_status(client, first["job_id"], "running")
    for _ in range(3):
        again = client.post(RUNS, json=body)
        assert again.status_code == 202
        assert again.json()["job_id"] == first["job_id"]
    st = get_status(client, first["job_id"])
    assert st["status"] == "running" and st["attempts"] == 1
    h = client.get("/health").json()["executor_stats"]
    assert h["running_jobs"] == 1 and h["queued_jobs"] == 0
    assert total(client) == 1
    client.post(f"{RUNS}/{first['job_id']}/cancel")


def test_header_key_and_body_key_are_the_same_key(client):
    a = submit(client, "x", headers={"Idempotency-Key": "shared"})
    b = submit(client, "x", idempotency_key="shared")
    assert b["job_id"] == a["job_id"]
    c = submit(client, "x", idempotency_key="shared", headers={"Idempotency-Key": "shared"})
    assert c["job_id"] == a["job_id"]
    r = client.post(RUNS, json={"prompt": "y", "idempotency_key": "shared"})
    assert r.status_code == 409
    assert r.json() == {"detail": conflict_text(a["job_id"])}
    assert total(client) == 1


def test_header_key_wins_over_body_key(client):
    a = submit(client, "x", idempotency_key="body-k", headers={"Idempotency-Key": "hdr-k"})
    # the body key was ignored, so "body-k" is still unused ...
    b = submit(client, "x", idempotency_key="body-k")
    assert b["job_id"] != a["job_id"]
    # ... and "hdr-k" is a's key, whatever the body key says
    c = submit(client, "x", idempotency_key="other", headers={"Idempotency-Key": "hdr-k"})
    assert c["job_id"] == a["job_id"]
    d = submit(client, "x", headers={"Idempotency-Key": "hdr-k"})
    assert d["job_id"] == a["job_id"]
    assert total(client) == 2


def test_different_body_409_exact(client):
    a = submit(client, "x", config={"n": 1}, headers={"Idempotency-Key": "k409"})
    for different in ({"prompt": "y"},
                      {"prompt": "x", "config": {"n": 2}},
                      {"prompt": "x", "config": {"n": 1}, "priority": 5},
                      {"prompt": "x", "config": {"n": 1}, "session_id": "s"},
                      {"prompt": "x", "config": {"n": 1}, "metadata": {"a": "b"}},
                      {"prompt": "x", "config": {"n": 1}, "timeout": 60}):
        r = client.post(RUNS, json=different, headers={"Idempotency-Key": "k409"})
        assert r.status_code == 409, (different, r.status_code, r.text)
        assert r.headers["content-type"].startswith("application/json")
        assert r.json() == {"detail": conflict_text(a["job_id"])}
    assert total(client) == 1


def test_same_parsed_body_in_other_bytes_is_the_same(client):
    raw1 = b'{"prompt":"x","priority":3,"config":{"a":1,"b":[1,2]}}'
    raw2 = b'{ "config" : { "b" : [1, 2], "a" : 1 },\n  "priority": 3, "prompt": "x" }'
    h = {"Content-Type": "application/json", "Idempotency-Key": "fmt"}
    r1 = client.post(RUNS, content=raw1, headers=h)
    r2 = client.post(RUNS, content=raw2, headers=h)
    assert r1.status_code == 202 and r2.status_code == 202, (r1.text, r2.text)
    assert r1.json()["job_id"] == r2.json()["job_id"]
    assert total(client) == 1


def test_idempotency_scope_is_not_part_of_the_body(client):
    a = submit(client, "x", idempotency_key="sc")
    b = submit(client, "x", idempotency_key="sc", idempotency_scope="global")
    assert b["job_id"] == a["job_id"]


def test_scope_session_same_key_two_sessions_two_jobs(client):
    a = submit(client, "x", session_id="A", idempotency_key="sk", idempotency_scope="session")
    b = submit(client, "x", session_id="B", idempotency_key="sk", idempotency_scope="session")
    assert a["job_id"] != b["job_id"]
    a2 = submit(client, "x", session_id="A", idempotency_key="sk", idempotency_scope="session")
    assert a2["job_id"] == a["job_id"]
    b2 = submit(client, "x", session_id="B", headers={"Idempotency-Key": "sk"},
                idempotency_scope="session")
    assert b2["job_id"] == b["job_id"]
    # a different body within one session still conflicts
    r = client.post(RUNS, json={"prompt": "other", "session_id": "A", "idempotency_key": "sk",
                                "idempotency_scope": "session"})
    assert r.status_code == 409
    assert r.json() == {"detail": conflict_text(a["job_id"])}
    # ... but a different body in a third session is just a new job
    c = submit(client, "other", session_id="C", idempotency_key="sk", idempotency_scope="session")
    assert c["job_id"] not in (a["job_id"], b["job_id"])
    assert total(client) == 3


def test_scope_global_same_key_other_session_conflicts(client):
    a = submit(client, "x", session_id="A", idempotency_key="gk")
    r = client.post(RUNS, json={"prompt": "x", "session_id": "B", "idempotency_key": "gk"})
    assert r.status_code == 409
    assert r.json() == {"detail": conflict_text(a["job_id"])}


def test_scope_none_never_dedupes(client):
    ids = {submit(client, "x", idempotency_key="nk", idempotency_scope="none")["job_id"]
           for _ in range(3)}
    assert len(ids) == 3
    r = client.post(RUNS, json={"prompt": "different", "idempotency_key": "nk",
                                "idempotency_scope": "none"})
    assert r.status_code == 202
    assert total(client) == 4


def test_no_key_no_dedupe(client):
    ids = {submit(client, "same")["job_id"] for _ in range(3)}
    assert len(ids) == 3


def test_keys_are_exact_strings(client):
    a = submit(client, "x", idempotency_key="Key")
    b = submit(client, "x", idempotency_key="key")
    c = submit(client, "x", idempotency_key="key ")
    assert len({a["job_id"], b["job_id"], c["job_id"]}) == 3


def test_unknown_fields_do_not_change_the_body(client):
    a = submit(client, "x", idempotency_key="uk")
    r = client.post(RUNS, json={"prompt": "x", "idempotency_key": "uk", "ignored": 1})
    assert r.status_code == 202, r.text
    assert r.json()["job_id"] == a["job_id"]


def test_concurrent_same_key_one_job(server):
    results = []
    lock = threading.Lock()
    barrier = threading.Barrier(12)

    def worker():
        with server.client() as c:
            barrier.wait()
            r = c.post(RUNS, json={"prompt": "race", "config": {"sleep_seconds": 0.2}},
                       headers={"Idempotency-Key": "race-key"})
            with lock:
                results.append((r.status_code, r.json().get("job_id")))

    threads = [threading.Thread(target=worker) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert [s for s, _ in results] == [202] * 12, results
    assert len({j for _, j in results}) == 1, results
    with server.client() as c:
        assert total(c) == 1
        st = wait_status(c, results[0][1])
        assert st["status"] == "succeeded" and st["attempts"] == 1


def test_conflict_race_different_bodies(server):
    results = []
    lock = threading.Lock()
    barrier = threading.Barrier(10)

    def worker(i):
        with server.client() as c:
            barrier.wait()
            r = c.post(RUNS, json={"prompt": f"body-{i}"}, headers={"Idempotency-Key": "rk"})
            with lock:
                results.append((r.status_code, r.json()))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    accepted = [b for s, b in results if s == 202]
    conflicts = [b for s, b in results if s == 409]
    assert len(accepted) == 1 and len(conflicts) == 9, results
    for b in conflicts:
        assert b == {"detail": conflict_text(accepted[0]["job_id"])}
    with server.client() as c:
        assert total(c) == 1


def test_failed_job_key_still_replays(client):
    a = submit(client, "x", config={"fail_with": "e"}, idempotency_key="fk")
    assert wait_status(client, a["job_id"])["status"] == "failed"
    b = submit(client, "x", config={"fail_with": "e"}, idempotency_key="fk")
    assert b["job_id"] == a["job_id"]
    assert get_status(client, a["job_id"])["attempts"] == 1


def test_idempotency_key_on_raw_bytes_with_unicode(client):
    body = json.dumps({"prompt": "caf\u00e9"}, ensure_ascii=False).encode()
    h = {"Content-Type": "application/json", "Idempotency-Key": "u1"}
    a = client.post(RUNS, content=body, headers=h).json()
    b = client.post(RUNS, json={"prompt": "caf\u00e9"}, headers={"Idempotency-Key": "u1"}).json()
    assert a["job_id"] == b["job_id"]
