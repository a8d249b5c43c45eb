"""Where runq meets PraisonAI's own clients: the compatibility details of docs/api.md
("Where runq differs from PraisonAI's server"). The first tests are behaviour runq shares
with PraisonAI; the rest pin differences that are documented and kept on purpose, so that
changing one means changing its line in docs/api.md too."""
from conftest import submit, wait_status, wait_until

RUNS = "/api/v1/runs"
BAD_STATUS = ("Invalid status: {}. Valid values: "
              "['queued', 'running', 'succeeded', 'failed', 'cancelled']")


def ids(body):
    return [j["job_id"] for j in body["jobs"]]


# --- shared with PraisonAI ---------------------------------------------------------------

def test_empty_session_id_is_no_filter(client):
    # PraisonAI filters only on a non-empty session_id; a form with an empty field sends `?session_id=`.
    a = submit(client, "a", session_id="A")["job_id"]
    none = submit(client, "none")["job_id"]
    empty = submit(client, "empty", session_id="")["job_id"]
    for j in (a, none, empty):
        wait_status(client, j)
    body = client.get(f"{RUNS}?session_id=").json()
    assert ids(body) == [empty, none, a] and body["total"] == 3, body
    both = client.get(f"{RUNS}?session_id=&status=succeeded").json()
    assert ids(both) == [empty, none, a], both
    # The last value wins (FastAPI's rule for a scalar), an empty one too.
    assert ids(client.get(f"{RUNS}?session_id=&session_id=A").json()) == [a]
    assert client.get(f"{RUNS}?session_id=A&session_id=").json()["total"] == 3


def test_empty_status_is_no_filter(client):
    # PraisonAI's router filters only `if status:`; `?status=` lists every job.
    done = submit(client, "done")["job_id"]
    wait_status(client, done)
    failed = submit(client, "f", config={"fail_with": "boom"})["job_id"]
    wait_status(client, failed)
    r = client.get(f"{RUNS}?status=")
    assert r.status_code == 200, r.text
    assert ids(r.json()) == [failed, done] and r.json()["total"] == 2, r.json()
    assert ids(client.get(f"{RUNS}?status=&session_id=").json()) == [failed, done]
    # The last value wins, an empty one too.
    assert ids(client.get(f"{RUNS}?status=&status=failed").json()) == [failed]
    assert client.get(f"{RUNS}?status=failed&status=").json()["total"] == 2
    # A non-empty unknown status is still the 400 PraisonAI gives.
    r = client.get(f"{RUNS}?status=bogus")
    assert r.status_code == 400
    assert r.json() == {"detail": BAD_STATUS.format("bogus")}


INT_PARSING = "Input should be a valid integer, unable to parse string as an integer"


def test_integer_strings_are_integers(client):
    # FastAPI's pydantic v2 validates a JSON body in lax mode: "60" is 60 for an int field.
    j = submit(client, "x", timeout="60", priority=" -5 ", max_retries="2")["job_id"]
    st = client.get(f"{RUNS}/{j}").json()
    assert (st["timeout"], st["priority"]) == (60, -5), st
    for text, value in (("1_000", 1000), ("120.0", 120), ("+7", 7)):
        j = submit(client, "x", timeout=text)["job_id"]
        assert client.get(f"{RUNS}/{j}").json()["timeout"] == value, text


def test_integer_strings_that_are_not_integers_are_int_parsing(client):
    for field in ("timeout", "priority", "max_retries"):
        for text in ("12.5", "abc", "", "1e3"):
            r = client.post(RUNS, json={"prompt": "x", field: text})
            assert r.status_code == 422, (field, text, r.text)
            assert r.json()["detail"] == [{"type": "int_parsing", "loc": ["body", field],
                                           "msg": INT_PARSING, "input": text}], r.json()
    # Parsed, then range-checked like a JSON integer (the input shown is the string).
    r = client.post(RUNS, json={"prompt": "x", "timeout": "86401"})
    [e] = r.json()["detail"]
    assert (e["type"], e["loc"], e["input"]) == ("value_error", ["body", "timeout"], "86401"), e
    assert client.get("/stats").json()["total_jobs"] == 0


def test_integer_string_replays_like_its_integer(client):
    # The request hash takes the parsed value: a client that sends "120" once and 120 the
    # next time is replaying one request, not conflicting with itself.
    h = {"Idempotency-Key": "int-str"}
    first = submit(client, "x", headers=h, timeout="120", priority="3")["job_id"]
    again = submit(client, "x", headers=h, timeout=120, priority=3)["job_id"]
    assert again == first
    r = client.post(RUNS, json={"prompt": "x", "timeout": "121", "priority": 3}, headers=h)
    assert r.status_code == 409, r.text
    assert client.get("/stats").json()["total_jobs"] == 1


def test_stats_carries_the_executor(client):
    # PraisonAI's /stats has `"executor": executor.get_stats()`: what /health calls
    # executor_stats.
    j = submit(client, "x")["job_id"]
    wait_status(client, j)
    wait_until(lambda: client.get("/health").json()["executor_stats"]["running_jobs"] == 0)
    stats = client.get("/stats").json()
    assert set(stats) == {"total_jobs", "by_status", "executor"}, stats
    assert stats["total_jobs"] == 1 and stats["by_status"]["succeeded"] == 1, stats
    assert stats["executor"] == client.get("/health").json()["executor_stats"], stats
    assert set(stats["executor"]) == {"running_jobs", "queued_jobs", "max_concurrent",
                                      "default_timeout", "shutdown"}, stats
    assert stats["executor"]["running_jobs"] == 0 and stats["executor"]["queued_jobs"] == 0


def test_idempotency_scope_none_never_dedupes_a_header_key(client):
    # The scope is the client's word that the request is not idempotent, whoever sent the key.
    h = {"Idempotency-Key": "nk"}
    first = submit(client, "x", headers=h, idempotency_scope="none")["job_id"]
    second = submit(client, "x", headers=h, idempotency_scope="none")["job_id"]
    assert first != second
    # The key was never recorded: a later global submit with it is a new job, not a 409.
    third = submit(client, "y", headers=h)["job_id"]
    assert third not in (first, second)
    assert client.get("/stats").json()["total_jobs"] == 3


# --- documented differences, kept --------------------------------------------------------

def test_result_of_failed_and_cancelled_jobs_is_400(client):
    failed = submit(client, "f", config={"fail_with": "boom"})["job_id"]
    wait_status(client, failed)
    r = client.get(f"{RUNS}/{failed}/result")
    assert r.status_code == 400
    assert r.json() == {"detail": "Job failed. No result available.", "error": "boom"}
    slow = submit(client, "s", config={"sleep_seconds": 30})["job_id"]
    assert client.post(f"{RUNS}/{slow}/cancel").status_code == 200
    r = client.get(f"{RUNS}/{slow}/result")
    assert r.status_code == 400
    assert r.json()["detail"] == "Job was cancelled. No result available."


def test_replayed_submit_says_queued(client):
    first = submit(client, "x", idempotency_key="rk")
    assert wait_status(client, first["job_id"])["status"] == "succeeded"
    again = submit(client, "x", idempotency_key="rk")
    assert again["job_id"] == first["job_id"]
    assert again["status"] == "queued"  # the state at acceptance, as on the first 202
