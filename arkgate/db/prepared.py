"""SQLAlchemy Core statements run on the raw async driver, prepared once per pooled connection.

For the few hot statements (a paid call's charge and settlement) SQLAlchemy's per-execution work
(result metadata, the async adapter's cursor, the transaction's BEGIN round trip) costs more than
the statement itself. ``DriverStatement`` compiles a Core statement once for the engine's dialect;
``fetchrow`` checks a connection out of the engine's own pool (its checkout test, recycling and
disposal all still apply), prepares the statement on it the first time and keeps the prepared
form in the connection's record, so it lives and dies with that connection. The statement runs
on its own, outside any transaction: one statement, one round trip, committed by the server.

Only asyncpg (PostgreSQL) is served: its prepared statements bind and execute in one round trip.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy.engine import Dialect
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler

from arkgate.db.engine import Database

_PREPARED = "arkgate.prepared"


class DriverStatement:
    """One Core statement compiled for one dialect: its SQL and how to order and convert its binds."""

    def __init__(self, statement: ClauseElement, dialect: Dialect) -> None:
        compiled = statement.compile(dialect=dialect)
        assert isinstance(compiled, SQLCompiler)
        self.sql = compiled.string
        names = compiled.positiontup or []
        # Each bind converted exactly as SQLAlchemy would (a TypeDecorator's process_bind_param included).
        self._binds: list[tuple[str, Callable[[Any], Any] | None]] = [
            (name, compiled.binds[name].type.bind_processor(dialect)) for name in names
        ]

    def arguments(self, params: Mapping[str, Any]) -> list[Any]:
        return [params[name] if convert is None else convert(params[name]) for name, convert in self._binds]


def supports(database: Database) -> bool:
    """Whether ``fetchrow`` can run on this database's driver."""
    return database.engine.dialect.driver == "asyncpg"


async def fetchrow(database: Database, statement: DriverStatement, params: Mapping[str, Any]) -> Any:
    """The statement's first row (a mapping by column name) or None, in one round trip on asyncpg."""
    arguments = statement.arguments(params)
    async with database.engine.connect() as conn:
        pooled = await conn.get_raw_connection()
        prepared: dict[str, Any] = pooled.info.setdefault(_PREPARED, {})
        driver: Any = pooled.driver_connection
        try:
            ready = prepared.get(statement.sql)
            if ready is None:
                ready = prepared[statement.sql] = await driver.prepare(statement.sql)
            return await ready.fetchrow(*arguments)
        except Exception as error:
            if _connection_lost(driver, error):
                # The pool must not hand this connection out again; the caller sees the error (the
                # statement may or may not have committed: an in-flight call is left to the sweep).
                pooled.invalidate(error)
            raise


def _connection_lost(driver: Any, error: Exception) -> bool:
    if isinstance(error, OSError | ConnectionError):
        return True
    is_closed = getattr(driver, "is_closed", None)
    return callable(is_closed) and bool(is_closed())
