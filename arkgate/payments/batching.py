"""Group commit on SQLite: many small ledger writes in one transaction, one sync to disk.

SQLite has one writer, so concurrent charges queue for it anyway. Instead of one
transaction (and several driver thread hops) per call, the batcher applies every
operation waiting at that moment in one transaction on a dedicated stdlib ``sqlite3``
connection (``db/direct.py``: the statements compiled once, the transaction kept by hand).
The operations are the same functions the other databases run through
``AsyncConnection.run_sync`` (``charging.py``): the money rules exist once, only the commit
is shared.

Only what may wait runs in a worker thread: COMMIT (the sync to disk), and BEGIN IMMEDIATE when
another process holds the write lock (tried first on the loop with no busy wait: the lock is free
unless another process writes to the file). The statements in between run on the event loop's
thread: holding the write lock in WAL mode, they never wait, and they take microseconds each. Run
in a worker thread, their Python half contended with the event loop for the GIL, handing it back
and forth around every statement, which cost more than the statements themselves.

An operation that may fail after writing (a charge claiming an Idempotency-Key) runs in its
own SAVEPOINT, so its failure rolls back only itself. The others may fail only with an
``ArkgateError`` raised before they write (a refused charge), which needs no savepoint; any
other exception rolls the whole batch back, and the batch is run again with a savepoint
per operation, so one broken operation never takes the others with it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar, cast

from sqlalchemy import create_engine, event, exc
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import StaticPool

from arkgate.db.direct import DirectConnection
from arkgate.db.engine import SQLITE_BUSY_TIMEOUT_S, sqlite_pragmas
from arkgate.errors import ArkgateError

MAX_BATCH = 256

T = TypeVar("T")
Operation = Callable[[Connection], Any]


def sync_sqlite_engine(path: str, *, synchronous: str = "FULL") -> Engine:
    """A sync engine on the same file, tuned like the async one, for the batches' one connection.

    pysqlite's own transaction handling is switched off (``isolation_level = None``): the batches
    emit BEGIN IMMEDIATE, COMMIT and SAVEPOINTs themselves (``db/direct.py``).
    """
    engine = create_engine(
        f"sqlite:///{path}",
        poolclass=StaticPool,
        connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_S},
    )

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        sqlite_pragmas(dbapi_connection, synchronous=synchronous)  # the async engine's own settings

    return engine


class GroupCommit:
    """Runs ledger operations ``fn(connection) -> result`` in shared SQLite transactions.

    The operations get a ``DirectConnection`` (``db/direct.py``): they may execute only statements
    that live as long as the process (module constants, as ``charging``'s rules are).
    """

    def __init__(self, path: str, write_lock: asyncio.Lock, *, synchronous: str = "FULL") -> None:
        self._path = path
        self._synchronous = synchronous
        self._lock = write_lock
        self._pending: list[tuple[Operation, bool, asyncio.Future[Any]]] = []
        self._worker: asyncio.Task[None] | None = None
        self._engine: Engine | None = None
        self._held: Any = None  # the engine's one connection, checked out for good
        self._conn: DirectConnection | None = None

    async def run(self, operation: Callable[[Connection], T], *, savepoint: bool = False) -> T:
        """The operation's result once its batch has committed; its exception if it raised.

        ``savepoint``: the operation may raise after writing (see the module docstring).
        """
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._pending.append((operation, savepoint, future))
        if self._worker is None or self._worker.done():
            self._worker = asyncio.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        while self._pending:
            batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
            try:
                async with self._lock:
                    outcomes = await self._apply([(op, sp) for op, sp, _ in batch])
            except BaseException as exc:  # the whole batch failed: nothing was committed
                for _, _, future in batch:
                    if not future.done():
                        future.set_exception(exc if isinstance(exc, Exception) else RuntimeError("cancelled"))
                if not isinstance(exc, Exception):
                    raise
                continue
            for (_, _, future), (ok, value) in zip(batch, outcomes, strict=True):
                if future.done():
                    continue
                if ok:
                    future.set_result(value)
                else:
                    future.set_exception(value)

    def close(self) -> None:
        if self._held is not None:
            self._held.close()
            self._held = self._conn = None
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    async def _apply(self, batch: list[tuple[Operation, bool]]) -> list[tuple[bool, Any]]:
        conn = await self._begin()
        try:
            try:
                outcomes = self._apply_once(conn, batch, every_savepoint=False)
            except _UncleanFailure:
                conn.rollback()
                conn = await self._begin()
                outcomes = self._apply_once(conn, batch, every_savepoint=True)
            await _in_thread(conn.commit)
            return outcomes
        finally:
            conn.rollback()  # whatever did not commit

    async def _begin(self) -> DirectConnection:
        """The one connection, in a transaction holding the write lock.

        BEGIN IMMEDIATE is tried on the loop with a busy timeout of 0: it takes the free lock at once
        (always, unless another process writes to the file) or fails at once, and then
        ``_begin_waiting`` waits for it in a worker thread.
        """
        conn = self._conn
        if conn is not None:  # the first connection (its pragmas may wait on the file) is made in the thread
            try:
                conn.begin()
                return conn
            except exc.OperationalError:  # "database is locked"
                pass
        return await _in_thread(self._begin_waiting)

    def _begin_waiting(self) -> DirectConnection:
        """As ``_begin``, waiting up to SQLite's busy timeout for the lock (in a worker thread)."""
        if self._conn is None:
            self._engine = sync_sqlite_engine(self._path, synchronous=self._synchronous)
            self._held = self._engine.raw_connection()
            self._conn = DirectConnection(self._held.driver_connection, self._engine.dialect)
        conn = self._conn
        conn.dbapi.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_S * 1000}")
        try:
            conn.begin()
        finally:
            conn.dbapi.execute("PRAGMA busy_timeout=0")
        return conn

    def _apply_once(
        self, direct: DirectConnection, batch: list[tuple[Operation, bool]], *, every_savepoint: bool
    ) -> list[tuple[bool, Any]]:
        outcomes: list[tuple[bool, Any]] = []
        conn = cast(Connection, direct)  # what the rules are typed to take
        for operation, savepoint in batch:
            if savepoint or every_savepoint:
                try:
                    with direct.begin_nested():
                        outcomes.append((True, operation(conn)))
                except Exception as exc:  # rolled back to its savepoint; the others still commit
                    outcomes.append((False, exc))
                continue
            try:
                outcomes.append((True, operation(conn)))
            except ArkgateError as exc:  # raised before writing anything (a refusal)
                outcomes.append((False, exc))
            except Exception as exc:
                raise _UncleanFailure from exc  # may have written part: roll the batch back
        return outcomes


async def _in_thread(function: Callable[[], T]) -> T:
    """``function`` in a worker thread; if cancelled meanwhile, only once it has returned.

    The connection is not shared between threads: closing it on the loop while the thread still
    commits on it must not happen.
    """
    future = asyncio.get_running_loop().run_in_executor(None, function)
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        await asyncio.wait([future])
        raise


class _UncleanFailure(Exception):
    """An operation without a savepoint failed in a way that may have left a partial write."""
