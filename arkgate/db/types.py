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

    def bind_processor(self, dialect: Dialect) -> Any:
        if dialect.name == "sqlite":
            return _sqlite_text
        return super().bind_processor(dialect)

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else to_naive_utc(value)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else from_naive_utc(value)


def _sqlite_text(value: datetime | None) -> str | None:
    """The text SQLAlchemy's SQLite ``DATETIME`` stores for the naive UTC value, in one C call.

    Its own processor formats through a dict and ``%`` (a few microseconds, five times a paid call).
    """
    return None if value is None else to_naive_utc(value).isoformat(" ", "microseconds")
