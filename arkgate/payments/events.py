"""Publish/subscribe of session events (credits), for live pages and tests.

The watcher publishes the moment a credit commits; a server-sent-events stream
subscribes per session, so a funding page goes live without polling. Subscribers in
this process get the event at once; with a ``Transport`` (``arkgate.cluster.bus``) it
also reaches the other instances and workers, whose own events come back through
``deliver``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import AsyncIterator
from typing import Any, Protocol


class Transport(Protocol):
    """Carries events between processes; ``send`` must not block the caller."""

    def send(self, session_id: int, event: dict[str, Any]) -> None: ...


class EventHub:
    def __init__(self) -> None:
        self._subscribers: dict[int, set[asyncio.Queue[dict[str, Any]]]] = defaultdict(set)
        self.transport: Transport | None = None

    def publish(self, session_id: int, event: dict[str, Any]) -> None:
        self.deliver(session_id, event)
        if self.transport is not None:
            self.transport.send(session_id, event)

    def deliver(self, session_id: int, event: dict[str, Any]) -> None:
        """Hand an event to this process's subscribers only."""
        for queue in list(self._subscribers.get(session_id, ())):
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(event)

    @contextlib.asynccontextmanager
    async def subscribe(self, session_id: int) -> AsyncIterator[asyncio.Queue[dict[str, Any]]]:
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=100)
        self._subscribers[session_id].add(queue)
        try:
            yield queue
        finally:
            self._subscribers[session_id].discard(queue)
            if not self._subscribers[session_id]:
                del self._subscribers[session_id]
