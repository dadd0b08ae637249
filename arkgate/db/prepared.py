"""SQLAlchemy Core statements sent on the raw async driver in one round trip.

For the few hot statements (a paid call's charge and settlement) SQLAlchemy's per-execution work
(result metadata, the async adapter's cursor, a transaction's BEGIN and COMMIT round trips) costs
more than the statements themselves. A ``DriverScript`` compiles Core statements once for the
engine's dialect; ``fetchrow`` takes one of the connections the database holds for them
(``db/held.py``: the engine's own, kept checked out between uses) and sends them in one round trip:

- asyncpg (PostgreSQL): one statement, prepared the first time on each connection and kept in the
  connection's pool record, so it lives and dies with that connection. It runs outside any
  transaction: the server commits it on its own.
- SQLite: reads only (a token lookup), on a stdlib ``sqlite3`` connection used on the event loop's
  thread: one indexed row costs microseconds, where aiosqlite's thread hop and SQLAlchemy's layers
  cost hundreds. In WAL mode a reader never waits for the writer; a busy database (a rare WAL
  recovery) fails fast with ``NotApplicable`` instead of blocking the loop, and the general path runs.
- asyncmy (MariaDB): the statements as one multi-statement query (the engine enables
  CLIENT_MULTI_STATEMENTS); the script ends with its own COMMIT. asyncmy has no server-side
  prepared statements, so the SQL is compiled once per process and bound on the client.

On the servers, requests that arrive while the previous round trip is out share the next one: a
``Coalescer`` sends keyed lookups and claims (``... = ANY($1)`` / ``IN (...)``), a ``ScriptBatch``
sends a write script for several callers as one transaction. Under load the driver's CPU per
round trip (a good part of it in the kernel, for the socket) is then paid once per batch.
"""

from __future__ import annotations

import asyncio
import itertools
import sqlite3
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ARRAY, any_, bindparam
from sqlalchemy.engine import Dialect
from sqlalchemy.sql.compiler import SQLCompiler

from arkgate.db.engine import Database
from arkgate.db.held import Held, closed_by_server

_PREPARED = "arkgate.prepared"
_NOT_BUILT: Any = object()


@dataclass(frozen=True)
class Compiled:
    sql: str
    binds: tuple[tuple[str, Callable[[Any], Any] | None], ...]
    # The returned columns that SQLAlchemy would convert (a TypeDecorator's process_result_value).
    results: tuple[tuple[str, Callable[[Any], Any]], ...]
    # Values the statement carries itself (a literal in an expression), for binds the caller does not name.
    constants: Mapping[str, Any]

    def arguments(self, params: Mapping[str, Any]) -> list[Any]:
        values = ((name, params[name] if name in params else self.constants[name], c) for name, c in self.binds)
        return [value if convert is None else convert(value) for _, value, convert in values]

    def row(self, raw: Any) -> dict[str, Any] | None:
        if raw is None:
            return None
        row = dict(raw.items())
        for name, convert in self.results:
            row[name] = convert(row[name])
        return row


class DriverScript:
    """Statements for one round trip, built per dialect by ``build`` (None: not on this database)."""

    def __init__(self, build: Callable[[Dialect], tuple[Any, ...] | None]) -> None:
        self._build = build
        self._compiled: Compiled | None = _NOT_BUILT

    def compiled(self, dialect: Dialect) -> Compiled | None:
        if self._compiled is not _NOT_BUILT:
            return self._compiled
        if dialect.server_version_info is None and dialect.name != "sqlite":
            return None  # the engine has not connected yet: what the dialect supports is unknown
        statements = self._build(dialect) if dialect.driver in ("asyncpg", "asyncmy", "aiosqlite") else None
        self._compiled = None if statements is None else compile_statements(statements, dialect)
        return self._compiled


def compile_statements(statements: tuple[Any, ...], dialect: Dialect, column_keys: list[str] | None = None) -> Compiled:
    """``column_keys``: an INSERT's columns, from its parameters (as ``Connection.execute`` does)."""
    sql: list[str] = []
    binds: list[tuple[str, Callable[[Any], Any] | None]] = []
    results: list[tuple[str, Callable[[Any], Any]]] = []
    constants: dict[str, Any] = {}
    for statement in statements:
        compiled = statement.compile(dialect=dialect, column_keys=column_keys)
        assert isinstance(compiled, SQLCompiler)
        sql.append(compiled.string)
        constants.update((name, bind.value) for name, bind in compiled.binds.items() if not bind.required)
        # Each bind converted exactly as SQLAlchemy would (a TypeDecorator's process_bind_param included).
        # ``dialect_impl``: the type SQLAlchemy itself would use on this dialect (its variant, its own impl).
        binds.extend(
            (name, compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect))
            for name in compiled.positiontup or ()
        )
        for column in getattr(statement, "exported_columns", ()):
            convert = column.type.dialect_impl(dialect).result_processor(dialect, None)
            if convert is not None:
                results.append((column.name, convert))
    return Compiled(sql=";\n".join(sql), binds=tuple(binds), results=tuple(results), constants=constants)


class NotApplicable(Exception):
    """The script does not run on this database (or not yet): use the general path."""


async def fetchrow(database: Database, script: DriverScript, params: Mapping[str, Any]) -> dict[str, Any] | None:
    """The first row the script returns (by column name) or None; ``NotApplicable`` if it cannot run here."""
    compiled = script.compiled(database.engine.dialect)
    if compiled is None:
        raise NotApplicable
    arguments = compiled.arguments(params)
    if database.is_sqlite:
        return compiled.row(_sqlite_fetchrow(database, compiled.sql, arguments))
    rows = await _run(database, compiled, arguments, many=False)
    return compiled.row(rows[0] if rows else None)


async def _run(database: Database, compiled: Compiled, arguments: list[Any], *, many: bool) -> list[Any]:
    """The script's rows (the first only unless ``many``) on a held connection of the server database."""
    held = await database.held.acquire()
    driver = held.driver
    try:
        if database.engine.dialect.driver == "asyncpg":
            prepared: dict[str, Any] = held.info.setdefault(_PREPARED, {})
            ready = prepared.get(compiled.sql)
            if ready is None:
                ready = prepared[compiled.sql] = await driver.prepare(compiled.sql)
            if many:
                rows = list(await ready.fetch(*arguments))
            else:
                row = await ready.fetchrow(*arguments)
                rows = [] if row is None else [row]
        else:
            rows = await _asyncmy_fetch(driver, compiled.sql, arguments)
    except BaseException as error:
        await _give_back(database, held, error)
        raise
    await _give_back(database, held, None)
    return rows


async def _give_back(database: Database, held: Held, error: BaseException | None) -> bool:
    """Return the connection after use; after ``error``, only if it is known clean. True if it was."""
    if error is None:
        await database.held.release(held)
        return True
    # asyncpg: a failed statement outside a transaction leaves nothing open. asyncmy: a failed
    # script may leave its transaction open. One cancelled mid-way may leave the protocol in an
    # unknown state on either driver.
    clean = (
        isinstance(error, Exception)
        and not _connection_lost(held.driver, error)
        and (database.engine.dialect.driver == "asyncpg" or await _rolled_back(held.driver))
    )
    if clean:
        await database.held.release(held)
    else:
        # Never handed out again; the caller sees the error (the statement may or may not have
        # committed: an in-flight call is left to the sweep).
        await database.held.discard(held, error)
    return clean


class ScriptBatch:
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
        self.database = database
        self.script = script
        self.key = key
        self.max_batch = max_batch
        self._waiting: list[tuple[Any, Any, list[Any], asyncio.Future[dict[str, Any] | None]]] = []
        self._drain: asyncio.Task[None] | None = None

    async def fetchrow(self, params: Mapping[str, Any], *, key: Any, order: Any) -> dict[str, Any] | None:
        """This caller's row (by ``key``) or None once its batch committed; ``NotApplicable`` if it cannot run."""
        compiled = self.script.compiled(self.database.engine.dialect)
        if compiled is None or self.database.is_sqlite:
            raise NotApplicable
        waiter: asyncio.Future[dict[str, Any] | None] = asyncio.get_running_loop().create_future()
        self._waiting.append((order, key, compiled.arguments(params), waiter))
        if self._drain is None or _from_another_loop(self._drain):
            self._drain = asyncio.create_task(self._send_batches(compiled))
        return await waiter

    async def _send_batches(self, compiled: Compiled) -> None:
        try:
            while self._waiting:
                # One loop turn first: requests already read from their sockets join this batch.
                await asyncio.sleep(0)
                batch = [entry for entry in self._waiting[: self.max_batch] if _awaited_here(entry[3])]
                del self._waiting[: self.max_batch]
                if batch:
                    batch.sort(key=lambda entry: entry[0])
                    await self._send(compiled, [(key, arguments, waiter) for _, key, arguments, waiter in batch])
        finally:
            if self._drain is asyncio.current_task():
                self._drain = None

    async def _send(self, compiled: Compiled, batch: list[tuple[Any, list[Any], asyncio.Future[Any]]]) -> None:
        held = await self.database.held.acquire()
        try:
            if self.database.engine.dialect.driver == "asyncpg":
                prepared: dict[str, Any] = held.info.setdefault(_PREPARED, {})
                ready = prepared.get(compiled.sql)
                if ready is None:
                    ready = prepared[compiled.sql] = await held.driver.prepare(compiled.sql)
                rows = list(await ready.fetchmany([arguments for _, arguments, _ in batch]))
            else:
                sql = ";\n".join([compiled.sql] * len(batch) + ["COMMIT"])
                values = [value for _, arguments, _ in batch for value in arguments]
                rows = await _asyncmy_rows(held.driver, sql, values)
        except BaseException as error:
            clean = await _give_back(self.database, held, error)  # the batch was rolled back if clean
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
        await _give_back(self.database, held, None)
        found = {row[self.key]: row for row in (compiled.row(raw) for raw in rows) if row is not None}
        for key, _, waiter in batch:
            if not waiter.done():
                waiter.set_result(found.get(key))


async def _asyncmy_rows(driver: Any, sql: str, arguments: list[Any]) -> list[Any]:
    """The rows of every result set the statements return, in order."""
    from asyncmy.cursors import DictCursor

    rows: list[Any] = []
    async with driver.cursor(DictCursor) as cursor:
        await cursor.execute(sql, arguments)
        while True:
            if cursor.description is not None:
                rows.extend(await cursor.fetchall())
            if not await cursor.nextset():
                break
    return rows


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
    for raw in await _run(database, compiled, compiled.arguments(params), many=True):
        row = compiled.row(raw)
        assert row is not None
        found.setdefault(row[script.key], []).append(row)
    return found


class Coalescer:
    """Lookups by key that arrive while the previous batch is out go together in the next one.

    The first request finds nothing in flight and goes at once (no added latency when idle); under
    load each round trip serves every request that arrived meanwhile, so the driver's per-query CPU
    is paid once per batch. Every lookup still starts after its request arrived, so it sees every
    write committed before. ``claim``: a row answers only the first waiter for its key (the others
    get None), for statements whose row is a claim (a DELETE ... RETURNING); otherwise waiters for
    the same key share the row.
    """

    def __init__(self, database: Database, script: KeyedScript, *, claim: bool, max_batch: int = 64) -> None:
        self.database = database
        self.script = script
        self.claim = claim
        self.max_batch = max_batch
        self._waiting: dict[Any, list[asyncio.Future[dict[str, Any] | None]]] = {}
        self._drain: asyncio.Task[None] | None = None

    async def fetch(self, key: Any) -> dict[str, Any] | None:
        """The row for ``key`` or None; ``NotApplicable`` where the script cannot run."""
        if self.script.compiled(self.database.engine.dialect, 1) is None:
            raise NotApplicable
        waiter: asyncio.Future[dict[str, Any] | None] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(key, []).append(waiter)
        if self._drain is None or _from_another_loop(self._drain):
            self._drain = asyncio.create_task(self._send_batches())
        return await waiter

    async def _send_batches(self) -> None:
        try:
            while self._waiting:
                # One loop turn first: requests already read from their sockets join this batch.
                await asyncio.sleep(0)
                batch = {}
                for key in list(itertools.islice(self._waiting, self.max_batch)):
                    # A lookup cancelled before its batch went is not sent: a claim nobody hears must not happen.
                    waiters = [waiter for waiter in self._waiting.pop(key) if _awaited_here(waiter)]
                    if waiters:
                        batch[key] = waiters
                if not batch:
                    continue
                try:
                    found = await fetch_keyed(self.database, self.script, list(batch))
                except BaseException as error:
                    for waiters in batch.values():
                        for waiter in waiters:
                            if not waiter.done():
                                waiter.set_exception(error if isinstance(error, Exception) else NotApplicable())
                    if not isinstance(error, Exception):
                        raise
                    continue
                for key, waiters in batch.items():
                    row = found[key][0] if key in found else None
                    for i, waiter in enumerate(waiters):
                        if not waiter.done():
                            waiter.set_result(row if i == 0 or not self.claim else None)
        finally:
            if self._drain is asyncio.current_task():
                self._drain = None


def _sqlite_fetchrow(database: Database, sql: str, arguments: list[Any]) -> Any:
    if database.sqlite_path is None:
        raise NotApplicable  # in-memory: another connection would see another database
    reader = database.sqlite_reader
    try:
        if reader is None:
            # Not tied to one thread: a Database may serve event loops in several (tests, benches);
            # SQLite's default serialized mode makes the one connection safe to share.
            reader = sqlite3.connect(database.sqlite_path, timeout=0.05, check_same_thread=False)
            reader.execute("PRAGMA query_only=ON")  # this connection only ever reads
            database.sqlite_reader = reader
        cursor = reader.execute(sql, arguments)
        row = cursor.fetchone()
        return None if row is None else dict(zip((d[0] for d in cursor.description), row, strict=True))
    except sqlite3.Error as error:  # busy, or the file went away: the general path decides
        raise NotApplicable from error


async def _asyncmy_fetch(driver: Any, sql: str, arguments: list[Any]) -> list[Any]:
    """The rows of the script's (one) result set."""
    from asyncmy.cursors import DictCursor

    rows: list[Any] = []
    async with driver.cursor(DictCursor) as cursor:
        await cursor.execute(sql, arguments)
        while True:  # read every result, so the connection is ready for its next query
            if cursor.description is not None:
                rows = list(await cursor.fetchall()) or rows
            if not await cursor.nextset():
                break
    return rows


async def _rolled_back(driver: Any) -> bool:
    try:
        await driver.rollback()
    except Exception:
        return False
    return True


def _connection_lost(driver: Any, error: BaseException) -> bool:
    return isinstance(error, OSError | ConnectionError) or closed_by_server(driver)
