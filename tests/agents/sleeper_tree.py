#!/usr/bin/python3
"""Starts a grandchild `sleep 1000` (same process group, same stdout/stderr), writes
"<own pid> <grandchild pid>" to a pid file, then sleeps for a long time.

The pid file is RUNQ_CONFIG's "pid_file", else $RUNQ_TEST_PID_FILE, else the first
argument that is not an option.
  --exit          print "leaving" and exit 0 at once, leaving the grandchild behind
  --ignore-term   ignore SIGTERM (the grandchild inherits that), so only SIGKILL works
"""
import json
import os
import signal
import subprocess
import sys
import time


def pid_file():
    try:
        cfg = json.loads(os.environ.get("RUNQ_CONFIG") or "{}")
    except ValueError:
        cfg = {}
    if isinstance(cfg, dict) and cfg.get("pid_file"):
        return cfg["pid_file"]
    if os.environ.get("RUNQ_TEST_PID_FILE"):
        return os.environ["RUNQ_TEST_PID_FILE"]
    rest = [a for a in sys.argv[1:] if not a.startswith("--")]
    return rest[0] if rest else None


def main():
    opts = set(a for a in sys.argv[1:] if a.startswith("--"))
    if "--ignore-term" in opts:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    child = subprocess.Popen(["sleep", "1000"])
    path = pid_file()
    if path:
        with open(path + ".tmp", "w") as f:
            f.write(f"{os.getpid()} {child.pid}\n")
        os.rename(path + ".tmp", path)
    print("started", file=sys.stderr, flush=True)
    if "--exit" in opts:
        print("leaving", flush=True)
        os._exit(0)
    time.sleep(1000)


main()
