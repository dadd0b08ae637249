"""What a handler gets besides its request: settings, shared services, and its meter."""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import httpx
from sse_starlette import ServerSentEvent

if TYPE_CHECKING:
    from arkgate.catalog.registry import Endpoint
    from arkgate.settings import Settings

T = TypeVar("T")


class Services:
    """Long-lived resources shared by handlers, built on first use and closed at shutdown.

    Endpoint modules own their resources: ``ctx.services.get(make_resolver)`` builds
    the value once per app from a factory ``(settings) -> value`` and memoises it by
    factory. A value with ``aclose()`` or ``close()`` is closed when the app stops.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._values: dict[Any, Any] = {}
        self._lock = asyncio.Lock()
        self._closers: list[Callable[[], Awaitable[None] | None]] = []

    def get(self, factory: Callable[[Settings], T]) -> T:
        try:
            return self._values[factory]  # type: ignore[no-any-return]
        except KeyError:
            value = factory(self.settings)
            self._values[factory] = value
            self._register_closer(value)
            return value

    def provide(self, factory: Callable[[Settings], T], value: T) -> None:
        """Use ``value`` wherever ``get(factory)`` is asked (the app wires shared-state backends so)."""
        self._values[factory] = value
        self._register_closer(value)

    def _register_closer(self, value: Any) -> None:
        for name in ("aclose", "close"):
            closer = getattr(value, name, None)
            if callable(closer):
                self._closers.append(closer)
                return

    def on_close(self, closer: Callable[[], Awaitable[None] | None]) -> None:
        self._closers.append(closer)

    @property
    def http(self) -> httpx.AsyncClient:
        """One pooled client for fixed, operator-configured upstream APIs (never user-given URLs)."""
        return self.get(_make_upstream_client)

    async def aclose(self) -> None:
        for closer in reversed(self._closers):
            result = closer()
            if asyncio.iscoroutine(result):
                await result
        self._closers.clear()
        self._values.clear()


def _make_upstream_client(settings: Settings) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        timeout=httpx.Timeout(settings.outbound_timeout_s),
        limits=httpx.Limits(max_connections=100, max_keepalive_connections=20),
        headers={"User-Agent": "arkgate"},
        follow_redirects=False,
    )


@dataclass(kw_only=True)
class StreamingReply:
    """Returned by a handler that streams (server-sent events).

    The meter sends ``events`` as they come and settles when the stream ends or
    the client disconnects; the handler calls ``ctx.settle`` as usage is delivered.
    """

    events: AsyncIterator[ServerSentEvent]


def sse(event: str, data: dict[str, Any]) -> ServerSentEvent:
    """One server-sent event (framed by ``sse-starlette``); JSON keeps any newline in ``data`` on one line."""
    # "\n" line ends (any of the three is valid SSE): what clients of the metered streams have always parsed.
    return ServerSentEvent(data=json.dumps(data, ensure_ascii=False, separators=(",", ":")), event=event, sep="\n")


@dataclass(kw_only=True)
class CallContext:
    """Per-call context handed to an endpoint handler."""

    settings: Settings
    services: Services
    endpoint: Endpoint
    session_id: int | None = None
    call_id: str = ""
    reserved_sats: int = 0
    settled_sats: int | None = None
    notes: list[str] = field(default_factory=list)
    # What ``base_url`` comes from (set by the meter): building it from the request costs every
    # call some microseconds, and few handlers need it.
    resolve_base_url: Callable[[], str] = field(default=lambda: "", repr=False)
    # Sum of sats this session spent today on the given endpoint ids (set by the meter).
    spent_today_sats: Callable[[Iterable[str]], Awaitable[int]] | None = None

    @functools.cached_property
    def base_url(self) -> str:
        """The gateway's public URL (``public_url``, else this request's), without a trailing slash."""
        return self.resolve_base_url()

    def settle(self, cost_sats: int) -> int:
        """Metered endpoints: record what the call really cost (clamped to [minimum, reserved])."""
        cost = max(self.endpoint.min_price_sats(self.settings), min(int(cost_sats), self.reserved_sats))
        self.settled_sats = cost
        return cost
