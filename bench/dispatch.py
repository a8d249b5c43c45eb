"""Dispatch latency on an idle server (bench/run.sh): submit N jobs one at a time, wait
for each with GET ?wait=, and report started_at - created_at from the status object.

    python3 bench/dispatch.py URL N   -> one JSON line on stdout
"""
import http.client
import json
import statistics
import sys
import time
from datetime import datetime
from urllib.parse import urlsplit

url, n = sys.argv[1], int(sys.argv[2])
u = urlsplit(url)
conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)


def ts(s):
    return datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ")


def call(method, path, body=None):
    headers = {"Content-Type": "application/json"} if body is not None else {}
    conn.request(method, path, body=body, headers=headers)
    r = conn.getresponse()
    data = r.read()
    return r.status, json.loads(data)


lat_us, e2e_ms = [], []
for i in range(n):
    t0 = time.perf_counter()
    st, sub = call("POST", "/api/v1/runs", json.dumps({"prompt": f"dispatch {i}"}))
    assert st == 202, (st, sub)
    st, job = call("GET", f"/api/v1/runs/{sub['job_id']}?wait=10")
    t1 = time.perf_counter()
    assert st == 200 and job["status"] == "succeeded", (st, job)
    d = ts(job["started_at"]) - ts(job["created_at"])
    lat_us.append(d.total_seconds() * 1e6)
    e2e_ms.append((t1 - t0) * 1e3)
    time.sleep(0.005)  # idle between jobs: nothing queued when the next one arrives

lat_us.sort()
e2e_ms.sort()
p99 = lambda v: v[min(len(v) - 1, int(round(0.99 * (len(v) - 1))))]
print(json.dumps({
    "n": n,
    "median_us": statistics.median(lat_us), "p99_us": p99(lat_us), "max_us": lat_us[-1],
    "client_submit_to_done_median_ms": statistics.median(e2e_ms),
    "client_submit_to_done_p99_ms": p99(e2e_ms),
}))
