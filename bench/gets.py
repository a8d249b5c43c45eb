"""K keep-alive GETs of one URL, one at a time (bench/run.sh, callgrind cost test).

    python3 bench/gets.py URL K
"""
import http.client
import sys
from urllib.parse import urlsplit

u = urlsplit(sys.argv[1])
k = int(sys.argv[2])
conn = http.client.HTTPConnection(u.hostname, u.port, timeout=120)
conn.connect()
for _ in range(k):
    conn.request("GET", u.path)
    r = conn.getresponse()
    r.read()
    assert r.status == 200, r.status
conn.close()
