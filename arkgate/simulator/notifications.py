"""One event bus feeding barkd's two consumers: the long-poll buffer and WebSocket subscribers.

* ``/notifications/wait`` reads a buffer keyed by the UTC time each event arrived (ns precision,
  strictly increasing so the exclusive ``since`` is exact). Entries live 600 s and are purged only
  when a new event arrives, as in barkd.
* Each WebSocket subscriber gets a bounded queue of 64 events, like tokio's broadcast channel:
  when it overflows, the oldest events are lost and the subscriber is told ``channel-lagging``.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

BUFFER_TTL_NS = 600 * 1_000_000_000
CHANNEL_CAPACITY = 64

_RFC3339 = re.compile(r"^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|z|[+-]\d{2}:\d{2})$")


def format_key(ns: int) -> str:
    """Format a buffer key as barkd does: UTC, nanoseconds, ``Z``."""
    seconds, nanos = divmod(ns, 1_000_000_000)
    base = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{base}.{nanos:09d}Z"


def parse_rfc3339_ns(text: str) -> int:
    """Parse an RFC 3339 timestamp into ns since the epoch; raises ValueError."""
    match = _RFC3339.match(text)
    if match is None:
        raise ValueError(f"invalid RFC 3339 timestamp: {text!r}")
    year, month, day, hour, minute, second, frac, offset = match.groups()
    moment = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second), tzinfo=UTC)
    seconds = int(moment.timestamp())
    if offset not in ("Z", "z"):
        sign = 1 if offset[0] == "+" else -1
        seconds -= sign * (int(offset[1:3]) * 3600 + int(offset[4:6]) * 60)
    nanos = int((frac or "0").ljust(9, "0"))
    return seconds * 1_000_000_000 + nanos


@dataclass(eq=False)  # identity semantics: subscribers live in a set
class Subscriber:
    """One WebSocket consumer's view of the broadcast channel."""

    queue: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=CHANNEL_CAPACITY))
    lagged: bool = False
    wakeup: asyncio.Event = field(default_factory=asyncio.Event)

    def push(self, event: dict[str, Any]) -> None:
        if len(self.queue) == self.queue.maxlen:
            self.lagged = True  # the deque drops the oldest event on append
        self.queue.append(event)
        self.wakeup.set()

    def take(self) -> list[dict[str, Any]]:
        """Pending frames, with ``channel-lagging`` first if events were lost."""
        frames: list[dict[str, Any]] = []
        if self.lagged:
            frames.append({"type": "channel-lagging"})
            self.lagged = False
        frames.extend(self.queue)
        self.queue.clear()
        self.wakeup.clear()
        return frames


class NotificationBus:
    """In-memory notifications; a restart of the simulator starts with an empty bus."""

    def __init__(self) -> None:
        self._buffer: list[tuple[int, dict[str, Any]]] = []
        self._last_key = 0
        self._changed = asyncio.Event()
        self.subscribers: set[Subscriber] = set()
        self.tickets: dict[str, float] = {}
        self.closed = False
        # Fault switches (see faults.py): drop or duplicate the next N events.
        self.drop_next = 0
        self.duplicate_next = 0

    def reset(self) -> None:
        """Forget buffered events and tickets, as a barkd restart does."""
        self._buffer.clear()
        self.tickets.clear()
        for sub in self.subscribers:
            sub.wakeup.set()
        self.subscribers.clear()

    def drop_subscribers(self) -> int:
        """Close every WebSocket subscriber (they see the server end the stream); returns how many."""
        dropped = len(self.subscribers)
        for sub in self.subscribers:
            sub.wakeup.set()
        self.subscribers.clear()
        return dropped

    def close(self) -> None:
        """Wake every waiter; they answer 500 "Notification manager stopped"."""
        self.closed = True
        self._changed.set()
        for sub in self.subscribers:
            sub.wakeup.set()

    def publish(self, kind: str, movement: dict[str, Any]) -> None:
        """Emit ``movement-created`` / ``movement-updated`` for a movement document."""
        if self.drop_next > 0:
            self.drop_next -= 1
            return
        copies = 1
        if self.duplicate_next > 0:
            self.duplicate_next -= 1
            copies = 2
        for _ in range(copies):
            self._push({"type": kind, "movement": movement})

    def _push(self, event: dict[str, Any]) -> None:
        key = max(time.time_ns(), self._last_key + 1)
        self._last_key = key
        # Purge lazily, only when a new event arrives (barkd does the same).
        cutoff = key - BUFFER_TTL_NS
        self._buffer = [(k, e) for k, e in self._buffer if k > cutoff]
        self._buffer.append((key, event))
        for sub in self.subscribers:
            sub.push(event)
        self._changed.set()
        self._changed = asyncio.Event()

    def since(self, since_ns: int | None) -> list[tuple[int, dict[str, Any]]]:
        """Buffered events with key strictly greater than ``since_ns`` (all if None)."""
        if since_ns is None:
            return list(self._buffer)
        return [(k, e) for k, e in self._buffer if k > since_ns]

    async def wait(self, since_ns: int | None, timeout_s: float) -> list[tuple[int, dict[str, Any]]]:
        """Long-poll: return at once if events are buffered, else wait for one or time out."""
        deadline = asyncio.get_running_loop().time() + timeout_s
        while True:
            found = self.since(since_ns)
            if found or self.closed:
                return found
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                return []
            changed = self._changed
            try:
                await asyncio.wait_for(changed.wait(), remaining)
            except TimeoutError:
                return []

    def new_ticket(self) -> str:
        """A single-use WebSocket ticket (64 hex chars), valid 10 minutes (checked lazily)."""
        now = time.monotonic()
        self.tickets = {t: exp for t, exp in self.tickets.items() if exp > now}
        ticket = secrets.token_hex(32)
        self.tickets[ticket] = now + 600
        return ticket

    def redeem_ticket(self, ticket: str | None) -> bool:
        """Consume a ticket; barkd's handshake only checks presence, not the lifetime."""
        return ticket is not None and self.tickets.pop(ticket, None) is not None

    def subscribe(self) -> Subscriber:
        sub = Subscriber()
        self.subscribers.add(sub)
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        self.subscribers.discard(sub)
