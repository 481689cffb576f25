"""A local events API with Stripe-style cursor pages (`limit`, `starting_after`, `has_more`) that fails on demand.

Tests append events and queue faults; each request takes the next fault: `500`, `429` (with Retry-After),
`slow` (answers after the client's timeout), `duplicate` (serves the previous page again), `reversed` (the
page's events in reverse order) or `crash` (half a body, then the connection drops).
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse


class FakeEventsApi:
    def __init__(self, token: str, slow_s: float = 8.0) -> None:
        self.token, self.slow_s = token, slow_s
        self.events: list[dict] = []
        self.faults: deque[str] = deque()
        self.requests = 0
        self.served_faults: list[str] = []
        self._last_start = 0
        self._lock = threading.Lock()
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_GET(self):  # noqa: N802 - the http.server contract
                api._handle(self)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> FakeEventsApi:
        self.thread.start()
        return self

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def add(self, event_type: str, obj: dict) -> str:
        with self._lock:
            event_id = f"evt_{len(self.events) + 1:06d}"
            self.events.append({"id": event_id, "object": "event", "type": event_type, "created": int(time.time()),
                                "data": {"object": obj}})
            return event_id

    def fail(self, *faults: str) -> None:
        with self._lock:
            self.faults.extend(faults)

    def _send(self, handler, status: int, body: dict, headers: dict | None = None) -> None:
        data = json.dumps(body).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            handler.send_header(k, v)
        handler.end_headers()
        handler.wfile.write(data)

    def _handle(self, handler) -> None:
        url = urlparse(handler.path)
        if url.path != "/v1/events":
            return self._send(handler, 404, {"error": {"message": "no such route"}})
        if handler.headers.get("Authorization") != f"Bearer {self.token}":
            return self._send(handler, 401, {"error": {"message": "bad token"}})
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        with self._lock:
            self.requests += 1
            fault = self.faults.popleft() if self.faults else None
            if fault:
                self.served_faults.append(fault)
            ids = [e["id"] for e in self.events]
            after = query.get("starting_after")
            start = ids.index(after) + 1 if after in ids else 0
            if fault == "duplicate":
                start = self._last_start
            limit = max(1, min(100, int(query.get("limit", "10"))))
            page = self.events[start:start + limit]
            has_more = start + limit < len(self.events)
            self._last_start = start
        if fault == "500":
            return self._send(handler, 500, {"error": {"message": "internal"}})
        if fault == "429":
            return self._send(handler, 429, {"error": {"message": "slow down"}}, {"Retry-After": "1"})
        if fault == "slow":
            time.sleep(self.slow_s)
        if fault == "reversed":
            page = list(reversed(page))
        body = {"object": "list", "data": page, "has_more": has_more}
        if fault == "crash":
            data = json.dumps(body).encode()
            handler.send_response(200)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(data)))
            handler.end_headers()
            handler.wfile.write(data[: len(data) // 2])
            handler.wfile.flush()
            handler.close_connection = True
            handler.connection.close()
            return None
        return self._send(handler, 200, body)
