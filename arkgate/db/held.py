"""A few pooled connections the hot statements keep checked out between uses.

Checking a connection out of SQLAlchemy's async pool and back in costs about 50 us of CPU (greenlet
switches, pool events), and a paid call's charge and settlement would pay it twice; for the driver
round trip itself (``db/prepared.py``) that is the biggest cost left. A held connection is taken with a
list pop instead. They remain the engine's connections: checked out through its pool (connect
arguments, size limit, its checkout test), and handed back to it when there are more than ``keep``,
when held for ``return_after_s`` (so the pool's recycling and ``Database.drop_connections`` reach
them), or when the database is disposed. What the pool's checkout test does for a connection idle a
while, ``acquire`` does for a held one: the free closed-by-server check always, a round trip only after
``idle_check_s`` without use.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine


@dataclass(eq=False)
class Held:
    connection: AsyncConnection
    driver: Any  # the driver's own connection (asyncpg / asyncmy)
    info: dict[str, Any]  # the pool record's info: lives and dies with the server connection
    taken_at: float
    used_at: float


class HeldConnections:
    def __init__(self, engine: AsyncEngine, *, keep: int, idle_check_s: float, return_after_s: float = 60.0) -> None:
        self.engine = engine
        self.keep = keep
        self.idle_check_s = idle_check_s
        self.return_after_s = return_after_s
        self.idle_checks = 0  # round trips spent testing idle held connections (the tests read it)
        self._idle: list[Held] = []
        self._dropped_at = float("-inf")
        self._closed = False

    async def acquire(self) -> Held:
        """A connection nobody else uses until ``release`` or ``discard``."""
        now = time.monotonic()
        while self._idle:
            held = self._idle.pop()  # the most recently used: the likeliest alive
            if held.taken_at <= self._dropped_at or now - held.taken_at > self.return_after_s:
                await held.connection.close()  # back to the pool, which recycles or replaces it
                continue
            idle_s = now - held.used_at
            if closed_by_server(held.driver) or (idle_s >= self.idle_check_s and not await self._alive(held)):
                await self.discard(held)
                continue
            return held
        connection = await self.engine.connect()
        try:
            pooled = await connection.get_raw_connection()
        except BaseException:
            await connection.close()
            raise
        return Held(connection, pooled.driver_connection, pooled.info, now, now)

    async def release(self, held: Held) -> None:
        """Done with it, in a clean state: kept for the next hot statement, or back to the pool."""
        held.used_at = time.monotonic()
        if len(self._idle) < self.keep and held.taken_at > self._dropped_at and not self._closed:
            self._idle.append(held)
        else:
            await held.connection.close()

    async def discard(self, held: Held, error: BaseException | None = None) -> None:
        """Never use this connection again (failed, cancelled mid-statement, or dead)."""
        await held.connection.invalidate(error if isinstance(error, Exception) else None)
        await held.connection.close()

    def drop(self) -> None:
        """Hand every connection held now back to the pool at its next use (after ``drop_connections``)."""
        self._dropped_at = time.monotonic()

    async def aclose(self) -> None:
        """Back to the pool, all of them; one in use then goes back when released."""
        self._closed = True
        idle, self._idle = self._idle, []
        for held in idle:
            await held.connection.close()

    async def _alive(self, held: Held) -> bool:
        self.idle_checks += 1
        try:
            if hasattr(held.driver, "ping"):  # asyncmy
                await held.driver.ping(reconnect=False)
            else:  # asyncpg
                await held.driver.execute("SELECT 1")
        except Exception:
            return False
        return True


def closed_by_server(driver: Any) -> bool:
    """What the driver already knows, for free: the server's FIN reaches it within one loop iteration.

    asyncpg has ``is_closed()``; asyncmy's transport is closing once the socket hit EOF (a
    ``KILL``, a server restart).
    """
    is_closed = getattr(driver, "is_closed", None)
    if callable(is_closed):
        return bool(is_closed())
    transport = getattr(driver, "_transport", None)
    return transport is not None and bool(transport.is_closing())
