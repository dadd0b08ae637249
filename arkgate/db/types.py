"""Column types that convert at the database boundary."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import DateTime
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine

from arkgate.timestamps import from_naive_utc, to_naive_utc


class UTCDateTime(TypeDecorator[datetime]):
    """Stores naive UTC (the columns as migrated), hands back aware UTC.

    The columns stay ``TIMESTAMP WITHOUT TIME ZONE`` / ``DATETIME``: no migration, and every
    dialect compares them the same way. Binding a naive datetime raises, so a stray naive value
    cannot be stored as if it were UTC.
    """

    impl = DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name in ("mysql", "mariadb"):
            # MariaDB's DATETIME keeps whole seconds unless told otherwise.
            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        return dialect.type_descriptor(DateTime())

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else to_naive_utc(value)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else from_naive_utc(value)


# Raw driver statements (``exec_driver_sql``, asyncpg/asyncmy/sqlite3 prepared statements) skip the
# column types: they must bind and read instants in the column's own form, as below.
_SQLITE_TEXT = "%Y-%m-%d %H:%M:%S.%f"  # SQLAlchemy's SQLite DATETIME storage format, microseconds always


def raw_bind(instant: datetime, *, sqlite: bool) -> datetime | str:
    """An aware instant as a raw driver statement must bind it: naive UTC, as text on SQLite."""
    naive = to_naive_utc(instant)
    return naive.strftime(_SQLITE_TEXT) if sqlite else naive


def raw_result(value: datetime | str) -> datetime:
    """An instant column read by a raw driver statement (naive UTC, or SQLite's text), as aware UTC."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return from_naive_utc(value)
