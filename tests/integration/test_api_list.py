"""GET /api/v1/runs: newest first, filters, paging, bounds (API.md "list")."""
import pytest

from conftest import get_status, submit, wait_status

RUNS = "/api/v1/runs"
BAD_STATUS = ("Invalid status: {}. Valid values: "
              "['queued', 'running', 'succeeded', 'failed', 'cancelled']")


def ids(body):
    return [j["job_id"] for j in body["jobs"]]


def test_empty_list_exact(client):
    r = client.get(RUNS)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/json")
    assert r.json() == {"jobs": [], "total": 0, "page": 1, "page_size": 20}


def test_newest_first_and_full_status_objects(client):
    submitted = [submit(client, f"p{i}")["job_id"] for i in range(6)]
    for j in submitted:
        wait_status(client, j)
    body = client.get(RUNS).json()
    assert body["total"] == 6 and body["page"] == 1 and body["page_size"] == 20
    assert ids(body) == list(reversed(submitted))
    # every entry is the job's status object, plus the head of its prompt
    for entry, prompt in zip(body["jobs"], [f"p{i}" for i in reversed(range(6))]):
        assert entry.pop("prompt_preview") == prompt
        assert entry == get_status(client, entry["job_id"])
        assert "prompt_preview" not in get_status(client, entry["job_id"])


def test_prompt_preview_is_the_first_100_characters(client):
    exact = "\u00e9" * 100                      # 100 characters, 200 bytes
    long = "\U0001F600" + "word " * 100         # a 4-byte character first
    jobs = {submit(client, p)["job_id"]: p for p in (exact, long, "line\nbreak <b>")}
    previews = {j["job_id"]: j["prompt_preview"] for j in client.get(RUNS).json()["jobs"]}
    for job_id, prompt in jobs.items():
        want = prompt if len(prompt) <= 100 else prompt[:100] + "\u2026"
        assert previews[job_id] == want, (prompt[:20], previews[job_id])


def test_default_page_size_is_20(client):
    submitted = [submit(client, f"p{i}")["job_id"] for i in range(23)]
    body = client.get(RUNS).json()
    assert body["total"] == 23
    assert ids(body) == list(reversed(submitted))[:20]
    body2 = client.get(RUNS, params={"page": 2}).json()
    assert ids(body2) == list(reversed(submitted))[20:]
    assert (body2["page"], body2["page_size"], body2["total"]) == (2, 20, 23)


def test_paging(client):
    submitted = [submit(client, f"p{i}")["job_id"] for i in range(7)]
    newest_first = list(reversed(submitted))
    seen = []
    for page, expected in ((1, 3), (2, 3), (3, 1), (4, 0), (50, 0)):
        body = client.get(RUNS, params={"page": page, "page_size": 3}).json()
        assert body["total"] == 7
        assert body["page"] == page and body["page_size"] == 3
        assert len(body["jobs"]) == expected, (page, body)
        seen += ids(body)
    assert seen == newest_first
    one = client.get(RUNS, params={"page": 7, "page_size": 1}).json()
    assert ids(one) == [submitted[0]]
    hundred = client.get(RUNS, params={"page_size": 100}).json()
    assert ids(hundred) == newest_first and hundred["page_size"] == 100


def test_filter_by_status(make_server):
    s = make_server("--max-concurrent", "1")
    with s.client() as c:
        ok1 = submit(c, "ok1")["job_id"]
        bad = submit(c, "bad", config={"fail_with": "x"})["job_id"]
        ok2 = submit(c, "ok2")["job_id"]
        for j in (ok1, bad, ok2):
            wait_status(c, j)
        run = submit(c, "run", config={"sleep_seconds": 30})["job_id"]
        wait_status(c, run, "running")
        q1 = submit(c, "q1")["job_id"]
        q2 = submit(c, "q2")["job_id"]
        can = submit(c, "can")["job_id"]
        assert c.post(f"{RUNS}/{can}/cancel").status_code == 200
        expected = {"succeeded": [ok2, ok1], "failed": [bad], "running": [run],
                    "queued": [q2, q1], "cancelled": [can]}
        for status, want in expected.items():
            body = c.get(RUNS, params={"status": status}).json()
            assert ids(body) == want, (status, body)
            assert body["total"] == len(want)
            assert all(j["status"] == status for j in body["jobs"])
        assert c.get(RUNS).json()["total"] == 7
        c.post(f"{RUNS}/{run}/cancel")


def test_filter_by_session_and_combined(client):
    a1 = submit(client, "a1", session_id="A")["job_id"]
    b1 = submit(client, "b1", session_id="B")["job_id"]
    a2 = submit(client, "a2", session_id="A", config={"fail_with": "no"})["job_id"]
    n = submit(client, "none")["job_id"]
    for j in (a1, b1, a2, n):
        wait_status(client, j)
    body = client.get(RUNS, params={"session_id": "A"}).json()
    assert ids(body) == [a2, a1] and body["total"] == 2
    assert all(j["session_id"] == "A" for j in body["jobs"])
    assert ids(client.get(RUNS, params={"session_id": "B"}).json()) == [b1]
    empty = client.get(RUNS, params={"session_id": "nobody"}).json()
    assert empty == {"jobs": [], "total": 0, "page": 1, "page_size": 20}
    both = client.get(RUNS, params={"session_id": "A", "status": "succeeded"}).json()
    assert ids(both) == [a1] and both["total"] == 1
    paged = client.get(RUNS, params={"session_id": "A", "page_size": 1, "page": 2}).json()
    assert ids(paged) == [a1] and paged["total"] == 2


def test_session_filter_is_exact_match(client):
    a = submit(client, "x", session_id="abc")["job_id"]
    submit(client, "x", session_id="abcd")
    submit(client, "x", session_id="ab%")
    submit(client, "x", session_id="ABC")
    body = client.get(RUNS, params={"session_id": "abc"}).json()
    assert ids(body) == [a]
    assert client.get(RUNS, params={"session_id": "ab%"}).json()["total"] == 1
    assert client.get(RUNS, params={"session_id": "ab_"}).json()["total"] == 0


@pytest.mark.parametrize("bad", ["foo", "QUEUED", "done", "running ", "cancelled,queued"])
def test_bad_status_400_exact(shared_client, bad):
    r = shared_client.get(RUNS, params={"status": bad})
    assert r.status_code == 400, (bad, r.status_code, r.text)
    assert r.json() == {"detail": BAD_STATUS.format(bad)}


@pytest.mark.parametrize("name,value", [
    ("page_size", "0"), ("page_size", "101"), ("page_size", "-1"), ("page_size", "x"),
    ("page_size", "99999999999999999999"), ("page_size", "1.5"),
    ("page", "0"), ("page", "-3"), ("page", "x"), ("page", "99999999999999999999"),
    ("page", "10000001"),
])
def test_bad_paging_422(shared_client, name, value):
    r = shared_client.get(RUNS, params={name: value})
    assert r.status_code == 422, (name, value, r.status_code, r.text)
    detail = r.json()["detail"]
    assert isinstance(detail, list) and len(detail) == 1, detail
    assert detail[0]["loc"] == ["query", name], detail


def test_bad_page_and_page_size_two_entries(shared_client):
    r = shared_client.get(RUNS, params={"page": "0", "page_size": "0"})
    assert r.status_code == 422
    locs = sorted(tuple(e["loc"]) for e in r.json()["detail"])
    assert locs == [("query", "page"), ("query", "page_size")]


def test_page_bounds_accepted(shared_client):
    for params in ({"page": 10_000_000}, {"page_size": 1}, {"page_size": 100},
                   {"page": 1, "page_size": 100}):
        r = shared_client.get(RUNS, params=params)
        assert r.status_code == 200, (params, r.text)
        body = r.json()
        assert body["page"] == params.get("page", 1)
        assert body["page_size"] == params.get("page_size", 20)
    far = shared_client.get(RUNS, params={"page": 10_000_000, "page_size": 100}).json()
    assert far["jobs"] == []


def test_unknown_query_params_ignored(client):
    j = submit(client, "x")["job_id"]
    body = client.get(RUNS, params={"sort": "asc", "foo": "bar"}).json()
    assert ids(body) == [j]


def test_total_counts_all_not_page(client):
    for i in range(5):
        submit(client, f"p{i}")
    body = client.get(RUNS, params={"page_size": 2}).json()
    assert body["total"] == 5 and len(body["jobs"]) == 2
    stats = client.get("/stats").json()
    assert stats["total_jobs"] == 5
