"""CORS for the public API, as ArkAPI sends it: browsers and agents may call it from any page.

Starlette's ``CORSMiddleware`` does the protocol (preflight, ``Vary``, origin echo); this
module only limits it to the public paths, so operator pages (``/admin``, ``/metrics``)
never carry CORS headers. Credentials are never allowed: the API takes a bearer token,
not cookies, and ``*`` with credentials is refused by browsers anyway.
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from arkgate.settings import Settings

PUBLIC_PREFIXES = ("/api/", "/v1/", "/.well-known/")
DISCOVERY_DOCUMENTS = ("/openapi.json", "/llms.txt", "/llms-full.txt")
EXPOSED_HEADERS = (
    "X-RateLimit-Limit",
    "X-RateLimit-Remaining",
    "X-RateLimit-Reset",
    "Retry-After",
    "WWW-Authenticate",
    "X-Call-Id",
    "Idempotent-Replayed",
)
_VARY_ORIGIN = (b"vary", b"Origin")
_NO_ORIGIN = Headers()


def is_public(path: str) -> bool:
    """Paths ArkAPI's clients reach from a browser: the API, sessions and discovery documents."""
    return path.startswith(PUBLIC_PREFIXES) or path in DISCOVERY_DOCUMENTS


class PublicCors:
    """``CORSMiddleware`` for the public paths; every other request goes straight to the app.

    Most calls (agents, servers) send no ``Origin``: for them ``CORSMiddleware`` only adds
    ``Vary: Origin``, which is done here without building its header views for each request.
    """

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.cors = CORSMiddleware(
            app,
            allow_origins=settings.cors_allow_origins,
            allow_methods=["GET", "POST", "OPTIONS"],
            allow_headers=["Authorization", "Content-Type", "Idempotency-Key"],
            expose_headers=list(EXPOSED_HEADERS),
            allow_credentials=False,
            max_age=600,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not is_public(scope["path"]):
            await self.app(scope, receive, send)
            return
        for name, _ in scope["headers"]:
            if name == b"origin":
                await self.cors(scope, receive, send)
                return

        async def send_with_vary(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = message.get("headers") or []
                if any(name == b"vary" for name, _ in headers):
                    # Several values to merge into one header: Starlette's own way.
                    await self.cors.send(message, send, request_headers=_NO_ORIGIN)
                    return
                message["headers"] = [*headers, _VARY_ORIGIN]
            await send(message)

        await self.app(scope, receive, send_with_vary)
