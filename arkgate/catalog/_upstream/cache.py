"""An in-memory TTL cache with single-flight loading, one per app through ``Services``."""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from arkgate.settings import Settings


class TTLCache:
    """Maps keys to values that expire ``ttl_s`` seconds after they were loaded.

    ``get_or_load`` holds a per-key lock while loading, so concurrent callers asking
    for the same key share one upstream call. Failures are not cached: the next
    caller tries again. The oldest entries are dropped past ``max_entries``.
    """

    def __init__(self, *, max_entries: int = 1024, clock: Callable[[], float] = time.monotonic) -> None:
        self._entries: OrderedDict[Hashable, tuple[float, Any]] = OrderedDict()
        # Per-key lock and the number of callers holding or awaiting it, so idle locks are dropped.
        self._locks: dict[Hashable, tuple[asyncio.Lock, int]] = {}
        self._max_entries = max_entries
        self._clock = clock
        self.hits = 0
        self.misses = 0

    def get(self, key: Hashable) -> Any | None:
        """The cached value, or None when missing or expired."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        expires_at, value = entry
        if expires_at <= self._clock():
            self._entries.pop(key, None)
            return None
        return value

    def put(self, key: Hashable, value: Any, ttl_s: float) -> None:
        if ttl_s <= 0:
            return
        self._entries[key] = (self._clock() + ttl_s, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)

    async def get_or_load(self, key: Hashable, loader: Callable[[], Awaitable[Any]], ttl_s: float) -> Any:
        """Return the cached value for ``key`` or load, cache and return it."""
        value = self.get(key)
        if value is not None:
            self.hits += 1
            return value
        lock, users = self._locks.get(key, (asyncio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                # Another caller may have loaded it while we waited for the lock.
                value = self.get(key)
                if value is not None:
                    self.hits += 1
                    return value
                self.misses += 1
                value = await loader()
                self.put(key, value, ttl_s)
                return value
        finally:
            lock, users = self._locks[key]
            if users <= 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)

    def clear(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


def cache_factory(max_entries: int = 1024) -> Callable[[Settings], TTLCache]:
    """A distinct ``Services`` factory per call site: each endpoint module keeps its own cache.

    Use at module level: ``_cache = cache_factory()`` then ``ctx.services.get(_cache)``.
    """

    def make(settings: Settings) -> TTLCache:
        return TTLCache(max_entries=max_entries)

    return make
