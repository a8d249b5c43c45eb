"""Start-up time of runq (bench/run.sh): exec to the "listening on http://" line on
stderr, then SIGTERM and wait. Runs it R times and prints one JSON line (median, all).

    python3 bench/startup.py R -- runq serve --port 0 --db FILE ...
"""
import json
import signal
import statistics
import subprocess
import sys
import time

r = int(sys.argv[1])
cmd = sys.argv[sys.argv.index("--") + 1:]
times = []
for _ in range(r):
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    for line in p.stderr:
        if "listening on http://" in line:
            times.append((time.perf_counter() - t0) * 1e3)
            break
    else:
        raise SystemExit(f"runq exited before listening: {p.wait()}")
    p.send_signal(signal.SIGTERM)
    p.stderr.close()
    p.wait(timeout=60)
print(json.dumps({"median_ms": round(statistics.median(times), 1),
                  "all_ms": [round(t, 1) for t in times]}))
