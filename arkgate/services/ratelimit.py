"""Rate limits per client IP and per token, with the ``limits`` library (memory or Redis).

Each hit reports its window as ArkAPI does, in ``X-RateLimit-Limit``, ``-Remaining`` and
``-Reset`` (RFC 3339, UTC) on the response: ``hit`` records the tightest window on the
request's scope and ``RateLimitHeaders`` writes it into the response head.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from limits import parse
from limits.aio.strategies import MovingWindowRateLimiter
from limits.storage import storage_from_string
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from arkgate.errors import RateLimitedError
from arkgate.settings import Settings
from arkgate.timestamps import format_instant

_SCOPE_KEY = "arkgate.rate_limit"


@dataclass(frozen=True, kw_only=True)
class RateWindow:
    limit: int
    remaining: int
    reset_at: float  # epoch seconds

    def headers(self) -> dict[str, str]:
        reset = format_instant(datetime.fromtimestamp(self.reset_at, UTC))
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(max(0, self.remaining)),
            "X-RateLimit-Reset": reset,
        }


class RateLimits:
    def __init__(self, settings: Settings) -> None:
        self.enabled = settings.rate_limits_enabled
        url = settings.rate_limit_storage
        if not url.startswith("async+"):
            url = f"async+{url}"
        self._limiter = MovingWindowRateLimiter(storage_from_string(url)) if self.enabled else None
        self.sessions = parse(settings.rate_limit_sessions)
        self.calls = parse(settings.rate_limit_calls)
        self.calls_ip = parse(settings.rate_limit_calls_ip)

    async def hit(self, kind: str, key: str, scope: Scope | None = None) -> None:
        """Count one hit; raise 429 when the window is full. With ``scope``, its window goes in the headers."""
        if self._limiter is None:
            return
        item = {"sessions": self.sessions, "calls": self.calls, "calls_ip": self.calls_ip}[kind]
        allowed = await self._limiter.hit(item, kind, key)
        reset_at, remaining = await self._limiter.get_window_stats(item, kind, key)
        window = RateWindow(limit=item.amount, remaining=remaining, reset_at=reset_at)
        if scope is not None:
            _keep_tightest(scope, window)
        if not allowed:
            retry_after = max(1, int(reset_at - time.time()))
            raise RateLimitedError(
                f"rate limit exceeded ({item}); retry in {retry_after} s",
                details={"_headers": {"Retry-After": str(retry_after), **window.headers()}, "limit": str(item)},
            )


def _keep_tightest(scope: Scope, window: RateWindow) -> None:
    state: dict[str, Any] = scope.setdefault("state", {})
    current: RateWindow | None = state.get(_SCOPE_KEY)
    if current is None or window.remaining < current.remaining:
        state[_SCOPE_KEY] = window


class RateLimitHeaders:
    """Write the request's rate-limit window (if a limit was hit) into the response head."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                window: RateWindow | None = scope.get("state", {}).get(_SCOPE_KEY)
                if window is not None:
                    present = {name.lower() for name, _ in message.get("headers", [])}
                    extra = [
                        (name.lower().encode(), value.encode())
                        for name, value in window.headers().items()
                        if name.lower().encode() not in present
                    ]
                    message["headers"] = list(message.get("headers", [])) + extra
            await send(message)

        await self.app(scope, receive, send_with_headers)
