"""The database engine: URL mapping to async drivers, SQLite tuning, and the write lock."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

_DRIVERS = {
    "sqlite": "sqlite+aiosqlite",
    "postgresql": "postgresql+asyncpg",
    "postgres": "postgresql+asyncpg",
    "mysql": "mysql+asyncmy",
    "mariadb": "mysql+asyncmy",
}


def async_url(url: str) -> str:
    """Turn a plain ``sqlite:///``, ``postgresql://`` or ``mysql://`` URL into its async-driver form."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ValueError(f"not a database URL: {url!r}")
    if "+" in scheme:
        return url
    try:
        return f"{_DRIVERS[scheme]}://{rest}"
    except KeyError:
        raise ValueError(f"unsupported database scheme {scheme!r} (use sqlite, postgresql or mysql)") from None


def utcnow() -> datetime:
    """Naive UTC, the form every table stores."""
    return datetime.now(UTC).replace(tzinfo=None)


class Database:
    """An async engine plus a write lock that serialises SQLite writers inside this process.

    SQLite allows one writer; letting coroutines race for its lock means busy-waiting
    in the driver. An asyncio lock queues them instead. Other databases rely on row locks.
    """

    def __init__(self, url: str, *, echo: bool = False, pool_size: int = 20) -> None:
        self.url = async_url(url)
        self.is_sqlite = self.url.startswith("sqlite")
        kwargs: dict[str, Any] = {"echo": echo}
        if self.is_sqlite:
            _ensure_sqlite_dir(self.url)
            kwargs["connect_args"] = {"timeout": 30}
        else:
            # Up to 2 x pool_size connections per process: N instances x workers must fit the server's limit.
            kwargs.update(pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True, pool_recycle=1800)
            if self.url.startswith("mysql"):
                # InnoDB's default REPEATABLE READ gap-locks the range a DELETE or SELECT finds empty; two
                # charges of different sessions inserting their Idempotency-Key into that gap then deadlock.
                # READ COMMITTED (PostgreSQL's default) keeps row locks only; every money rule is a
                # conditional write on one row, so it needs nothing stronger.
                kwargs["isolation_level"] = "READ COMMITTED"
        self.engine: AsyncEngine = create_async_engine(self.url, **kwargs)
        if self.is_sqlite:
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
        self.write_lock = asyncio.Lock() if self.is_sqlite else None
        self.sqlite_path: str | None = None
        if self.is_sqlite:
            path = self.url.split(":///", 1)[-1].split("?", 1)[0]
            self.sqlite_path = path if path and path != ":memory:" else None

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @property
    def supports_update_returning(self) -> bool:
        return bool(self.engine.dialect.update_returning)

    @contextlib.asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """A write transaction: committed on exit, rolled back on error."""
        if self.write_lock is None:
            async with self.engine.begin() as conn:
                yield conn
            return
        async with self.write_lock, self.engine.begin() as conn:
            yield conn

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        async with self.engine.connect() as conn:
            yield conn

    async def dispose(self) -> None:
        await self.engine.dispose()


def _ensure_sqlite_dir(url: str) -> None:
    """The database's directory and file are the owner's only (0700/0600): they hold every balance.

    SQLite gives its -wal and -shm files the database file's permissions.
    """
    path = url.split(":///", 1)[-1].split("?", 1)[0]
    if path and path != ":memory:":
        Path(path).parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.close(os.open(path, os.O_CREAT | os.O_RDWR, 0o600))


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL is durable across process crashes
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()
