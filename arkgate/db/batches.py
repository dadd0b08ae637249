"""Requests that arrive while the previous round trip is out share the next one.

On PostgreSQL and MariaDB a round trip costs the gateway more CPU than the statement costs the server
(on a VM, much of it in the kernel: the socket write, the wake-ups). A ``ScriptBatch`` sends a write
script (``prepared.DriverScript``) for several callers as one transaction; a ``Coalescer`` sends keyed
lookups and claims as one statement (``KeyedScript``: ``... = ANY($1)`` / ``IN (...)``). The first
request finds nothing in flight and goes at once, so an idle gateway adds no latency; under load each
round trip serves every request that arrived meanwhile. SQLite has its own group commit
(``payments/batching.py``) and cheap reads, so neither runs there.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import ARRAY, any_, bindparam
from sqlalchemy.engine import Dialect

from arkgate.db.engine import Database
from arkgate.db.prepared import (
    Compiled,
    DriverScript,
    NotApplicable,
    asyncmy_rows,
    compile_statements,
    give_back,
    prepared_statement,
    run_script,
)


class _Batches:
    """One task sends batch after batch while callers wait; it ends when nobody does."""

    def __init__(self) -> None:
        self._drain: asyncio.Task[None] | None = None

    def _pending(self) -> bool:
        raise NotImplementedError

    async def _send_next(self) -> None:
        raise NotImplementedError

    def _wake(self) -> None:
        if self._drain is None or _from_another_loop(self._drain):
            self._drain = asyncio.create_task(self._send_batches())

    async def _send_batches(self) -> None:
        try:
            while self._pending():
                # One loop turn first: requests already read from their sockets join this batch.
                await asyncio.sleep(0)
                await self._send_next()
        finally:
            if self._drain is asyncio.current_task():
                self._drain = None


class ScriptBatch(_Batches):
    """Callers of one write script that arrive while the previous batch is out share the next round trip.

    The batch is one transaction, with one commit (one log flush), as SQLite's group commit is:
    PostgreSQL runs the statement once per caller in one pipeline (asyncpg's ``fetchmany``: one Sync,
    so all or none); MariaDB gets the copies as one multi-statement query ending in one COMMIT. Each
    copy sees the ones before it: what running them one after another would give. Callers are ordered
    by their ``order`` value (so that instances lock rows in one order), and each finds its row by its
    ``key`` value in the script's ``key`` column. Any error rolls the whole batch back; then every
    caller gets ``NotApplicable`` (and runs the general path) if the connection is known clean, else
    the error, as a lone script's caller would. The script must not hold its own COMMIT.
    """

    def __init__(self, database: Database, script: DriverScript, *, key: str, max_batch: int = 32) -> None:
        super().__init__()
        self.database = database
        self.script = script
        self.key = key
        self.max_batch = max_batch
        self._waiting: list[tuple[Any, Any, list[Any], asyncio.Future[dict[str, Any] | None]]] = []

    async def fetchrow(self, params: Mapping[str, Any], *, key: Any, order: Any) -> dict[str, Any] | None:
        """This caller's row (by ``key``) or None once its batch committed; ``NotApplicable`` if it cannot run."""
        compiled = self.script.compiled(self.database.engine.dialect)
        if compiled is None or self.database.is_sqlite:
            raise NotApplicable
        waiter: asyncio.Future[dict[str, Any] | None] = asyncio.get_running_loop().create_future()
        self._waiting.append((order, key, compiled.arguments(params), waiter))
        self._wake()
        return await waiter

    def _pending(self) -> bool:
        return bool(self._waiting)

    async def _send_next(self) -> None:
        batch = [entry for entry in self._waiting[: self.max_batch] if _awaited_here(entry[3])]
        del self._waiting[: self.max_batch]
        compiled = self.script.compiled(self.database.engine.dialect)
        assert compiled is not None  # built once, before any caller could wait (``fetchrow``)
        if batch:
            batch.sort(key=lambda entry: entry[0])
            await self._send(compiled, [(key, arguments, waiter) for _, key, arguments, waiter in batch])

    async def _send(self, compiled: Compiled, batch: list[tuple[Any, list[Any], asyncio.Future[Any]]]) -> None:
        held = await self.database.held.acquire()
        try:
            if self.database.engine.dialect.driver == "asyncpg":
                ready = await prepared_statement(held, compiled.sql)
                rows = list(await ready.fetchmany([arguments for _, arguments, _ in batch]))
            else:
                sql = ";\n".join([compiled.sql] * len(batch) + ["COMMIT"])
                values = [value for _, arguments, _ in batch for value in arguments]
                rows = await asyncmy_rows(held.driver, sql, values)
        except BaseException as error:
            clean = await give_back(self.database, held, error)  # the batch was rolled back if clean
            for _, _, waiter in batch:
                if waiter.done():
                    continue
                if clean:
                    waiter.set_exception(NotApplicable())
                elif isinstance(error, Exception):
                    waiter.set_exception(error)
                else:
                    waiter.cancel()  # cancelled mid-way, as a lone script's caller would be
            if not isinstance(error, Exception):
                raise
            return
        await give_back(self.database, held, None)
        found = {row[self.key]: row for row in (compiled.row(raw) for raw in rows) if row is not None}
        for key, _, waiter in batch:
            if not waiter.done():
                waiter.set_result(found.get(key))


def _from_another_loop(task: asyncio.Task[None]) -> bool:
    """A batch task of an event loop that is gone (a Database used by one loop after another: tests)."""
    return task.get_loop() is not asyncio.get_running_loop()


def _awaited_here(waiter: asyncio.Future[Any]) -> bool:
    """Still wanted, by a caller on this loop (callers of a loop that is gone are dropped)."""
    return not waiter.done() and waiter.get_loop() is asyncio.get_running_loop()


class KeyedScript:
    """A statement over many keys at once, whose rows carry their key: one round trip for a batch.

    ``build(dialect, matches)`` returns the statements; ``matches(column)`` is the condition "column is
    one of the keys": ``= ANY($1)`` with one array parameter on PostgreSQL (one prepared statement for
    every batch size), ``IN (...)`` with a parameter per key on MariaDB (compiled once per size).
    """

    def __init__(self, build: Callable[[Dialect, Callable[[Any], Any]], tuple[Any, ...] | None], key: str) -> None:
        self._build = build
        self.key = key
        self._compiled: dict[int, Compiled | None] = {}

    def compiled(self, dialect: Dialect, size: int) -> Compiled | None:
        """For ``size`` keys; None where it does not run (SQLite: its reads are cheap already)."""
        if dialect.driver not in ("asyncpg", "asyncmy") or dialect.server_version_info is None:
            return None  # or not connected yet: what the dialect supports is unknown
        size = 0 if dialect.name == "postgresql" else size
        if size not in self._compiled:
            statements = self._build(dialect, _matcher(dialect, size))
            self._compiled[size] = None if statements is None else compile_statements(statements, dialect)
        return self._compiled[size]


def _matcher(dialect: Dialect, size: int) -> Callable[[Any], Any]:
    def matches(column: Any) -> Any:
        if dialect.name == "postgresql":
            return column == any_(bindparam("p_keys", type_=ARRAY(column.type)))
        return column.in_([bindparam(f"p_keys_{i}", type_=column.type) for i in range(size)])

    return matches


async def fetch_keyed(database: Database, script: KeyedScript, keys: list[Any]) -> dict[Any, list[dict[str, Any]]]:
    """The script's rows for ``keys``, by key; ``NotApplicable`` if it cannot run here."""
    compiled = script.compiled(database.engine.dialect, len(keys))
    if compiled is None:
        raise NotApplicable
    if database.engine.dialect.name == "postgresql":
        params: dict[str, Any] = {"p_keys": keys}
    else:
        params = {f"p_keys_{i}": key for i, key in enumerate(keys)}
    found: dict[Any, list[dict[str, Any]]] = {}
    for raw in await run_script(database, compiled, compiled.arguments(params)):
        row = compiled.row(raw)
        assert row is not None
        found.setdefault(row[script.key], []).append(row)
    return found


class Coalescer(_Batches):
    """Lookups by key that arrive while the previous batch is out go together in the next one.

    The first request finds nothing in flight and goes at once (no added latency when idle); under
    load each round trip serves every request that arrived meanwhile, so the driver's per-query CPU
    is paid once per batch. Every lookup still starts after its request arrived, so it sees every
    write committed before. ``claim``: a row answers only the first waiter for its key (the others
    get None), for statements whose row is a claim (a DELETE ... RETURNING); otherwise waiters for
    the same key share the row.
    """

    def __init__(self, database: Database, script: KeyedScript, *, claim: bool, max_batch: int = 64) -> None:
        super().__init__()
        self.database = database
        self.script = script
        self.claim = claim
        self.max_batch = max_batch
        self._waiting: dict[Any, list[asyncio.Future[dict[str, Any] | None]]] = {}

    async def fetch(self, key: Any) -> dict[str, Any] | None:
        """The row for ``key`` or None; ``NotApplicable`` where the script cannot run."""
        if self.script.compiled(self.database.engine.dialect, 1) is None:
            raise NotApplicable
        waiter: asyncio.Future[dict[str, Any] | None] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(key, []).append(waiter)
        self._wake()
        return await waiter

    def _pending(self) -> bool:
        return bool(self._waiting)

    async def _send_next(self) -> None:
        batch = {}
        for key in list(itertools.islice(self._waiting, self.max_batch)):
            # A lookup cancelled before its batch went is not sent: a claim nobody hears must not happen.
            waiters = [waiter for waiter in self._waiting.pop(key) if _awaited_here(waiter)]
            if waiters:
                batch[key] = waiters
        if not batch:
            return
        try:
            found = await fetch_keyed(self.database, self.script, list(batch))
        except BaseException as error:
            for waiters in batch.values():
                for waiter in waiters:
                    if not waiter.done():
                        waiter.set_exception(error if isinstance(error, Exception) else NotApplicable())
            if not isinstance(error, Exception):
                raise
            return
        for key, waiters in batch.items():
            row = found[key][0] if key in found else None
            for i, waiter in enumerate(waiters):
                if not waiter.done():
                    waiter.set_result(row if i == 0 or not self.claim else None)
