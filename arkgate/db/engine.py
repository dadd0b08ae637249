"""The database engine: URL mapping to async drivers, SQLite tuning, and the write lock."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from sqlalchemy import event, exc
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from arkgate.db.held import HeldConnections, closed_by_server

# Re-exported: the code that writes the tables has always imported ``utcnow`` from here.
from arkgate.timestamps import utcnow as utcnow

_DRIVERS = {
    "sqlite": "sqlite+aiosqlite",
    "postgresql": "postgresql+asyncpg",
    "postgres": "postgresql+asyncpg",
    "mysql": "mysql+asyncmy",
    "mariadb": "mysql+asyncmy",
}


SQLITE_SYNCHRONOUS = ("FULL", "NORMAL", "EXTRA")
SQLITE_BUSY_TIMEOUT_S = 30  # how long a write waits for another process's write lock
# A pooled connection idle this long is tested before reuse (a killed server connection, a
# failover); one reused sooner is not: it was fine a moment ago and recycling bounds its age.
IDLE_CHECK_S = 2.0
_CHECKED_IN_AT = "arkgate.checked_in_at"


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


class Database:
    """An async engine plus a write lock that serialises SQLite writers inside this process.

    SQLite allows one writer; letting coroutines race for its lock means busy-waiting
    in the driver. An asyncio lock queues them instead. Other databases rely on row locks.
    """

    def __init__(
        self,
        url: str,
        *,
        echo: bool = False,
        pool_size: int = 20,
        sqlite_synchronous: str = "FULL",
        idle_check_s: float = IDLE_CHECK_S,
    ) -> None:
        self.url = async_url(url)
        self.is_sqlite = self.url.startswith("sqlite")
        if sqlite_synchronous.upper() not in SQLITE_SYNCHRONOUS:
            raise ValueError(f"sqlite synchronous must be one of {', '.join(SQLITE_SYNCHRONOUS)}")
        self.sqlite_synchronous = sqlite_synchronous.upper()
        kwargs: dict[str, Any] = {"echo": echo}
        if self.is_sqlite:
            _ensure_sqlite_dir(self.url)
            kwargs["connect_args"] = {"timeout": SQLITE_BUSY_TIMEOUT_S}
        else:
            # Up to 2 x pool_size connections per process: N instances x workers must fit the server's limit.
            # No pool_pre_ping: it costs every checkout a round trip (three on PostgreSQL: BEGIN, ";",
            # ROLLBACK) although a connection used milliseconds ago is alive. ``_check_on_checkout`` tests
            # only connections idle for ``idle_check_s`` (and, free, asyncpg's own closed flag); recycling
            # bounds a connection's age.
            kwargs.update(pool_size=pool_size, max_overflow=pool_size, pool_recycle=1800)
            # PostgreSQL keeps the pool's reset-on-return (ROLLBACK): SQLAlchemy's asyncpg adapter sends it
            # only when a transaction is still open (a cancelled request), so a committed connection, or
            # one used by ``db/prepared.py`` outside any transaction, goes back at no round trip.
            if self.url.startswith("mysql"):
                # The pool's reset-on-return is a ROLLBACK after every COMMIT, a round trip on MariaDB
                # (asyncpg skips it when no transaction is open). It is redundant here: every connection
                # is borrowed through ``write()`` (engine.begin: COMMIT or ROLLBACK on exit) or ``read()``
                # and other ``AsyncConnection`` blocks, whose close rolls back any transaction still
                # open; none hands a raw DBAPI connection back to the pool mid-transaction, and a
                # connection that failed is invalidated, not reused.
                kwargs["pool_reset_on_return"] = None
                # InnoDB's default REPEATABLE READ gap-locks the range a DELETE or SELECT finds empty; two
                # charges of different sessions inserting their Idempotency-Key into that gap then deadlock.
                # READ COMMITTED (PostgreSQL's default) keeps row locks only; every money rule is a
                # conditional write on one row, so it needs nothing stronger.
                kwargs["isolation_level"] = "READ COMMITTED"
                from asyncmy.constants import CLIENT

                # FOUND_ROWS: SQLAlchemy's own choice (rowcount counts matched rows, which the money
                # rules test). MULTI_STATEMENTS: a paid call's charge is one multi-statement
                # transaction, one round trip (``db/prepared.py``); every value is still bound.
                kwargs["connect_args"] = {"client_flag": CLIENT.FOUND_ROWS | CLIENT.MULTI_STATEMENTS}
        self.engine: AsyncEngine = create_async_engine(self.url, **kwargs)
        # The hot statements' connections (``db/prepared.py``); SQLite reads on ``sqlite_reader`` instead.
        self.held = HeldConnections(self.engine, keep=max(1, pool_size // 2), idle_check_s=idle_check_s)
        self.idle_check_s = idle_check_s
        self.idle_checks = 0  # round trips spent testing idle connections (the tests read it)
        if self.is_sqlite:
            synchronous = self.sqlite_synchronous

            def _pragmas(dbapi_conn: Any, _record: Any) -> None:
                try:
                    sqlite_pragmas(dbapi_conn, synchronous=synchronous)
                except BaseException:
                    # The pool drops a connection whose connect event failed without closing it (a file
                    # that cannot be opened fails here, at the first statement): close it ourselves.
                    dbapi_conn.close()
                    raise

            event.listen(self.engine.sync_engine, "connect", _pragmas)
        else:
            event.listen(self.engine.sync_engine.pool, "checkin", _note_checkin)
            event.listen(self.engine.sync_engine.pool, "checkout", self._check_on_checkout)
        self.write_lock = asyncio.Lock() if self.is_sqlite else None
        self.sqlite_path: str | None = None
        if self.is_sqlite:
            path = self.url.split(":///", 1)[-1].split("?", 1)[0]
            self.sqlite_path = path if path and path != ":memory:" else None
        # SQLite: the stdlib connection ``db/prepared.py`` reads hot rows with, on the event loop's thread.
        self.sqlite_reader: sqlite3.Connection | None = None

    def _check_on_checkout(self, dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        """Replace a dead pooled connection before the caller's first statement can fail on it.

        Raising ``DisconnectionError`` here makes the pool discard the connection and check out
        another (SQLAlchemy's documented custom-ping recipe). A connection back in the pool
        within ``idle_check_s`` is handed out untested: under load that is every checkout.
        """
        if closed_by_server(getattr(dbapi_conn, "driver_connection", None)):
            raise exc.DisconnectionError("the server closed this connection")
        checked_in = record.info.get(_CHECKED_IN_AT)
        if checked_in is None or time.monotonic() - checked_in < self.idle_check_s:
            return
        self.idle_checks += 1
        try:
            dbapi_conn.ping()
        except Exception as error:
            raise exc.DisconnectionError(f"idle connection failed its check: {error}") from error

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
        if self.sqlite_reader is not None:
            self.sqlite_reader.close()
            self.sqlite_reader = None
        await self.held.aclose()
        await self.engine.dispose()

    def drop_connections(self) -> None:
        """Close and replace every pooled connection opened before now, each at its next checkout.

        What SQLAlchemy itself does on a disconnect error. Unlike ``dispose()``, it never orphans a
        connection that a background task has checked out (the old pool would close it only when
        garbage collected).
        """
        self.engine.sync_engine.pool._invalidate(None, _checkin=False)  # type: ignore[arg-type]
        self.held.drop()


def _ensure_sqlite_dir(url: str) -> None:
    """The database's directory and file are the owner's only (0700/0600): they hold every balance.

    SQLite gives its -wal and -shm files the database file's permissions.
    """
    path = url.split(":///", 1)[-1].split("?", 1)[0]
    if path and path != ":memory:":
        Path(path).parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.close(os.open(path, os.O_CREAT | os.O_RDWR, 0o600))


def _note_checkin(_dbapi_conn: Any, record: Any) -> None:
    record.info[_CHECKED_IN_AT] = time.monotonic()


def sqlite_pragmas(dbapi_conn: Any, *, synchronous: str = "FULL") -> None:
    """Per-connection SQLite settings; every engine on the file (async, group commit) applies them.

    ``synchronous=FULL`` in WAL mode syncs the log at every commit, so a committed credit or
    charge survives a power cut or kernel crash; NORMAL survives only a process crash and may
    lose the last commits on power loss. The group commit shares one sync among every ledger
    write waiting at that moment, which keeps FULL cheap under load.
    """
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA synchronous={synchronous}")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_S * 1000}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()
