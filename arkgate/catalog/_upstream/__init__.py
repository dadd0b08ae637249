"""Shared plumbing for endpoints that call fixed, operator-configured upstream APIs.

- :class:`TTLCache`: per-app cache with single-flight loading (one upstream call
  for concurrent identical requests).
- :class:`RetryPolicy`: retries for idempotent reads on transient failures.
- :func:`upstream_errors` / :func:`get_json` / :func:`get_text`: one place that turns
  transport errors, bad statuses and malformed bodies into ``UpstreamError`` (502)
  or ``UpstreamTimeoutError`` (504) naming the upstream, never its URL or key.

Never use these for user-given URLs: those go through ``arkgate.outbound.guard``.
"""

from arkgate.catalog._upstream.cache import TTLCache, cache_factory
from arkgate.catalog._upstream.errors import UpstreamStatusError, upstream_errors
from arkgate.catalog._upstream.http import get_json, get_text
from arkgate.catalog._upstream.retry import RetryPolicy
from arkgate.catalog._upstream.timefmt import now_utc, parse_iso, utc_from_ts

__all__ = [
    "RetryPolicy",
    "TTLCache",
    "UpstreamStatusError",
    "cache_factory",
    "get_json",
    "get_text",
    "now_utc",
    "parse_iso",
    "upstream_errors",
    "utc_from_ts",
]
