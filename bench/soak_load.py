#!/usr/bin/env python3
"""Steady mixed load against a running runq, with its RSS sampled over time.

    soak_load.py --url http://127.0.0.1:PORT --pid PID --minutes 10 [--interval 5]

Threads: submitters (echo jobs, a few with small sleeps and progress steps), status
pollers, result fetchers and SSE readers, each paced so the load is steady rather than
flat out. Every --interval seconds a sampler reads VmRSS from /proc/PID/status and the
server's /stats. At the end it prints a table (time, RSS, jobs done, jobs in the db,
requests) and a verdict: the average RSS of the last quarter against the first quarter.
Jobs done = jobs acknowledged minus jobs still queued or running (retention deletes
finished jobs, so the server's own counts stay small)."""
import argparse
import collections
import random
import sys
import threading
import time

import httpx

RUNS = "/api/v1/runs"


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


class Shared:
    def __init__(self):
        self.lock = threading.Lock()
        self.recent = collections.deque(maxlen=2000)  # recently acknowledged job ids
        self.acked = 0
        self.requests = 0
        self.errors = collections.Counter()
        self.stop = threading.Event()

    def count(self, what=None):
        with self.lock:
            self.requests += 1
            if what:
                self.errors[what] += 1

    def pick(self, rng):
        with self.lock:
            return rng.choice(self.recent) if self.recent else None


def submitter(url, sh, n, pace):
    rng = random.Random(n)
    with httpx.Client(base_url=url, timeout=30) as c:
        i = 0
        while not sh.stop.is_set():
            i += 1
            config = {}
            roll = rng.random()
            if roll < 0.2:
                config = {"sleep_seconds": round(rng.uniform(0.01, 0.3), 3),
                          "steps": rng.randint(1, 4)}
            body = {"prompt": f"soak {n}-{i} " + "x" * rng.randint(0, 2000),
                    "config": config, "priority": rng.choice((0, 0, 1, -1)),
                    "metadata": {"n": str(n)}}
            headers = {"Idempotency-Key": f"soak-{n}-{i}"} if roll > 0.8 else None
            try:
                r = c.post(RUNS, json=body, headers=headers)
            except httpx.HTTPError as e:
                sh.count(type(e).__name__)
                continue
            if r.status_code == 202:
                with sh.lock:
                    sh.acked += 1
                    sh.recent.append(r.json()["job_id"])
                sh.count()
            else:
                sh.count(f"submit {r.status_code}")
            time.sleep(pace)


def poller(url, sh, n, pace):
    rng = random.Random(100 + n)
    with httpx.Client(base_url=url, timeout=30) as c:
        while not sh.stop.is_set():
            j = sh.pick(rng)
            if j:
                try:
                    path = f"{RUNS}/{j}" if rng.random() < 0.7 else f"{RUNS}/{j}/result"
                    r = c.get(path)
                    # 404: deleted by retention; 400: not finished (result)
                    sh.count(None if r.status_code in (200, 400, 404)
                             else f"get {r.status_code}")
                    if rng.random() < 0.05:
                        r = c.get(RUNS, params={"page_size": 20})
                        sh.count(None if r.status_code == 200 else f"list {r.status_code}")
                except httpx.HTTPError as e:
                    sh.count(type(e).__name__)
            time.sleep(pace)


def streamer(url, sh, n):
    """Submits a job with steps, reads its SSE stream to the end; again and again."""
    rng = random.Random(200 + n)
    with httpx.Client(base_url=url, timeout=30) as c:
        while not sh.stop.is_set():
            try:
                r = c.post(RUNS, json={"prompt": "streamed",
                                       "config": {"sleep_seconds": rng.uniform(0.2, 1.0),
                                                  "steps": 4}})
                if r.status_code != 202:
                    sh.count(f"submit {r.status_code}")
                    time.sleep(0.5)
                    continue
                with sh.lock:
                    sh.acked += 1
                sh.count()
                j = r.json()["job_id"]
                ended = False
                with c.stream("GET", f"{RUNS}/{j}/stream") as s:
                    for line in s.iter_lines():
                        line = line.rstrip("\r\n")
                        if line.startswith("event: ") and line[7:] in (
                                "result", "error", "cancelled"):
                            ended = True
                sh.count(None if ended else "stream without end")
            except httpx.HTTPError as e:
                sh.count(type(e).__name__)
            time.sleep(0.2)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--minutes", type=float, default=10)
    ap.add_argument("--interval", type=float, default=5)
    ap.add_argument("--submitters", type=int, default=4)
    ap.add_argument("--pollers", type=int, default=4)
    ap.add_argument("--streamers", type=int, default=2)
    ap.add_argument("--pace", type=float, default=0.01, help="seconds between requests")
    a = ap.parse_args()

    sh = Shared()
    threads = ([threading.Thread(target=submitter, args=(a.url, sh, n, a.pace))
                for n in range(a.submitters)]
               + [threading.Thread(target=poller, args=(a.url, sh, n, a.pace))
                  for n in range(a.pollers)]
               + [threading.Thread(target=streamer, args=(a.url, sh, n))
                  for n in range(a.streamers)])
    for t in threads:
        t.daemon = True
        t.start()

    samples = []
    t0 = time.monotonic()
    end = t0 + a.minutes * 60
    with httpx.Client(base_url=a.url, timeout=30) as c:
        while True:
            now = time.monotonic()
            st = c.get("/stats").json()
            by = st["by_status"]
            with sh.lock:
                acked, reqs = sh.acked, sh.requests
            done = acked - by.get("queued", 0) - by.get("running", 0)
            samples.append((now - t0, rss_kib(a.pid), done, st["total_jobs"], reqs))
            print(f"{samples[-1][0]:7.0f} s  rss {samples[-1][1] / 1024:8.1f} MiB  "
                  f"done {done:8d}  in db {st['total_jobs']:6d}  requests {reqs:8d}",
                  file=sys.stderr, flush=True)
            if now >= end:
                break
            time.sleep(min(a.interval, max(0.0, end - now)))
    sh.stop.set()
    for t in threads:
        t.join(35)

    elapsed_total = samples[-1][0]
    print()
    print(f"{'time s':>8} {'RSS MiB':>9} {'jobs done':>10} {'jobs in db':>11} {'requests':>10}")
    for t, rss, done, indb, reqs in samples:
        print(f"{t:8.0f} {rss / 1024:9.1f} {done:10d} {indb:11d} {reqs:10d}")
    # The verdict leaves out the warm-up (allocator arenas, caches, the database
    # reaching its retention size): the first 10% of the run, at least one minute
    # when the run is long enough.
    warm = max(0.1 * elapsed_total, min(60.0, 0.25 * elapsed_total))
    steady = [s for s in samples if s[0] >= warm] or samples
    q = max(1, len(steady) // 4)
    first = sum(s[1] for s in steady[:q]) / q
    last = sum(s[1] for s in steady[-q:]) / q
    growth = (last - first) / first * 100
    elapsed = samples[-1][0]
    print()
    print(f"jobs done: {samples[-1][2]} in {elapsed:.0f} s "
          f"({samples[-1][2] / max(elapsed, 1):.0f}/s); requests: {samples[-1][4]}; "
          f"errors: {dict(sh.errors) or 'none'}")
    print(f"after a warm-up of {warm:.0f} s: RSS first quarter avg {first / 1024:.1f} MiB, "
          f"last quarter avg "
          f"{last / 1024:.1f} MiB, growth {growth:+.1f}%; peak "
          f"{max(s[1] for s in samples) / 1024:.1f} MiB")
    verdict = "FLAT" if growth < 10 else "GROWING"
    print(f"verdict: {verdict} (growth under 10% between the first and last quarter is "
          f"flat)")
    return 0 if verdict == "FLAT" and not sh.errors else 1


if __name__ == "__main__":
    sys.exit(main())
