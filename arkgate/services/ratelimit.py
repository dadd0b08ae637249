"""Rate limits per client IP and per token: a moving window, in this process or in Redis.

``memory://`` (the default) is counted here: the hit times of each key in a deque, on the
monotonic clock, without locks (one event loop; nothing awaits between the read and the write),
which costs a few microseconds per hit where the ``limits`` library's async memory storage cost
tens (a lock, and two storage calls per hit). Redis (shared by instances) goes through ``limits``'
moving window; both refuse the hit that would make more than the limit within the window.

Each hit reports its window as ArkAPI does, in ``X-RateLimit-Limit``, ``-Remaining`` and
``-Reset`` (RFC 3339, UTC) on the response: ``hit`` records the tightest window on the
request's scope and ``RateLimitHeaders`` writes it into the response head.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from limits import RateLimitItem, parse
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


class MovingWindows:
    """Moving windows in this process: per key, the monotonic times of the hits still in its window."""

    SWEEP_EVERY = 4096  # hits between two sweeps of keys whose window has emptied (bounded memory)

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._hits: dict[tuple[str, str, str], deque[float]] = {}
        self._until_sweep = self.SWEEP_EVERY
        self._longest_s = 0.0

    def hit(self, item: RateLimitItem, kind: str, key: str) -> tuple[bool, int, float]:
        """(allowed, remaining, reset in seconds from now); a refused hit is not counted."""
        now = self._clock()
        window_s = float(item.get_expiry())
        self._longest_s = max(self._longest_s, window_s)
        self._until_sweep -= 1
        if self._until_sweep <= 0:
            self._sweep(now)
        slot = (item.namespace, kind, key)
        hits = self._hits.get(slot)
        if hits is None:
            hits = self._hits[slot] = deque()
        start = now - window_s
        while hits and hits[0] <= start:
            hits.popleft()
        allowed = len(hits) < item.amount
        if allowed:
            hits.append(now)
        # The window frees its first slot when its oldest hit leaves it.
        reset_s = (hits[0] - start) if hits else window_s
        return allowed, item.amount - len(hits), reset_s

    def _sweep(self, now: float) -> None:
        self._until_sweep = self.SWEEP_EVERY
        stale = now - self._longest_s
        for slot in [slot for slot, hits in self._hits.items() if not hits or hits[-1] <= stale]:
            del self._hits[slot]


class RateLimits:
    def __init__(self, settings: Settings) -> None:
        self.enabled = settings.rate_limits_enabled
        url = settings.rate_limit_storage
        self._local: MovingWindows | None = None
        self._limiter: MovingWindowRateLimiter | None = None
        if self.enabled and url.startswith("memory://"):
            self._local = MovingWindows()
        elif self.enabled:
            self._limiter = MovingWindowRateLimiter(
                storage_from_string(url if url.startswith("async+") else f"async+{url}")
            )
        self.sessions = parse(settings.rate_limit_sessions)
        self.calls = parse(settings.rate_limit_calls)
        self.calls_ip = parse(settings.rate_limit_calls_ip)
        self._items = {"sessions": self.sessions, "calls": self.calls, "calls_ip": self.calls_ip}

    async def aclose(self) -> None:
        """Close a shared storage's connections (Redis), so a stopped gateway leaves no socket behind."""
        if self._limiter is None:
            return
        # ``limits`` has no close of its own; its Redis bridge holds the client (coredis) as ``storage``.
        client = getattr(getattr(self._limiter.storage, "bridge", None), "storage", None)
        pool = getattr(client, "connection_pool", None)
        if pool is not None:
            pool.disconnect()

    async def hit(self, kind: str, key: str, scope: Scope | None = None) -> None:
        """Count one hit; raise 429 when the window is full. With ``scope``, its window goes in the headers."""
        if self._local is not None:
            item = self._items[kind]
            allowed, remaining, reset_s = self._local.hit(item, kind, key)
            reset_at = time.time() + reset_s
        elif self._limiter is not None:
            item = self._items[kind]
            allowed = await self._limiter.hit(item, kind, key)
            reset_at, remaining = await self._limiter.get_window_stats(item, kind, key)
        else:
            return
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
