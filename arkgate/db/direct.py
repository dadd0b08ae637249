"""The money rules' statements on SQLite's own connection, with the transaction kept by hand.

SQLite's group commit (``payments/batching.py``) runs the rules of ``payments/charging.py`` on the
event loop's thread. There each SQLAlchemy ``Connection.execute`` spends some 30-40 us (cache key,
result set-up) and each transaction's ``Connection``/``RootTransaction`` objects and event hooks
more, on statements SQLite itself runs in a few. A ``DirectConnection`` compiles each of those
statements once (per INSERT column set), binds and converts values with the column types' own
processors as SQLAlchemy would, and runs it on the stdlib ``sqlite3`` connection; BEGIN IMMEDIATE,
COMMIT, ROLLBACK and SAVEPOINTs are plain SQL on that connection (opened with
``isolation_level=None``, the documented way to keep pysqlite out of transaction handling).

Only for statements that live as long as the process (module constants): each compiled form is
cached under the statement object itself.
"""

from __future__ import annotations

import contextlib
from collections import namedtuple
from collections.abc import Iterator
from typing import Any

from sqlalchemy import exc
from sqlalchemy.engine import Dialect
from sqlalchemy.sql import Insert

from arkgate.db.prepared import Compiled, compile_statements

_CACHE: dict[tuple[Any, tuple[str, ...] | None], tuple[Compiled, Any, tuple[tuple[int, Any], ...]]] = {}


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
    """Quacks like the ``Connection`` the rules take (``execute``, ``dialect``, ``begin_nested``),
    plus the transaction's ``begin``, ``commit`` and ``rollback``."""

    def __init__(self, dbapi_connection: Any, dialect: Dialect) -> None:
        self.dbapi = dbapi_connection
        self.dialect = dialect
        self._savepoints = 0

    def begin(self) -> None:
        """BEGIN IMMEDIATE: the write lock up front, or ``OperationalError`` ("database is locked")."""
        self._run("BEGIN IMMEDIATE")

    def commit(self) -> None:
        self._run("COMMIT")

    def rollback(self) -> None:
        """Roll back the open transaction, if any (a failed statement or COMMIT may have ended it)."""
        if self.dbapi.in_transaction:
            self._run("ROLLBACK")

    @contextlib.contextmanager
    def begin_nested(self) -> Iterator[None]:
        """A SAVEPOINT: released if the block ends normally, rolled back to if it raises."""
        self._savepoints += 1
        name = f"sp_{self._savepoints}"
        self._run(f"SAVEPOINT {name}")
        try:
            yield
        except BaseException:
            self._run(f"ROLLBACK TO {name}")
            self._run(f"RELEASE {name}")
            raise
        else:
            self._run(f"RELEASE {name}")
        finally:
            self._savepoints -= 1

    def execute(self, statement: Any, params: dict[str, Any] | None = None) -> DirectResult:
        params = params or {}
        column_keys = tuple(params) if isinstance(statement, Insert) else None
        cached = _CACHE.get((statement, column_keys))
        if cached is None:
            cached = _CACHE[(statement, column_keys)] = _compile(statement, self.dialect, column_keys)
        compiled, row_type, converts = cached
        arguments = compiled.arguments(params)
        cursor = self._run(compiled.sql, arguments)
        try:
            rows = []
            if row_type is not None:
                for raw in cursor.fetchall():
                    if converts:
                        raw = list(raw)
                        for index, convert in converts:
                            raw[index] = convert(raw[index])
                    rows.append(row_type._make(raw))
            return DirectResult(rows, cursor.rowcount)
        finally:
            cursor.close()

    def _run(self, sql: str, arguments: Any = ()) -> Any:
        try:
            return self.dbapi.execute(sql, arguments)
        except self.dialect.loaded_dbapi.Error as error:
            # As SQLAlchemy raises it (the rules catch its IntegrityError, e.g. a claimed Idempotency-Key).
            raise exc.DBAPIError.instance(sql, arguments, error, self.dialect.loaded_dbapi.Error) from error


def _compile(
    statement: Any, dialect: Dialect, column_keys: tuple[str, ...] | None
) -> tuple[Compiled, Any, tuple[tuple[int, Any], ...]]:
    compiled = compile_statements((statement,), dialect, list(column_keys) if column_keys else None)
    names = tuple(column.name for column in getattr(statement, "exported_columns", ()))
    if not names:
        return compiled, None, ()
    by_name = dict(compiled.results)
    converts = tuple((index, by_name[name]) for index, name in enumerate(names) if name in by_name)
    return compiled, namedtuple("Row", names), converts
