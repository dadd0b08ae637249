"""Retry policy for idempotent upstream reads.

The attempts and waits come from ``stamina`` (the project's one retry helper, also used by the
payment watcher's reconnects); this module only says *what* is worth retrying.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

import httpx
import stamina

from arkgate.catalog._upstream.errors import UpstreamStatusError

if TYPE_CHECKING:
    from arkgate.settings import Settings

T = TypeVar("T")

# Statuses that say "try again later" rather than "your request is wrong".
RETRYABLE_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


@dataclass(frozen=True, kw_only=True)
class RetryPolicy:
    """``retries`` extra attempts, waiting ``backoff_s * 2**n`` between them.

    Only for idempotent reads (GET). Timeouts are not retried: the caller's time
    budget is already spent, and a second slow attempt would only delay the 504.
    """

    retries: int = 2
    backoff_s: float = 0.2

    @classmethod
    def from_settings(cls, settings: Settings) -> RetryPolicy:
        return cls(retries=settings.upstream_retries, backoff_s=settings.upstream_retry_backoff_s)

    @staticmethod
    def is_retryable(exc: Exception) -> bool:
        if isinstance(exc, httpx.TimeoutException):
            return False
        if isinstance(exc, UpstreamStatusError):
            return exc.status_code in RETRYABLE_STATUSES
        return isinstance(exc, httpx.TransportError)

    async def run(self, attempt: Callable[[], Awaitable[T]]) -> T:
        """Run ``attempt`` until it succeeds, fails permanently or retries run out."""
        # No jitter and no overall timeout: the waits are the documented ``backoff_s * 2**n`` and the
        # caller's own deadline bounds the whole call.
        async for trial in stamina.retry_context(
            on=self.is_retryable,
            attempts=self.retries + 1,
            timeout=None,
            wait_initial=self.backoff_s,
            wait_max=self.backoff_s * 2**self.retries,
            wait_jitter=0.0,
        ):
            with trial:
                return await attempt()
        raise AssertionError("unreachable")  # pragma: no cover
