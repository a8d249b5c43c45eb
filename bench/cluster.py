"""Helpers of bench/cluster.sh (issue 10: several runq nodes on one PostgreSQL database).

    python3 bench/cluster.py scaleout URL[,URL...] JOBS SLEEP_S DB_URI   # test 1, JSON out
    python3 bench/cluster.py pgcount DB_URI          # rows in jobs, last completed_at (s)
    python3 bench/cluster.py pgsnap DB_URI                                # commits, WAL
    python3 bench/cluster.py run OUT.json GROUPS PGURI|- URL|- STDOUT -- CMD...  # CPU etc.
    python3 bench/cluster.py fsync FILE                                   # pg_test_fsync
    python3 bench/cluster.py e2e BEFORE AFTER_WRK AFTER T0 T1 T2 ROWS WRK.json [RUN.json]
    python3 bench/cluster.py report RAW_DIR RESULTS_DIR                   # table + JSON

Only Debian's python3 and its python3-psycopg2 are used.
"""
import http.client
import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.parse

import resource
import urllib.request

import psycopg2


def pg(uri):
    c = psycopg2.connect(uri)
    c.autocommit = True
    return c


def q1(uri, sql):
    with pg(uri) as c, c.cursor() as cur:
        cur.execute(sql)
        return cur.fetchall()


# ---- test 1: jobs completed per second with N nodes ----------------------------------------
def scaleout(urls, jobs, sleep_s, db_uri):
    urls = urls.split(",")
    body = json.dumps({"prompt": "bench", "config": {"sleep_seconds": sleep_s}})
    share = [list(range(i, jobs, len(urls))) for i in range(len(urls))]
    errors, ids = [], []
    lock = threading.Lock()
    start = threading.Barrier(len(urls) + 1)

    def submit(url, mine):
        u = urllib.parse.urlsplit(url)
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
        start.wait()
        for _ in mine:
            conn.request("POST", "/api/v1/runs", body, {"Content-Type": "application/json"})
            r = conn.getresponse()
            data = r.read()
            with lock:
                if r.status == 202:
                    ids.append(json.loads(data)["job_id"])
                else:
                    errors.append(f"{url}: {r.status} {data[:200]!r}")
        conn.close()

    threads = [threading.Thread(target=submit, args=(u, m)) for u, m in zip(urls, share)]
    for t in threads:
        t.start()
    t0 = time.time()
    start.wait()
    for t in threads:
        t.join()
    t_sub = time.time()
    u = urllib.parse.urlsplit(urls[0])
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    deadline = t0 + max(120, 10 * jobs * sleep_s)
    st = {}
    while time.time() < deadline:
        conn.request("GET", "/stats")
        st = json.loads(conn.getresponse().read())
        bs = st["by_status"]
        if bs.get("succeeded", 0) + bs.get("failed", 0) + bs.get("cancelled", 0) >= len(ids):
            break
        time.sleep(0.02)
    t_poll = time.time()
    # Exactly once, from the database: every job succeeded, each started once (attempts),
    # on which node; first submit to the last completed_at (runq's clock, the same host).
    rows = q1(db_uri, """
        SELECT count(*), count(*) FILTER (WHERE status = 'succeeded'),
               count(*) FILTER (WHERE attempts = 1), coalesce(max(attempts), 0),
               min(created_at), max(completed_at), count(DISTINCT id)
        FROM jobs""")[0]
    per_node = dict(q1(db_uri, "SELECT node, count(*) FROM jobs GROUP BY node ORDER BY node"))
    n, ok, once, max_att, first_created, last_done, distinct = rows
    wall = (last_done / 1e6 - t0) if last_done else float("nan")
    return {
        "nodes": len(urls), "jobs": jobs, "sleep_s": sleep_s, "acked": len(ids),
        "submit_errors": errors[:10], "n_submit_errors": len(errors),
        "submit_s": round(t_sub - t0, 3), "poll_done_s": round(t_poll - t0, 3),
        "first_submit_to_last_completed_s": round(wall, 3),
        "jobs_per_s": round(ok / wall, 2) if wall == wall and wall > 0 else 0.0,
        "ideal_jobs_per_s": round(len(urls) * 4 / sleep_s, 1),
        "rows": n, "succeeded": ok, "attempts_1": once, "max_attempts": max_att,
        "distinct_ids": distinct, "per_node": per_node,
        "exactly_once": n == len(ids) == ok == once == distinct and len(set(ids)) == len(ids),
        "stats_at_end": st, "loadavg": loadavg(),
    }


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


# ---- test 2 helpers -------------------------------------------------------------------------
def pgcount(uri):
    n, last = q1(uri, "SELECT count(*), max(completed_at) FROM jobs")[0]
    return f"{n} {last / 1e6}"


def pgsnap(uri):
    db = urllib.parse.urlsplit(uri).path.lstrip("/")
    c, r = q1(uri, f"SELECT xact_commit, xact_rollback FROM pg_stat_database "
                   f"WHERE datname = '{db}'")[0]
    w = q1(uri, "SELECT wal_records, wal_bytes, wal_write, wal_sync FROM pg_stat_wal")[0]
    ck = q1(uri, "SELECT checkpoints_timed + checkpoints_req FROM pg_stat_bgwriter")[0][0]
    return {"t": time.time(), "xact_commit": c, "xact_rollback": r, "wal_records": w[0],
            "wal_bytes": int(w[1]), "wal_write": w[2], "wal_sync": w[3], "checkpoints": ck}


def ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        s = f.read()
    f = s[s.rindex(")") + 2:].split()
    return int(f[11]) + int(f[12])  # utime + stime


def cpusnap(pids):
    cpus = {}
    with open("/proc/stat") as f:
        for line in f:
            m = re.match(r"(cpu\d+) (.*)", line)
            if m:
                v = [int(x) for x in m.group(2).split()]
                # user nice system idle iowait irq softirq steal
                cpus[m.group(1)] = {"busy": sum(v[:8]) - v[3] - v[4], "total": sum(v[:8]),
                                    "steal": v[7]}
    procs = {}
    for p in pids:
        try:
            procs[p] = ticks(p)
        except OSError:
            pass
    return {"t": time.time(), "cpus": cpus, "procs": procs}


def metrics(url):
    """runq's store histograms from /metrics: {op: (sum_s, count)}, batch (sum, count)."""
    out = {}
    try:
        text = urllib.request.urlopen(url + "/metrics", timeout=10).read().decode()
    except OSError:
        return out
    for m in re.finditer(r'^runq_store_operation_duration_seconds_(sum|count)\{op="([a-z_]+)"\} '
                         r'([0-9.e+-]+)$', text, re.M):
        out.setdefault(m.group(2), [0.0, 0.0])[m.group(1) == "count"] = float(m.group(3))
    for m in re.finditer(r'^runq_store_commit_batch_jobs_(sum|count) ([0-9.e+-]+)$', text, re.M):
        out.setdefault("_submit_batch", [0.0, 0.0])[m.group(1) == "count"] = float(m.group(2))
    return out


def run_measured(out_json, groups_json, pg_uri, url, stdout_path, cmd):
    """Runs cmd (the measured wrk) and records around it: CPU busy per core (and steal),
    cores used by each process group, by the command itself (its rusage) and by everything
    else on the machine; PostgreSQL's commits and WAL; runq's store timings."""
    groups = {k: [int(p) for p in v] for k, v in json.loads(groups_json).items()}
    pids = [p for v in groups.values() for p in v]
    hz = os.sysconf("SC_CLK_TCK")
    m0 = metrics(url) if url != "-" else {}
    p0 = pgsnap(pg_uri) if pg_uri != "-" else None
    c0 = cpusnap(pids)
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    with open(stdout_path, "w") as f:
        subprocess.run(cmd, stdout=f, check=True)
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    c1 = cpusnap(pids)
    p1 = pgsnap(pg_uri) if pg_uri != "-" else None
    m1 = metrics(url) if url != "-" else {}
    dt = c1["t"] - c0["t"]
    out = {"t0": c0["t"], "t1": c1["t"], "cpu_busy_pct": {}, "steal_pct": {}, "cores": {}}
    busy_all = 0
    for k in c0["cpus"]:
        tot = c1["cpus"][k]["total"] - c0["cpus"][k]["total"]
        busy = c1["cpus"][k]["busy"] - c0["cpus"][k]["busy"]
        busy_all += busy
        out["cpu_busy_pct"][k] = round(100 * busy / max(tot, 1), 1)
        out["steal_pct"][k] = round(100 * (c1["cpus"][k]["steal"] - c0["cpus"][k]["steal"]) /
                                    max(tot, 1), 1)
    ours = 0.0
    for name, ps in groups.items():  # processes alive at both snapshots
        t = sum(c1["procs"][p] - c0["procs"][p] for p in ps
                if p in c0["procs"] and p in c1["procs"]) / hz / dt
        out["cores"][name] = round(t, 3)
        ours += t
    load = (r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime) / dt
    out["cores"]["load_generator"] = round(load, 3)
    out["cores"]["others_on_machine"] = round(busy_all / hz / dt - ours - load, 3)
    if p0:
        out["pg"] = {
            "commits_per_s": round((p1["xact_commit"] - p0["xact_commit"]) / dt, 1),
            "rollbacks": p1["xact_rollback"] - p0["xact_rollback"],
            "wal_syncs_per_s": round((p1["wal_sync"] - p0["wal_sync"]) / dt, 1),
            "wal_kib_per_s": round((p1["wal_bytes"] - p0["wal_bytes"]) / dt / 1024, 1),
            "wal_bytes": p1["wal_bytes"] - p0["wal_bytes"],
            "checkpoints": p1["checkpoints"] - p0["checkpoints"],
        }
    ops = {}
    for op, (s1, n1) in m1.items():
        s0, n0 = m0.get(op, (0.0, 0.0))
        if n1 > n0:
            ops[op] = {"calls_per_s": round((n1 - n0) / dt, 1),
                       "mean_ms": round(1000 * (s1 - s0) / (n1 - n0), 3)}
    if "_submit_batch" in ops:
        b = ops.pop("_submit_batch")
        s1, n1 = m1["_submit_batch"]
        s0, n0 = m0.get("_submit_batch", (0.0, 0.0))
        ops["submit_batch"] = {"batches_per_s": b["calls_per_s"],
                               "mean_jobs": round((s1 - s0) / (n1 - n0), 2)}
    out["store_ops"] = ops
    with open(out_json, "w") as f:
        json.dump(out, f)


def fsync_probe(path):
    # pg_test_fsync: one 8 kB write + fdatasync, per second, on the file system of PGDATA
    out = subprocess.run(["/usr/lib/postgresql/15/bin/pg_test_fsync", "-s", "2", "-f", path],
                         capture_output=True, text=True, timeout=120).stdout
    m = re.search(r"^\s+fdatasync\s+([\d.]+) ops/sec\s+(\d+) usecs/op", out, re.M)
    return {"fdatasync_ops_per_s": float(m.group(1)), "fdatasync_us": int(m.group(2))} \
        if m else {"raw": out[-500:]}


def e2e(argv):
    b, aw, a = (json.loads(x) for x in argv[0:3])
    t0, t1, t2 = (float(x) for x in argv[3:6])
    run = json.load(open(argv[8])) if len(argv) > 8 else None
    if run:  # the measured command's own start and end
        t0, t1 = run["t0"], run["t1"]
    rows = int(argv[6])
    w = json.load(open(argv[7]))
    s = lambda d: d["by_status"].get("succeeded", 0)
    acked = w["requests"] - w["err_status"]
    done = s(a) - s(b)
    out = {
        "acked": acked, "submitted_seen": a["total_jobs"] - b["total_jobs"],
        "rows_in_db_after_stop": rows, "rows_before": b["total_jobs"],
        "durable_ok": rows - b["total_jobs"] >= acked,
        "succeeded": done,
        "failed": a["by_status"].get("failed", 0) - b["by_status"].get("failed", 0),
        "drain_s": round(t2 - t0, 3), "e2e_jobs_per_s": round(done / (t2 - t0), 1),
        "completed_during_wrk_per_s": round((s(aw) - s(b)) / (t1 - t0), 1),
        "loadavg": loadavg(),
    }
    if run:
        out["during_wrk"] = run
        dt = run["t1"] - run["t0"]
        out["cpu_us_per_acked_job"] = {k: round(v * dt / max(acked, 1) * 1e6)
                                       for k, v in run["cores"].items()
                                       if k in ("runq", "postgres")}
        if "pg" in run:
            run["pg"]["wal_bytes_per_acked_job"] = round(run["pg"]["wal_bytes"] / max(acked, 1))
    return out


# ---- report ----------------------------------------------------------------------------------
def f0(x):
    return f"{x:,.0f}"


def yes(ok):
    return "yes" if ok else "**no**"


def report(raw, outdir):
    r = {}
    for f in sorted(os.listdir(raw)):
        if f.endswith(".json"):
            with open(os.path.join(raw, f)) as fh:
                r[f[:-5]] = json.load(fh)
    meta = r.pop("meta")
    meta.update(r.pop("end", {}))
    T = []
    sc = {k: r[k] for k in sorted(r) if k.startswith("scale_")}
    one = sc.get("scale_1", {}).get("jobs_per_s")
    for k, d in sc.items():
        n = d["nodes"]
        ratio = f" = {d['jobs_per_s'] / one:.2f}x 1 node" if one and n > 1 else ""
        spread = ", ".join(f"{v}" for v in d["per_node"].values())
        T.append((f"Scale-out, {n} node{'s' * (n > 1)} × `--max-concurrent 4`, "
                  f"{d['jobs']} jobs of {d['sleep_s']} s",
                  f"{d['jobs_per_s']:.1f} jobs/s (ideal {d['ideal_jobs_per_s']:.0f}) in "
                  f"{d['first_submit_to_last_completed_s']:.2f} s{ratio}; per node {spread}; "
                  f"load {d['loadavg']}",
                  "3 nodes ≥ 2.5x 1 node" if n == 3 else "",
                  yes(d["jobs_per_s"] >= 2.5 * one) if n == 3 and one else ""))
        T.append((f"… exactly once ({n} node{'s' * (n > 1)})",
                  f"{d['succeeded']} of {d['acked']} acked succeeded, {d['attempts_1']} with "
                  f"attempts = 1 (max {d['max_attempts']}), {d['rows']} rows, "
                  f"{d['n_submit_errors']} submit errors",
                  "all once", yes(d["exactly_once"])))
    def cpu_text(run, acked):
        dt = run["t1"] - run["t0"]
        busy = ", ".join(f"{c} {v:.0f} %" for c, v in sorted(run["cpu_busy_pct"].items()))
        cores = ", ".join(f"{g.replace('_', ' ')} {v:.2f}" for g, v in run["cores"].items())
        per = ", ".join(f"{g} {v * dt / max(acked, 1) * 1e6:,.0f} µs" for g, v in
                        run["cores"].items() if g in ("runq", "postgres"))
        return f"CPU busy {busy}; cores: {cores}; CPU per acked job: {per}"

    def pg_text(run, acked):
        pgd = run.get("pg")
        if not pgd:
            return ""
        ops = run.get("store_ops", {})
        b = ops.get("submit_batch", {})
        opt = ", ".join(f"{op} {v['mean_ms']:.2f} ms × {v['calls_per_s']:,.0f}/s"
                        for op, v in ops.items() if op != "submit_batch" and v["calls_per_s"] >= 1)
        return (f"{f0(pgd['commits_per_s'])} commits/s, {f0(pgd['wal_syncs_per_s'])} WAL "
                f"fsyncs/s, {f0(pgd['wal_kib_per_s'])} KiB/s WAL "
                f"({f0(pgd['wal_bytes'] / max(acked, 1))} B per acked job), "
                f"{pgd['checkpoints']} checkpoints; submit batches {b.get('mean_jobs', 0):.1f} "
                f"jobs; store calls (mean wait × rate): {opt}")

    keys = ["sqlite"] + sorted(x[4:] for x in r if x.startswith("sub_") and x != "sub_sqlite")
    for k in keys:
        sub, e = r.get(f"sub_{k}"), r.get(f"e2e_{k}")
        if not sub or not e:
            continue
        pg_ = k != "sqlite"
        where = r.get(f"where_{k}", {}).get("text", "")
        label = "SQLite (file)" if not pg_ else f"PostgreSQL, {where}"
        run = e.get("during_wrk", {})
        sub_acked = (sub["requests"] - sub["err_status"]) / sub["duration_s"]
        T.append((f"Submit, {label}",
                  f"{f0(sub_acked)} jobs/s acked ({sub['err_status']} non-2xx), p50 {sub['p50_ms']:.2f} ms, "
                  f"p99 {sub['p99_ms']:.2f} ms; load {e['loadavg']}",
                  "≥ 5,000/s" if pg_ else "", yes(sub_acked >= 5000) if pg_ else ""))
        if run:
            T.append((f"… CPU during that run ({k})", cpu_text(run, e["acked"]), "", ""))
            if run.get("pg"):
                T.append((f"… PostgreSQL and runq's store during that run ({k})",
                          pg_text(run, e["acked"]), "", ""))
        T.append((f"… every 202 durable ({k})",
                  f"{e['acked']:,} acked, {e['rows_in_db_after_stop'] - e['rows_before']:,} new "
                  f"rows after stop; {sub['err_status']} non-2xx", "all", yes(e["durable_ok"])))
        T.append((f"End-to-end, {label}",
                  f"{f0(e['e2e_jobs_per_s'])} jobs/s ({e['succeeded']:,} in {e['drain_s']:.1f} s; "
                  f"{f0(e['completed_during_wrk_per_s'])}/s while wrk ran)",
                  "≥ 2,000/s" if pg_ else "", yes(e["e2e_jobs_per_s"] >= 2000) if pg_ else ""))
        hold, hrun = r.get(f"hold_{k}"), r.get(f"holdrun_{k}")
        if hold:
            acked = hold["requests"] - hold["err_status"]
            extra = ""
            if hrun:
                extra = "; " + cpu_text(hrun, acked)
                if hrun.get("pg"):
                    extra += "; " + pg_text(hrun, acked)
            T.append((f"Submit alone, {k} (diagnostic: jobs held by a sleep)",
                      f"{f0(acked / hold['duration_s'])} jobs/s acked ({hold['err_status']} "
                      f"non-2xx), p50 {hold['p50_ms']:.2f} ms, "
                      f"p99 {hold['p99_ms']:.2f} ms{extra}", "", ""))
    lines = [
        f"runq cluster benchmark, {meta['started_utc']} – {meta['finished_utc']}, "
        f"{meta['cpu_model']}, {meta['cpus']} CPUs, Linux {meta['kernel']}, commit "
        f"{meta['git_commit']}, PostgreSQL {meta['pg_version']}",
        f"load average at start {meta['loadavg_start']}, at end {meta['loadavg_end']}; "
        f"fdatasync of 8 kB (pg_test_fsync) {meta.get('fsync', {}).get('fdatasync_us', '?')} µs; "
        f"PostgreSQL options: {meta['pg_opts']}"
        + (f"; runq flags of the PostgreSQL node in test 2: `{meta['pg_node_flags']}`"
           if meta.get("pg_node_flags") else ""),
        "",
        "| measure | result | target | met |",
        "|---|---|---|---|",
    ] + [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in T]
    text = "\n".join(lines)
    print(text)
    os.makedirs(outdir, exist_ok=True)
    stamp = meta["started_utc"].replace("-", "").replace(":", "")
    path = os.path.join(outdir, f"cluster-{stamp}.json")
    with open(path, "w") as f:
        json.dump({"meta": meta, "results": r, "table_md": text}, f, indent=1)
    print(f"\n(written {path})", file=sys.stderr)


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "scaleout":
        print(json.dumps(scaleout(args[0], int(args[1]), float(args[2]), args[3])))
    elif cmd == "pgcount":
        print(pgcount(args[0]))
    elif cmd == "pgsnap":
        print(json.dumps(pgsnap(args[0])))
    elif cmd == "run":
        i = args.index("--")
        run_measured(*args[:i], args[i + 1:])
    elif cmd == "fsync":
        print(json.dumps(fsync_probe(args[0])))
    elif cmd == "e2e":
        print(json.dumps(e2e(args)))
    elif cmd == "report":
        report(args[0], args[1])
    else:
        sys.exit(f"unknown command {cmd}")


if __name__ == "__main__":
    main()
