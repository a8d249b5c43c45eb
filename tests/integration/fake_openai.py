#!/usr/bin/python3
"""A fake OpenAI-compatible chat completions server for runq's integration tests.

    fake_openai.py [--port 0] [--tls-cert cert.pem --tls-key key.pem] [--api-key KEY]

Listens on 127.0.0.1 and prints "PORT <n>" as its first line. Python stdlib only.

POST .../chat/completions answers "You said: <prompt>" (the last user message), word by
word as `data:` chunks (chat.completion.chunk), the usage in a last chunk when
stream_options.include_usage is set, then `data: [DONE]`. What else happens is chosen
by words in the prompt (counters are per prompt text, so each test uses its own):

    RATE_LIMIT:N[:S]  the first N requests get 429 with Retry-After: S (default 1)
    FAIL500:N         the first N requests get 500
    BADKEY            401 (also when --api-key is set and the request's key differs)
    SLOW[:MS]         MS milliseconds (default 300) between chunks
    NOSTREAM          one application/json chat.completion, whatever `stream` says
    CUTOFF            two chunks, then the connection is dropped mid-body
    CLOSE_DELIMITED   no chunked encoding: the body ends when the connection closes
    NOUSAGE           no usage chunk

GET /_requests returns every request seen so far as JSON: [{"n", "path", "headers"
(lower-case names), "body" (parsed), "prompt", "t" (time.monotonic() when it arrived,
this process's clock), "t_wall", "status", "disconnected" (the client went away
mid-stream), "finished"}]. POST /_reset forgets them and the counters.
"""
import argparse
import json
import re
import ssl
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOCK = threading.Lock()
REQUESTS = []
COUNTERS = {}
API_KEY = None


def _count(kind, prompt):
    """How many requests of this kind with this prompt came before (then counts this)."""
    with LOCK:
        key = (kind, prompt)
        n = COUNTERS.get(key, 0)
        COUNTERS[key] = n + 1
        return n


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fake-openai/1.0"

    def log_message(self, fmt, *args):  # quiet
        pass

    # -- helpers ------------------------------------------------------------------------

    def _send_json(self, status, obj, headers=None):
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()

    def _error(self, status, message, kind, headers=None):
        self._send_json(status, {"error": {"message": message, "type": kind,
                                           "param": None, "code": None}}, headers)

    # -- endpoints ----------------------------------------------------------------------

    def do_GET(self):
        if self.path == "/_requests":
            with LOCK:
                snapshot = [dict(r) for r in REQUESTS]
            self._send_json(200, snapshot)
        else:
            self._send_json(404, {"detail": "Not Found"})

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if self.path == "/_reset":
            with LOCK:
                REQUESTS.clear()
                COUNTERS.clear()
            self._send_json(200, {"ok": True})
            return
        if not self.path.endswith("/chat/completions"):
            self._send_json(404, {"detail": "Not Found"})
            return
        try:
            body = json.loads(raw or b"null")
        except ValueError:
            body = None
        prompt = ""
        if isinstance(body, dict):
            for m in body.get("messages") or []:
                if isinstance(m, dict) and m.get("role") == "user":
                    prompt = str(m.get("content", ""))
        record = {
            "path": self.path,
            "headers": {k.lower(): v for k, v in self.headers.items()},
            "body": body,
            "prompt": prompt,
            "t": time.monotonic(),
            "t_wall": time.time(),
            "status": None,
            "disconnected": False,
            "finished": False,
        }
        with LOCK:
            record["n"] = len(REQUESTS) + 1
            REQUESTS.append(record)
        try:
            self._chat(record, body, prompt)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, OSError):
            with LOCK:
                record["disconnected"] = True
            self.close_connection = True

    def _chat(self, record, body, prompt):
        def status(code):
            with LOCK:
                record["status"] = code

        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            status(400)
            self._error(400, "messages is required", "invalid_request_error")
            return
        auth = self.headers.get("Authorization", "")
        if "BADKEY" in prompt or (API_KEY is not None and auth != "Bearer " + API_KEY):
            status(401)
            self._error(401, "Incorrect API key provided", "invalid_request_error")
            return
        m = re.search(r"RATE_LIMIT:(\d+)(?::(\d+(?:\.\d+)?))?", prompt)
        if m and _count("rate", prompt) < int(m.group(1)):
            status(429)
            self._error(429, "Rate limit reached for requests", "requests",
                        {"Retry-After": m.group(2) or "1"})
            return
        m = re.search(r"FAIL500:(\d+)", prompt)
        if m and _count("fail", prompt) < int(m.group(1)):
            status(500)
            self._error(500, "Internal boom", "server_error")
            return

        model = body.get("model") or "unknown"
        words = ("You said: " + prompt).split(" ")
        pieces = [w + (" " if i < len(words) - 1 else "") for i, w in enumerate(words)]
        completion_id = "chatcmpl-fake%06d" % record["n"]
        created = int(time.time())
        usage = {"prompt_tokens": len(prompt.split()), "completion_tokens": len(pieces),
                 "total_tokens": len(prompt.split()) + len(pieces)}

        if "NOSTREAM" in prompt or not body.get("stream"):
            status(200)
            self._send_json(200, {
                "id": completion_id, "object": "chat.completion", "created": created,
                "model": model,
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": "".join(pieces)}}],
                "usage": usage})
            with LOCK:
                record["finished"] = True
            return

        m = re.search(r"SLOW(?::(\d+))?", prompt)
        delay = (int(m.group(1) or 300) / 1000.0) if m else 0.0
        chunked = "CLOSE_DELIMITED" not in prompt
        status(200)
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.flush()

        def emit(obj):
            text = "data: " + (obj if isinstance(obj, str) else json.dumps(obj)) + "\n\n"
            data = text.encode()
            if chunked:
                data = b"%x\r\n" % len(data) + data + b"\r\n"
            self.wfile.write(data)
            self.wfile.flush()

        def chunk(delta, finish=None):
            return {"id": completion_id, "object": "chat.completion.chunk",
                    "created": created, "model": model,
                    "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

        emit(chunk({"role": "assistant", "content": ""}))
        for i, piece in enumerate(pieces):
            if delay:
                time.sleep(delay)
            if "CUTOFF" in prompt and i == 2:
                self.close_connection = True
                self.connection.shutdown(2)  # drop it mid-body
                with LOCK:
                    record["disconnected"] = True
                return
            emit(chunk({"content": piece}))
        emit(chunk({}, "stop"))
        opts = body.get("stream_options") or {}
        if opts.get("include_usage") and "NOUSAGE" not in prompt:
            emit({"id": completion_id, "object": "chat.completion.chunk", "created": created,
                  "model": model, "choices": [], "usage": usage})
        emit("[DONE]")
        if chunked:
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        with LOCK:
            record["finished"] = True


def main():
    global API_KEY
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--tls-cert")
    ap.add_argument("--tls-key")
    ap.add_argument("--api-key")
    args = ap.parse_args()
    API_KEY = args.api_key

    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    if args.tls_cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.tls_cert, args.tls_key or args.tls_cert)
        # The handshake happens in the handler thread, on the first read.
        server.socket = ctx.wrap_socket(server.socket, server_side=True,
                                        do_handshake_on_connect=False)
    print("PORT %d" % server.server_address[1], flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
