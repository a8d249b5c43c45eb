"""GET /metrics: Prometheus text that moves as jobs run and requests are answered."""
import httpx
import pytest

from conftest import submit, wait_status, wait_until
from promtext import Metrics

RUNS = "/api/v1/runs"
KEY = "runq-metrics-key-5c1e0b7a93d24f68"
ROUTES = {"/health", "/stats", "/metrics", "/openapi.json", "/api/v1/runs",
          "/api/v1/runs/{job_id}", "/api/v1/runs/{job_id}/result",
          "/api/v1/runs/{job_id}/cancel", "/api/v1/runs/{job_id}/stream", "other"}


def scrape(client):
    r = client.get("/metrics")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    m = Metrics(r.text)
    m.check_histograms()
    return m


def test_metrics_move_as_jobs_run(server, client):
    before = scrape(client)
    ids = [submit(client, f"job {i}")["job_id"] for i in range(3)]
    for job_id in ids:
        wait_status(client, job_id, "succeeded")
    failed = submit(client, "x", config={"fail_with": "boom"})["job_id"]
    wait_status(client, failed, "failed")
    client.get(f"{RUNS}/run_00000000000000000000")  # a 404
    client.get(f"{RUNS}/{ids[0]}/result")
    after = scrape(client)

    def delta(name, **labels):
        return after.get(name, **labels) - before.get(name, **labels)

    assert delta("runq_jobs_submitted_total") == 4
    assert delta("runq_jobs_finished_total", status="succeeded") == 3
    assert delta("runq_jobs_finished_total", status="failed") == 1
    assert delta("runq_jobs_finished_total", status="cancelled") == 0
    assert delta("runq_job_attempts_total") == 4
    assert delta("runq_job_duration_seconds_count", status="succeeded") == 3
    assert delta("runq_job_duration_seconds_count", status="failed") == 1
    assert delta("runq_job_queue_wait_seconds_count") == 4
    assert delta("runq_store_operation_duration_seconds_count", op="insert_batch") >= 1
    assert delta("runq_store_operation_duration_seconds_count", op="claim") == 4
    assert delta("runq_store_operation_duration_seconds_count", op="finish") == 4
    assert delta("runq_store_commit_batch_jobs_sum") == 4
    assert after.get("runq_jobs_queued") == 0
    assert after.get("runq_jobs_running") == 0
    assert after.get("runq_store_writable") == 1

    # Requests by method, route template and code; never a raw path.
    assert delta("runq_http_requests_total", method="POST", route="/api/v1/runs", code="202") == 4
    assert delta("runq_http_requests_total", method="GET", route="/api/v1/runs/{job_id}",
                 code="404") == 1
    assert delta("runq_http_requests_total", method="GET",
                 route="/api/v1/runs/{job_id}/result", code="200") == 1
    assert delta("runq_http_requests_total", method="GET", route="/api/v1/runs/{job_id}",
                 code="200") >= 4
    # The first scrape was answered (and counted) before the second was taken.
    assert after.get("runq_http_requests_total", method="GET", route="/metrics",
                     code="200") >= 1
    assert delta("runq_http_request_duration_seconds_count", route="/api/v1/runs") == 4
    for labels, _ in after.series("runq_http_requests_total"):
        assert labels["route"] in ROUTES, labels
        assert "run_" not in labels["route"]

    # This client's keep-alive connection is open; nothing else is.
    assert 1 <= after.get("runq_http_open_connections") <= 3


def test_every_family_is_typed_and_documented(client):
    m = scrape(client)
    for name in ("runq_jobs_submitted_total", "runq_jobs_finished_total", "runq_jobs_queued",
                 "runq_jobs_running", "runq_job_attempts_total", "runq_job_retries_total",
                 "runq_job_duration_seconds", "runq_job_queue_wait_seconds",
                 "runq_http_requests_total", "runq_http_request_duration_seconds",
                 "runq_http_open_connections", "runq_store_operation_duration_seconds"):
        assert name in m.types, name
        assert m.helps.get(name), name
    for key in m.samples:
        assert m.family_of(key[0]) in m.types, key


def test_gauges_follow_running_and_queued_jobs(make_server):
    s = make_server("--max-concurrent", "1")
    with s.client() as c:
        first = submit(c, "a", config={"sleep_seconds": 30})["job_id"]
        wait_status(c, first, "running")
        second = submit(c, "b", config={"sleep_seconds": 30})["job_id"]
        m = scrape(c)
        assert m.get("runq_jobs_running") == 1
        assert m.get("runq_jobs_queued") == 1
        assert m.get("runq_workers") == 1
        c.post(f"{RUNS}/{second}/cancel")
        c.post(f"{RUNS}/{first}/cancel")
        m = wait_until(lambda: (lambda m: m if m.get("runq_jobs_running") == 0 else None)(scrape(c)),
                       what="the cancelled job's worker to stop")
        assert m.get("runq_jobs_queued") == 0
        assert m.get("runq_jobs_finished_total", status="cancelled") == 2
        # Only the job that ran has a running time.
        assert m.get("runq_job_duration_seconds_count", status="cancelled") == 1


def test_retries_and_attempts_counted(make_server):
    s = make_server("--retry-delay", "0.01")
    with s.client() as c:
        job = submit(c, "x", config={"fail_with": "flaky"}, max_retries=2)["job_id"]
        wait_status(c, job, "failed")
        m = scrape(c)
        assert m.get("runq_job_attempts_total") == 3
        assert m.get("runq_job_retries_total") == 2
        assert m.get("runq_jobs_finished_total", status="failed") == 1
        assert m.get("runq_job_queue_wait_seconds_count") == 1  # first start only


def test_http_layer_rejections_counted(server, client):
    r = client.post(RUNS, content=b"x" * (2 << 20), headers={"Content-Type": "application/json"})
    assert r.status_code == 413
    m = scrape(client)
    assert m.get("runq_http_rejected_total", code="413") == 1


def test_metrics_and_openapi_need_the_key(make_server):
    s = make_server("--api-key", KEY)
    with s.client() as anon:
        for path in ("/metrics", "/openapi.json"):
            r = anon.get(path)
            assert r.status_code == 401, path
            assert r.json() == {"detail": "Unauthorized"}
        assert anon.get("/health").status_code == 200
        assert anon.get("/metrics", headers={"X-API-Key": "wrong"}).status_code == 401
    with s.client(headers={"Authorization": f"Bearer {KEY}"}) as c:
        m = scrape(c)
        assert m.get("runq_http_requests_total", method="GET", route="/metrics",
                     code="401") == 2  # no key, a wrong key
        assert c.get("/openapi.json").status_code == 200
    assert not any(KEY in line for line in s.log)
