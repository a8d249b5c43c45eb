"""Assemble bench/run.sh's measurements: markdown table on stdout, results JSON and a
gnuplot PNG chart in the results directory.

    python3 bench/report.py RAW_DIR RESULTS_DIR
"""
import json
import os
import shutil
import subprocess
import sys

raw, out = sys.argv[1], sys.argv[2]
here = os.path.dirname(os.path.abspath(__file__))
r = {}
for f in sorted(os.listdir(raw)):
    if f.endswith(".json"):
        with open(os.path.join(raw, f)) as fh:
            r[f[:-5]] = json.load(fh)
meta = r["meta"]
meta.update(r.pop("end", {}))

g, ng, fa = r["runq_get"], r["nginx_get"], r["fastapi_get"]
sub, e2e, dis = r["submit"], r["e2e"], r["dispatch"]
big, cg, idle = r["big_get"], r["callgrind"], r["idle_conns"]
rows_n = meta["rows"]
derived = {
    "runq_over_nginx": g["rps"] / ng["rps"],
    "runq_over_fastapi": g["rps"] / fa["rps"],
    "big_over_empty": big["rps"] / r.get("small_get", g)["rps"],
    "big_mid_over_empty": r["big_get_mid"]["rps"] / r.get("small_get", g)["rps"],
    "big_rss_mib": r["big_rss_after"]["rss_kib"] / 1024,
    "startup_big_ms": r["startup_big"]["median_ms"],
    "idle_bytes_per_conn": idle["bytes_per_conn"],
}
r["derived"] = derived


def yes(ok):
    return "yes" if ok else "**no**"


def f0(x):
    return f"{x:,.0f}"


def rounds(d):
    rr = d.get("rounds_rps")
    return f" (rounds: {' / '.join(f0(x) for x in rr)})" if rr and len(rr) > 1 else ""


rowsp = f"10^{len(str(rows_n)) - 1}" if str(rows_n).strip("0") == "1" else f"{rows_n:,}"
T = []
T.append(("Status GET, runq (`--io-threads 1 --access-log off`)", f"{f0(g['rps'])} req/s, p50 {g['p50_ms']:.2f} ms, p99 {g['p99_ms']:.2f} ms{rounds(g)}", "", ""))
gl = r.get("runq_get_log")
if gl:
    T.append(("Status GET, runq with its access log on (the default)", f"{f0(gl['rps'])} req/s, p50 {gl['p50_ms']:.2f} ms, p99 {gl['p99_ms']:.2f} ms{rounds(gl)} = {gl['rps'] / ng['rps']:.2f}x nginx", "", ""))
T.append(("Status GET, nginx-light at its best (1 worker, `return 200` from memory, no access log): the baseline", f"{f0(ng['rps'])} req/s, p50 {ng['p50_ms']:.2f} ms, p99 {ng['p99_ms']:.2f} ms{rounds(ng)}", "", ""))
nf = r.get("nginx_file_get")
if nf:
    T.append(("Status GET, nginx-light, the same body as a file (open_file_cache, sendfile off)", f"{f0(nf['rps'])} req/s, p50 {nf['p50_ms']:.2f} ms, p99 {nf['p99_ms']:.2f} ms{rounds(nf)} = {g['rps'] / nf['rps']:.2f}x runq over it", "", ""))
T.append(("Status GET, FastAPI/uvicorn (1 worker)", f"{f0(fa['rps'])} req/s, p50 {fa['p50_ms']:.2f} ms, p99 {fa['p99_ms']:.2f} ms{rounds(fa)}", "", ""))
T.append(("runq / nginx at its best", f"{derived['runq_over_nginx']:.2f}x", "≥ 1.0x", yes(derived["runq_over_nginx"] >= 1.0)))
if gl:
    T.append(("runq with its access log / nginx at its best", f"{gl['rps'] / ng['rps']:.2f}x", "≥ 0.9x", yes(gl["rps"] / ng["rps"] >= 0.9)))
T.append(("runq / FastAPI", f"{derived['runq_over_fastapi']:.1f}x", "≥ 10x", yes(derived["runq_over_fastapi"] >= 10)))
T.append(("Submit, 50 conns (default io threads, all on CPU 0)", f"{f0(sub['rps'])} jobs/s acked, p50 {sub['p50_ms']:.2f} ms, p99 {sub['p99_ms']:.2f} ms", "≥ 15,000/s, p99 < 10 ms", yes(sub["rps"] >= 15000 and sub["p99_ms"] < 10)))
hold = r.get("submit_hold")
if hold:
    T.append(("Submit alone (diagnostic: jobs held by a sleep, workers idle)", f"{f0(hold['rps'])} jobs/s acked, p50 {hold['p50_ms']:.2f} ms, p99 {hold['p99_ms']:.2f} ms", "", ""))
T.append(("Submit: every 202 durable", f"{e2e['acked']:,} acked, {e2e['rows_in_db_after_stop'] - e2e['rows_before']:,} new rows in the db after stop; {sub['err_status']} non-2xx", "all", yes(e2e["durable_ok"])))
T.append(("End-to-end (echo agent), submit to drained", f"{f0(e2e['e2e_jobs_per_s'])} jobs/s ({e2e['succeeded']:,} in {e2e['drain_s']:.1f} s)", "≥ 10,000/s", yes(e2e["e2e_jobs_per_s"] >= 10000)))
T.append(("Dispatch latency (started_at − created_at), idle", f"median {dis['median_us'] / 1000:.3f} ms, p99 {dis['p99_us'] / 1000:.3f} ms (n={dis['n']})", "median < 1 ms", yes(dis["median_us"] < 1000)))
T.append((f"Status GET with {rowsp} jobs (same job / a middle one)", f"{f0(big['rps'])} / {f0(r['big_get_mid']['rps'])} req/s = {derived['big_over_empty']:.2f}x / {derived['big_mid_over_empty']:.2f}x of empty ({f0(r.get('small_get', g)['rps'])}), p99 {big['p99_ms']:.2f} ms", "within 10% (≥ 0.9x)", yes(min(derived["big_over_empty"], derived["big_mid_over_empty"]) >= 0.9)))
T.append((f"Start-up with {rowsp} jobs, default flags, after a clean stop (exec → listening)", f"{derived['startup_big_ms']:.0f} ms (empty db: {r['startup_small']['median_ms']:.0f} ms); db {r['big_db']['db_bytes'] / 2**20:.0f} MiB", "< 1 s", yes(derived["startup_big_ms"] < 1000)))
full = r.get("startup_big_full")
if full:
    T.append((f"Start-up with {rowsp} jobs, `--check-db full`", f"{full['median_ms']:.0f} ms", "", ""))
T.append((f"RSS with {rowsp} jobs, after the GET load", f"{derived['big_rss_mib']:.1f} MiB", "< 100 MB", yes(derived["big_rss_mib"] * 2**20 < 100e6)))
T.append((f"{idle['connections']:,} idle keep-alive connections", f"{idle['bytes_per_conn']:,.0f} bytes RSS each ({idle['rss_before_kib'] / 1024:.1f} → {idle['rss_with_conns_kib'] / 1024:.1f} MiB)", "< 10 KB each", yes(idle["bytes_per_conn"] < 10000)))
T.append(("Instructions per status GET (callgrind)", f"{cg['ir_per_get']:,} Ir" + (f"; {cg['ir_per_get_log']:,} with the access log" if "ir_per_get_log" in cg else "") + f" ({cg['k']} GETs, keep-alive)", "(regression number)", ""))

lines = [
    f"runq benchmark, {meta['started_utc']} – {meta['finished_utc']}, {meta['cpu_model']}, "
    f"{meta['cpus']} CPUs, {meta['mem_total_mib']} MiB, Linux {meta['kernel']}, commit {meta['git_commit']}",
    f"load average at start {meta['loadavg_start']}, at end {meta['loadavg_end']}; "
    f"wrk -t1 -c50 -d{meta['duration_s']}s keep-alive, GETs: median of {meta.get('rounds', 1)} interleaved rounds; servers on CPU {meta['server_cpu']}, "
    f"wrk/clients on CPU {meta['client_cpu']} (taskset)" + (" — QUICK smoke run" if meta["quick"] else ""),
    "",
    "| measure | result | target | met |",
    "|---|---|---|---|",
]
lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in T]
table = "\n".join(lines)
print(table)

stamp = meta["started_utc"].replace("-", "").replace(":", "")
os.makedirs(out, exist_ok=True)
r["table_markdown"] = table
jpath = os.path.join(out, f"{stamp}.json")
with open(jpath, "w") as fh:
    json.dump(r, fh, indent=2, sort_keys=True)
shutil.copyfile(jpath, os.path.join(out, "latest.json"))

dat = os.path.join(raw, "chart.dat")
with open(dat, "w") as fh:
    for label, v in [
        ("runq GET", g["rps"]),
    ] + ([("runq GET, access log", gl["rps"])] if gl else []) + [
        ("nginx GET", ng["rps"]), ("FastAPI GET", fa["rps"]),
        (f"runq GET {rowsp} jobs", big["rps"]), ("runq submit", sub["rps"]),
        ("runq end-to-end", e2e["e2e_jobs_per_s"]),
    ] + ([("runq submit alone", hold["rps"])] if hold else []) + [
    ]:
        fh.write(f'"{label}" {v:.1f}\n')
png = os.path.join(out, f"{stamp}.png")
title = f"runq {meta['started_utc']} (load {meta['loadavg_start']}){' QUICK' if meta['quick'] else ''}"
subprocess.run(["gnuplot", "-e", f"datafile='{dat}'; outfile='{png}'; charttitle='{title}'",
                os.path.join(here, "plot.gnuplot")], check=True)
shutil.copyfile(png, os.path.join(out, "latest.png"))
print(f"\nresults: {jpath}, chart: {png} (and latest.json, latest.png)", file=sys.stderr)
