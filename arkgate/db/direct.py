"""The money rules' statements on SQLite's own cursor, inside SQLAlchemy's transaction.

SQLite's group commit (``payments/batching.py``) runs the rules of ``payments/charging.py`` in its
writer thread. There each ``Connection.execute`` spends some 30-40 us in SQLAlchemy (cache key,
result set-up), holding the GIL the event loop needs, on statements SQLite itself runs in a few. A
``DirectConnection`` compiles each of those statements once (per INSERT column set), binds and
converts values with the column types' own processors as SQLAlchemy would, and runs it on the same
DBAPI connection, inside the transaction (and savepoints) the SQLAlchemy connection keeps.

Only for statements that live as long as the process (module constants): each compiled form is
cached under the statement object itself.
"""

from __future__ import annotations

from collections import namedtuple
from typing import Any

from sqlalchemy import exc
from sqlalchemy.engine import Connection
from sqlalchemy.sql import Insert

from arkgate.db.prepared import Compiled, compile_statements

_CACHE: dict[tuple[Any, tuple[str, ...] | None], tuple[Compiled, tuple[str, ...], Any]] = {}


class DirectResult:
    """What the rules read of a result: ``first``, ``one``, ``scalar``, ``scalar_one``, ``rowcount``."""

    def __init__(self, rows: list[Any], rowcount: int) -> None:
        self.rows = rows
        self.rowcount = rowcount

    def first(self) -> Any:
        return self.rows[0] if self.rows else None

    def one(self) -> Any:
        if len(self.rows) != 1:
            raise LookupError(f"expected one row, got {len(self.rows)}")
        return self.rows[0]

    def scalar(self) -> Any:
        return self.rows[0][0] if self.rows else None

    def scalar_one(self) -> Any:
        return self.one()[0]


class DirectConnection:
    """Quacks like the ``Connection`` the rules take: ``execute``, ``dialect``, ``begin_nested``."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.dialect = conn.dialect
        self._dbapi: Any = conn.connection.driver_connection

    def begin_nested(self) -> Any:
        return self.conn.begin_nested()

    def execute(self, statement: Any, params: dict[str, Any] | None = None) -> DirectResult:
        params = params or {}
        column_keys = tuple(params) if isinstance(statement, Insert) else None
        cached = _CACHE.get((statement, column_keys))
        if cached is None:
            compiled = compile_statements((statement,), self.dialect, list(column_keys) if column_keys else None)
            names = tuple(column.name for column in getattr(statement, "exported_columns", ()))
            cached = _CACHE[(statement, column_keys)] = (compiled, names, namedtuple("Row", names))
        compiled, names, row_type = cached
        cursor = self._dbapi.cursor()
        arguments = compiled.arguments(params)
        try:
            try:
                cursor.execute(compiled.sql, arguments)
            except self.dialect.loaded_dbapi.Error as error:
                # As SQLAlchemy raises it (the rules catch its IntegrityError, e.g. a claimed Idempotency-Key).
                raise exc.DBAPIError.instance(
                    compiled.sql, arguments, error, self.dialect.loaded_dbapi.Error
                ) from error
            rows = []
            if names:
                for raw in cursor.fetchall():
                    row = compiled.row(dict(zip(names, raw, strict=True)))
                    assert row is not None
                    rows.append(row_type(**row))
            return DirectResult(rows, cursor.rowcount)
        finally:
            cursor.close()
