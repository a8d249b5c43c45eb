#!/usr/bin/python3
"""Prints a JSON object: "env" (every RUNQ_* variable), "inherited" ($RUNQ_TEST_INHERITED),
"stdin" (what came on stdin), "pid", "pgid", "sid", "fds" (open descriptors), "sigblk"
and "sigign" (hex masks from /proc/self/status)."""
import json
import os
import sys

status = {}
with open("/proc/self/status") as f:
    for line in f:
        k, _, v = line.partition(":")
        status[k] = v.strip()
fds = sorted(int(x) for x in os.listdir("/proc/self/fd"))
print(json.dumps({
    "env": {k: v for k, v in os.environ.items() if k.startswith("RUNQ_")},
    "inherited": os.environ.get("RUNQ_TEST_INHERITED"),
    "stdin": sys.stdin.read(),
    "pid": os.getpid(),
    "pgid": os.getpgid(0),
    "sid": os.getsid(0),
    "fds": fds,
    "sigblk": status.get("SigBlk"),
    "sigign": status.get("SigIgn"),
}))
