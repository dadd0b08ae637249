"""A request id on every response (``X-Request-ID``) and in every log line of that request.

A sane incoming id (from a proxy or the client) is kept so one request can be followed
across hops; anything else is replaced by a fresh one. The id is bound with structlog's
contextvars, so every ``log.info(...)`` made while serving the request carries it.
"""

from __future__ import annotations

import re
import secrets

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

HEADER = b"x-request-id"
_SANE = re.compile(rb"[A-Za-z0-9._:@/+=-]{8,128}")


def request_id_from(headers: list[tuple[bytes, bytes]]) -> str:
    """The incoming id when it is sane (8-128 plain characters), else a new random one."""
    for name, value in headers:
        if name == HEADER and _SANE.fullmatch(value):
            return value.decode()
    # 32 hex digits as uuid4().hex gave, without its UUID object (a third of the cost).
    return secrets.token_hex(16)


class RequestIdMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        request_id = request_id_from(scope["headers"])
        scope.setdefault("state", {})["request_id"] = request_id
        id_header = (HEADER, request_id.encode())

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = message.get("headers", ())
                # Usually no one else set the header: append without filtering every pair.
                if any(name.lower() == HEADER for name, _ in headers):
                    headers = [(k, v) for k, v in headers if k.lower() != HEADER]
                message = {**message, "headers": [*headers, id_header]}
            await send(message)

        # bind/reset by token: bound_contextvars() copies the whole context to save what it rebinds.
        tokens = structlog.contextvars.bind_contextvars(request_id=request_id)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            structlog.contextvars.reset_contextvars(**tokens)
