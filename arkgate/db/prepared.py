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

``db/batches.py`` sends the scripts of requests that arrive together in one round trip.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Dialect
from sqlalchemy.sql.compiler import SQLCompiler

from arkgate.db.engine import Database
from arkgate.db.held import Held, closed_by_server

_PREPARED = "arkgate.prepared"  # in a pooled connection's info: its prepared statements
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
        get = {**self.constants, **params}.__getitem__ if self.constants else params.__getitem__
        return [get(name) if convert is None else convert(get(name)) for name, convert in self.binds]

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
    rows = await run_script(database, compiled, arguments)
    return compiled.row(rows[0] if rows else None)


async def run_script(database: Database, compiled: Compiled, arguments: list[Any]) -> list[Any]:
    """The script's rows, sent once on a held connection of the server database."""
    held = await database.held.acquire()
    try:
        if database.engine.dialect.driver == "asyncpg":
            rows = list(await (await prepared_statement(held, compiled.sql)).fetch(*arguments))
        else:
            rows = await asyncmy_rows(held.driver, compiled.sql, arguments)
    except BaseException as error:
        await give_back(database, held, error)
        raise
    await give_back(database, held, None)
    return rows


async def prepared_statement(held: Held, sql: str) -> Any:
    """asyncpg: ``sql`` prepared on this connection, the first time only (kept in its pool record)."""
    prepared: dict[str, Any] = held.info.setdefault(_PREPARED, {})
    ready = prepared.get(sql)
    if ready is None:
        ready = prepared[sql] = await held.driver.prepare(sql)
    return ready


async def give_back(database: Database, held: Held, error: BaseException | None) -> bool:
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


async def asyncmy_rows(driver: Any, sql: str, arguments: list[Any]) -> list[Any]:
    """The rows of every result set the statements return, in order (reading them all leaves the
    connection ready for its next query)."""
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


async def _rolled_back(driver: Any) -> bool:
    try:
        await driver.rollback()
    except Exception:
        return False
    return True


def _connection_lost(driver: Any, error: BaseException) -> bool:
    return isinstance(error, OSError | ConnectionError) or closed_by_server(driver)
