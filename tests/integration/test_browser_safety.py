"""A web page in the browser of runq's user cannot drive runq (docs/security.md "Web pages
on the same machine"): the Host check against DNS rebinding (421), cross-origin writes
(403), JSON-only bodies (415), no CORS unless --cors-origin; and the dashboard's files
with their CSP and ETag (API.md "The dashboard"). Real binary, real HTTP."""
import re
from urllib.parse import urlsplit

import pytest

from conftest import submit

RUNS = "/api/v1/runs"
MISDIRECTED = {"detail": "Misdirected Request"}


def port_of(server):
    return urlsplit(server.url).port


@pytest.mark.parametrize("path", ["/health", "/", "/ui/", RUNS, "/stats", "/nowhere"])
def test_foreign_host_gets_421_on_every_path(server, client, path):
    for host in ("evil.example", f"evil.example:{port_of(server)}", "127.0.0.1.nip.example",
                 "localhost.evil.example", "192.168.1.20"):
        r = client.get(path, headers={"Host": host})
        assert r.status_code == 421, (host, r.status_code, r.text)
        assert r.json() == MISDIRECTED


def test_foreign_host_cannot_submit(server, client):
    r = client.post(RUNS, json={"prompt": "x"}, headers={"Host": "evil.example"})
    assert r.status_code == 421
    assert client.get(RUNS).json()["total"] == 0


def test_loopback_names_pass(server, client):
    port = port_of(server)
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", "localhost", f"app.localhost:{port}",
                 f"[::1]:{port}", "127.0.0.2"):
        r = client.get("/health", headers={"Host": host})
        assert r.status_code == 200, (host, r.text)


def test_allowed_host_and_public_url_host_pass(make_server):
    s = make_server("--allowed-host", "jobs.internal", "--allowed-host", "Box.LAN",
                    "--public-url", "https://runq.example.com/base")
    with s.client() as c:
        for host in ("jobs.internal", "jobs.internal:8005", "box.lan", "runq.example.com"):
            assert c.get("/health", headers={"Host": host}).status_code == 200, host
        r = c.get("/health", headers={"Host": "other.internal"})
        assert r.status_code == 421 and r.json() == MISDIRECTED


def test_allowed_hosts_from_the_environment(make_server):
    s = make_server(env={"RUNQ_ALLOWED_HOSTS": "a.internal,b.internal"})
    with s.client() as c:
        for host in ("a.internal", "b.internal"):
            assert c.get("/health", headers={"Host": host}).status_code == 200, host
        assert c.get("/health", headers={"Host": "c.internal"}).status_code == 421


def test_no_host_check_with_keys(make_server):
    # A key is then needed for any data, and a page has none.
    s = make_server("--api-key", "k-123456")
    with s.client() as c:
        assert c.get("/health", headers={"Host": "evil.example"}).status_code == 200
        assert c.get(RUNS, headers={"Host": "evil.example"}).status_code == 401
        r = c.get(RUNS, headers={"Host": "jobs.example.com", "Authorization": "Bearer k-123456"})
        assert r.status_code == 200


@pytest.mark.parametrize("headers", [
    {"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"},
    {"Sec-Fetch-Site": "same-site", "Origin": "http://localhost:3000"},
    {"Origin": "https://evil.example"},   # a browser without Sec-Fetch-Site
    {"Origin": "null"},                   # a sandboxed frame, a file:// page
])
def test_cross_origin_writes_get_403_and_change_nothing(client, headers):
    job = submit(client, "keep me", config={"sleep_seconds": 30})
    jid = job["job_id"]
    attempts = [
        client.post(RUNS, json={"prompt": "x"}, headers=headers),
        client.post(f"{RUNS}/{jid}/cancel", headers=headers),
        client.delete(f"{RUNS}/{jid}", headers=headers),
    ]
    for r in attempts:
        assert r.status_code == 403, (r.request.method, r.request.url, r.text)
        assert "Cross-origin" in r.json()["detail"]
        assert "access-control-allow-origin" not in r.headers
    jobs = client.get(RUNS).json()
    assert jobs["total"] == 1
    assert client.get(f"{RUNS}/{jid}").json()["status"] in ("queued", "running")


def test_same_origin_and_non_browser_writes_pass(server, client):
    port = port_of(server)
    same = {"Sec-Fetch-Site": "same-origin", "Origin": f"http://127.0.0.1:{port}"}
    assert client.post(RUNS, json={"prompt": "x"}, headers=same).status_code == 202
    old_browser = {"Origin": f"http://127.0.0.1:{port}"}
    assert client.post(RUNS, json={"prompt": "x"}, headers=old_browser).status_code == 202
    assert client.post(RUNS, json={"prompt": "x"}).status_code == 202


def test_cors_origin_may_write_cross_site(make_server):
    origin = "http://localhost:3000"
    s = make_server("--cors-origin", origin)
    with s.client() as c:
        r = c.post(RUNS, json={"prompt": "x"},
                   headers={"Origin": origin, "Sec-Fetch-Site": "same-site"})
        assert r.status_code == 202, r.text
        assert r.headers["access-control-allow-origin"] == origin


def test_form_posts_get_415(client):
    # What an HTML <form> can send: none of them is JSON.
    for ct, body in (("application/x-www-form-urlencoded", "prompt=x"),
                     ("multipart/form-data; boundary=b",
                      '--b\r\nContent-Disposition: form-data; name="prompt"\r\n\r\nx\r\n--b--\r\n'),
                     ("text/plain", '{"prompt": "x"}')):
        r = client.post(RUNS, content=body, headers={"Content-Type": ct})
        assert r.status_code == 415, (ct, r.text)
    assert client.get(RUNS).json()["total"] == 0


def test_no_cors_without_cors_origin(client):
    origin = "https://evil.example"
    r = client.get(RUNS, headers={"Origin": origin})
    assert r.status_code == 200
    assert not any(h.startswith("access-control-") for h in r.headers)
    pre = client.options(RUNS, headers={"Origin": origin,
                                        "Access-Control-Request-Method": "POST",
                                        "Access-Control-Request-Headers": "content-type"})
    assert pre.status_code == 405
    assert not any(h.startswith("access-control-") for h in pre.headers)


# ----------------------------------------------------------------------- the dashboard


def test_root_redirects_to_the_dashboard(client):
    for path in ("/", "/ui"):
        r = client.get(path)
        assert r.status_code == 302
        assert r.headers["location"] == "/ui/"


def test_dashboard_page_and_its_files(client):
    page = client.get("/ui/")
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert page.headers["content-security-policy"].startswith("default-src 'self'")
    assert page.headers["x-content-type-options"] == "nosniff"
    html = page.text
    # Only scripts of its own, no inline script, no style attribute (the CSP would block them).
    scripts = re.findall(r"<script\b([^>]*)>(.*?)</script>", html, re.S | re.I)
    assert scripts, "the page loads its script"
    for attrs, body in scripts:
        assert body.strip() == "", "inline script"
        assert re.search(r'\bsrc="[a-z0-9_.-]+\.js"', attrs), attrs
    assert not re.search(r"\sstyle\s*=", html, re.I)
    assert not re.search(r"\son[a-z]+\s*=", html, re.I), "inline event handler"
    assert "http://" not in html and "https://" not in html, "no other origin"
    # Every file the page names is served, with the right type.
    names = re.findall(r'(?:src|href)="([a-z0-9_.-]+\.(?:js|css|svg))"', html)
    assert any(n.endswith(".js") for n in names) and any(n.endswith(".css") for n in names)
    types = {"js": "text/javascript", "css": "text/css", "svg": "image/svg+xml"}
    for name in names:
        r = client.get(f"/ui/{name}")
        assert r.status_code == 200, name
        assert r.headers["content-type"].startswith(types[name.rsplit(".", 1)[1]]), name
        assert r.headers["content-security-policy"].startswith("default-src 'self'")


def test_dashboard_revalidates_with_its_etag(client):
    first = client.get("/ui/")
    etag = first.headers["etag"]
    assert first.headers["cache-control"] == "no-cache"
    again = client.get("/ui/", headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == etag
    assert client.get("/ui/nope.js").status_code == 404


def test_dashboard_needs_no_key_but_the_data_does(make_server):
    s = make_server("--api-key", "k-123456")
    with s.client() as c:
        assert c.get("/ui/").status_code == 200
        assert c.get("/health").json()["auth_required"] is True
        assert c.get("/stats").status_code == 401


def test_health_says_no_key_is_needed(client):
    assert client.get("/health").json()["auth_required"] is False
