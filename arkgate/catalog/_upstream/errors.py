"""Map upstream failures onto arkgate's errors without leaking URLs, keys or bodies."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager

import httpx

from arkgate.errors import ArkgateError, UpstreamError, UpstreamTimeoutError


class UpstreamStatusError(Exception):
    """An upstream answered with a non-success HTTP status (kept apart to decide on retries)."""

    def __init__(self, status_code: int) -> None:
        super().__init__(f"HTTP {status_code}")
        self.status_code = status_code


@contextmanager
def upstream_errors(name: str) -> Iterator[None]:
    """Turn what can go wrong talking to upstream ``name`` into a 502/504 naming only ``name``.

    httpx error messages can contain the request URL (and so a key in a query
    string), so they are never copied into the message; the cause is chained for logs.
    """
    try:
        yield
    except ArkgateError:
        raise
    except httpx.TimeoutException as exc:
        raise UpstreamTimeoutError(f"{name} did not answer in time") from exc
    except UpstreamStatusError as exc:
        raise UpstreamError(
            f"{name} answered with HTTP {exc.status_code}",
            details={"upstream": name, "status": exc.status_code},
        ) from exc
    except httpx.HTTPError as exc:
        raise UpstreamError(f"{name} is unreachable", details={"upstream": name}) from exc
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, ValueError) as exc:
        raise UpstreamError(f"{name} returned data that could not be read", details={"upstream": name}) from exc
