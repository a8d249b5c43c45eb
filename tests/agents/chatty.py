#!/usr/bin/python3
"""Writes 1 MiB to stdout and ~200 KiB of log lines to stderr BEFORE reading stdin, then
reads all of stdin and prints "\nread <n> bytes". A runner that writes the whole prompt
before reading the child's output deadlocks on it."""
import sys

sys.stdout.buffer.write(b"y" * (1 << 20))
sys.stdout.buffer.flush()
for i in range(2000):
    sys.stderr.write(f"log line {i} " + "z" * 90 + "\n")
sys.stderr.flush()
data = sys.stdin.buffer.read()
sys.stdout.write(f"\nread {len(data)} bytes")
