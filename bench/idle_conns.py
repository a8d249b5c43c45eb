"""RSS cost of idle keep-alive connections (bench/run.sh).

    python3 bench/idle_conns.py URL PATH PID N   -> one JSON line on stdout

Reads the server's VmRSS, opens N connections that each send one keep-alive GET of PATH
and read its answer, waits a moment, reads VmRSS again (all N still open), then closes them.
"""
import json
import resource
import selectors
import socket
import sys
import time
from urllib.parse import urlsplit

url, path, pid, n = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
u = urlsplit(url)
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
want = n + 100
if soft < want:
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(want, soft), max(want, hard)))


def rss_kib():
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


req = f"GET {path} HTTP/1.1\r\nHost: {u.hostname}:{u.port}\r\n\r\n".encode()
before = rss_kib()
socks, answered = [], 0
sel = selectors.DefaultSelector()
t0 = time.monotonic()
for i in range(n):
    s = socket.create_connection((u.hostname, u.port))
    s.sendall(req)
    s.setblocking(False)
    socks.append(s)
    sel.register(s, selectors.EVENT_READ)
    # keep the accept backlog short: read answers as they come
    if i % 200 == 199 or i == n - 1:
        deadline = time.monotonic() + 30
        while answered < i + 1 and time.monotonic() < deadline:
            for key, _ in sel.select(timeout=1):
                data = key.fileobj.recv(65536)
                if b"\r\n\r\n" in data or not data:
                    sel.unregister(key.fileobj)
                    answered += 1 if data else 0
                    if not data:
                        raise SystemExit(f"connection closed by the server after {answered}")
open_s = time.monotonic() - t0
time.sleep(2)
after = rss_kib()
for s in socks:
    s.close()
print(json.dumps({
    "connections": n, "answered": answered, "open_seconds": round(open_s, 2),
    "rss_before_kib": before, "rss_with_conns_kib": after,
    "bytes_per_conn": round((after - before) * 1024 / n, 1),
}))
