"""Rate limits per client IP and per token, with the ``limits`` library (memory or Redis)."""

from __future__ import annotations

import time

from limits import parse
from limits.aio.strategies import MovingWindowRateLimiter
from limits.storage import storage_from_string

from arkgate.errors import RateLimitedError
from arkgate.settings import Settings


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

    async def hit(self, kind: str, key: str) -> None:
        """Count one hit; raise 429 when the window is full."""
        if self._limiter is None:
            return
        item = {"sessions": self.sessions, "calls": self.calls, "calls_ip": self.calls_ip}[kind]
        if not await self._limiter.hit(item, kind, key):
            reset_at, _ = await self._limiter.get_window_stats(item, kind, key)
            retry_after = max(1, int(reset_at - time.time()))
            raise RateLimitedError(
                f"rate limit exceeded ({item}); retry in {retry_after} s",
                details={"_headers": {"Retry-After": str(retry_after)}, "limit": str(item)},
            )
