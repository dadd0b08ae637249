"""A lock held across instances: a row in ``leases``, taken by one holder at a time.

Wallet-moving operator actions (refresh, sweep, exits) may be asked of any instance; the wallet
lock makes them run one at a time across all of them, as the in-process lock did for one. A
holder that dies leaves the row to expire after ``ttl_s``.
"""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from types import TracebackType

from sqlalchemy import delete, insert, update
from sqlalchemy.exc import IntegrityError, OperationalError

from arkgate.cluster.leader import instance_id
from arkgate.db import tables as t
from arkgate.db.engine import Database, utcnow
from arkgate.errors import ConflictError

RETRY_S = 0.1
MYSQL_DEADLOCK = 1213


class DatabaseMutex:
    def __init__(self, database: Database, name: str, *, ttl_s: float = 300.0, wait_s: float = 60.0) -> None:
        self.database = database
        self.name = name
        self.ttl_s = ttl_s
        self.wait_s = wait_s
        self.holder = instance_id()
        self._local = asyncio.Lock()  # coroutines of this process queue here, not on the database

    async def __aenter__(self) -> DatabaseMutex:
        await self._local.acquire()
        try:
            deadline = time.monotonic() + self.wait_s
            while not await self._take():
                if time.monotonic() > deadline:
                    raise ConflictError("another gateway instance is moving the wallet's funds; try again shortly")
                await asyncio.sleep(RETRY_S)
        except BaseException:
            self._local.release()
            raise
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            async with self.database.write() as conn:
                await conn.execute(
                    delete(t.leases).where(t.leases.c.name == self.name, t.leases.c.holder == self.holder)
                )
        finally:
            self._local.release()

    async def _take(self) -> bool:
        now = utcnow()
        expires = now + timedelta(seconds=self.ttl_s)
        async with self.database.write() as conn:
            taken = await conn.execute(
                update(t.leases)
                .where(t.leases.c.name == self.name, t.leases.c.expires_at < now)
                .values(holder=self.holder, term=t.leases.c.term + 1, expires_at=expires, acquired_at=now)
            )
            if taken.rowcount == 1:
                return True
        try:
            async with self.database.write() as conn:
                await conn.execute(
                    insert(t.leases).values(
                        name=self.name, holder=self.holder, term=1, expires_at=expires, acquired_at=now
                    )
                )
        except IntegrityError:
            return False
        except OperationalError as error:
            # InnoDB: two inserters waiting on a holder's row that is then released both get its shared
            # lock and deadlock upgrading it; the server rolls one back. That one simply lost this round.
            if _error_code(error) != MYSQL_DEADLOCK:
                raise
            return False
        return True


def _error_code(error: OperationalError) -> object:
    args = getattr(error.orig, "args", ())
    return args[0] if args else None
