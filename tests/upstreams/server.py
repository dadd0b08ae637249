"""The recorded-response upstream server (see the package docstring)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

FIXTURES_DIR = Path(__file__).resolve().parents[1] / "fixtures" / "upstreams"

# A hanging request is released when the server stops, or after this long at worst,
# so a forgotten hang can never wedge the test run.
_HANG_LIMIT_S = 60.0

_TYPES = {
    ".json": "application/json",
    ".xml": "application/xml",
    ".rss": "application/rss+xml",
    ".atom": "application/atom+xml",
    ".html": "text/html; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
    ".png": "image/png",
}


@dataclass(frozen=True, kw_only=True)
class Reply:
    """What the server answers: a status, a body, headers; or it hangs without answering."""

    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    headers: Mapping[str, str] = field(default_factory=dict)
    hang: bool = False


@dataclass(frozen=True, kw_only=True)
class RecordedRequest:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]


@dataclass
class _Route:
    query: dict[str, str]
    reply: Reply


class UpstreamServer:
    """Threaded HTTP server on 127.0.0.1:<free port>; configure, then point settings at ``url``."""

    def __init__(self, fixtures_dir: Path = FIXTURES_DIR) -> None:
        self.fixtures_dir = fixtures_dir
        self._routes: dict[str, list[_Route]] = {}
        self._overrides: dict[str, list[tuple[Reply, int | None]]] = {}
        self._hits: dict[str, int] = {}
        self.requests: list[RecordedRequest] = []
        self._lock = threading.Lock()
        self._release = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle ---------------------------------------------------------------------
    def start(self) -> UpstreamServer:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server._handle(self, "GET")

            def do_POST(self) -> None:
                server._handle(self, "POST")

            def do_HEAD(self) -> None:
                server._handle(self, "HEAD")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, args=(0.02,), name="upstream-server", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._release.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join()

    @property
    def port(self) -> int:
        assert self._httpd is not None, "server not started"
        return self._httpd.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # --- configuration -----------------------------------------------------------------
    def route(self, path: str, reply: Reply, *, query: Mapping[str, str] | None = None) -> None:
        """Answer GETs of ``path`` (whose query contains ``query``) with ``reply``; later routes win."""
        with self._lock:
            self._routes.setdefault(path, []).insert(0, _Route(dict(query or {}), reply))

    def serve_file(
        self,
        path: str,
        fixture: str,
        *,
        query: Mapping[str, str] | None = None,
        status: int = 200,
        content_type: str | None = None,
    ) -> None:
        """Answer ``path`` with a recorded fixture file (relative to ``tests/fixtures/upstreams``)."""
        source = self.fixtures_dir / fixture
        kind = content_type or _TYPES.get(source.suffix, "application/octet-stream")
        self.route(path, Reply(status=status, body=source.read_bytes(), content_type=kind), query=query)

    def serve_json(self, path: str, payload: Any, *, query: Mapping[str, str] | None = None, status: int = 200) -> None:
        self.route(path, Reply(status=status, body=json.dumps(payload).encode()), query=query)

    def serve_text(self, path: str, text: str, *, content_type: str = "text/html; charset=utf-8") -> None:
        self.route(path, Reply(body=text.encode(), content_type=content_type))

    def fail(self, path: str, status: int = 500, *, times: int | None = None) -> None:
        """Answer ``path`` with ``status`` (the next ``times`` requests, or until ``restore``)."""
        self._override(path, Reply(status=status, body=b'{"error":"recorded failure"}'), times)

    def hang(self, path: str, *, times: int | None = None) -> None:
        """Accept requests to ``path`` but never answer them (until the server stops)."""
        self._override(path, Reply(hang=True), times)

    def restore(self, path: str) -> None:
        with self._lock:
            self._overrides.pop(path, None)

    def _override(self, path: str, reply: Reply, times: int | None) -> None:
        with self._lock:
            self._overrides.setdefault(path, []).append((reply, times))

    # --- observation -------------------------------------------------------------------
    def hits(self, path: str) -> int:
        """How many requests reached ``path`` (any query, any outcome)."""
        with self._lock:
            return self._hits.get(path, 0)

    def requests_to(self, path: str) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self.requests if r.path == path]

    # --- serving -----------------------------------------------------------------------
    def _pick(self, method: str, path: str, query: dict[str, str], headers: dict[str, str]) -> Reply:
        with self._lock:
            self._hits[path] = self._hits.get(path, 0) + 1
            self.requests.append(RecordedRequest(method=method, path=path, query=query, headers=headers))
            queue = self._overrides.get(path)
            if queue:
                reply, times = queue[0]
                if times is not None:
                    if times <= 1:
                        queue.pop(0)
                    else:
                        queue[0] = (reply, times - 1)
                return reply
            for route in self._routes.get(path, []):
                if all(query.get(k) == v for k, v in route.query.items()):
                    return route.reply
        return Reply(status=404, body=b'{"error":"no recorded response"}')

    def _handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        parts = urlsplit(handler.path)
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        headers = {k.lower(): v for k, v in handler.headers.items()}
        length = int(handler.headers.get("Content-Length") or 0)
        if length:
            handler.rfile.read(length)
        reply = self._pick(method, parts.path, query, headers)
        if reply.hang:
            self._release.wait(_HANG_LIMIT_S)
            return
        try:
            handler.send_response(reply.status)
            handler.send_header("Content-Type", reply.content_type)
            handler.send_header("Content-Length", str(len(reply.body)))
            for name, value in reply.headers.items():
                handler.send_header(name, value)
            handler.end_headers()
            if method != "HEAD":
                handler.wfile.write(reply.body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (timeout test); nothing to answer


@pytest.fixture(name="upstream_server")
def upstream_server_fixture() -> Iterator[UpstreamServer]:
    """A started :class:`UpstreamServer`, stopped (and hung requests released) after the test."""
    server = UpstreamServer().start()
    try:
        yield server
    finally:
        server.stop()
