"""Request size limits enforced while reading, before any route runs.

A pure ASGI middleware: a declared ``Content-Length`` over the limit is answered 413 at
once, and a body without one is counted chunk by chunk as the app reads it, so no more
than the limit plus one chunk is ever held. Headers over ``max_header_bytes`` get 431
(the server refuses far larger ones before they are buffered; see ``arkgate.serving``).

Every route gets ``max_body_bytes``; a route that declares it takes large bodies (an
endpoint with ``has_large_body``, or a path prefix such as ``/mcp``) gets
``max_large_body_bytes``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from arkgate.services.envelope import dumps


@dataclass(kw_only=True)
class BodyLimits:
    small_bytes: int
    large_bytes: int
    large_paths: set[str] = field(default_factory=set)
    large_prefixes: list[str] = field(default_factory=list)

    def declare_large(self, *, paths: Iterable[str] = (), prefixes: Iterable[str] = ()) -> None:
        self.large_paths.update(paths)
        self.large_prefixes.extend(prefixes)

    def for_path(self, path: str) -> int:
        # str.startswith takes a tuple: one call instead of a generator per request.
        if path in self.large_paths or path.startswith(tuple(self.large_prefixes)):
            return self.large_bytes
        return self.small_bytes


_HTTP1 = ("1.0", "1.1")


def _too_large(limit: int) -> str:
    return f"the request body is too large (at most {limit} bytes)"


def _error(status: int, code: str, message: str) -> tuple[Message, Message]:
    body = dumps({"success": False, "error": message, "code": status, "error_code": code, "cost_sats": 0})
    start: Message = {
        "type": "http.response.start",
        "status": status,
        "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
        ],
    }
    return start, {"type": "http.response.body", "body": body}


class RequestLimitsMiddleware:
    def __init__(self, app: ASGIApp, *, limits: BodyLimits, max_header_bytes: int) -> None:
        self.app = app
        self.limits = limits
        self.max_header_bytes = max_header_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        header_bytes = len(scope.get("raw_path") or b"") + len(scope.get("query_string") or b"")
        headers: list[tuple[bytes, bytes]] = scope["headers"]
        lengths: list[bytes] = []
        framed = True  # no Transfer-Encoding
        for name, value in headers:
            header_bytes += len(name) + len(value) + 4
            if name == b"content-length":
                lengths.append(value)
            elif name == b"transfer-encoding":
                framed = False
        if header_bytes > self.max_header_bytes:
            await self._refuse(send, 431, "request_headers_too_large", "the request headers are too large")
            return
        limit = self.limits.for_path(scope["path"])
        for value in lengths:
            try:
                declared = int(value)
            except ValueError:
                await self._refuse(send, 400, "invalid_input", "invalid Content-Length")
                return
            if declared > limit:
                await self._refuse(send, 413, "request_too_large", _too_large(limit))
                return
        # HTTP/1 frames a body without Transfer-Encoding by its one Content-Length, now known to be
        # within the limit, or gives it none at all: no counting on the way then (the common case,
        # and two closures less per request).
        if framed and len(lengths) <= 1 and scope.get("http_version", "1.1") in _HTTP1:
            await self.app(scope, receive, send)
            return
        received = 0
        refused = False
        response_started = False

        async def counting_receive() -> Message:
            nonlocal received, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    refused = True
                    if not response_started:
                        await self._refuse(send, 413, "request_too_large", _too_large(limit))
                    # The app sees a vanished client and stops; its answer is dropped below.
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal response_started
            if refused:
                return
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        await self.app(scope, counting_receive, guarded_send)

    @staticmethod
    async def _refuse(send: Send, status: int, code: str, message: str) -> None:
        start, body = _error(status, code, message)
        await send(start)
        await send(body)
