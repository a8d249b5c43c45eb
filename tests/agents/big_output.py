#!/usr/bin/python3
"""Writes $1 bytes of "x" to stdout (1 MiB if not given).
  --then-sleep   keep running afterwards (the output limit must still end it)"""
import sys
import time

args = [a for a in sys.argv[1:] if not a.startswith("--")]
n = int(args[0]) if args else 1 << 20
chunk = b"x" * 65536
out = sys.stdout.buffer
while n > 0:
    k = min(n, len(chunk))
    out.write(chunk[:k])
    n -= k
out.flush()
if "--then-sleep" in sys.argv:
    time.sleep(1000)
