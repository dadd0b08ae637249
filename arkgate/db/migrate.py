"""Apply Alembic migrations programmatically (``arkgate migrate`` and every start-up).

Several instances (or ``--workers``) may start at the same moment on one database, so the
upgrade runs under a database-wide lock: PostgreSQL's ``pg_advisory_xact_lock``, MariaDB's
``GET_LOCK``, and for SQLite an exclusive lock on a file beside the database. The first to
get it migrates; the others then find the schema at head and do nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
from collections.abc import AsyncIterator
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Connection

from arkgate.db.engine import Database

MIGRATIONS = Path(__file__).with_name("migrations")
# One arbitrary 64-bit number (and a name for MariaDB) that means "arkgate is migrating".
PG_LOCK_KEY = 0x61726B67617465  # "arkgate"
MYSQL_LOCK_NAME = "arkgate_migrate"
LOCK_TIMEOUT_S = 600


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url)
    return config


async def upgrade(database: Database, revision: str = "head") -> None:
    """Bring the schema to ``revision`` inside one connection, holding the migration lock."""

    def _upgrade(connection: Connection) -> None:
        if connection.dialect.name == "postgresql":
            # Transaction-scoped: released when the migration transaction commits or rolls back.
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": PG_LOCK_KEY})
        config = alembic_config(database.url)
        config.attributes["connection"] = connection
        command.upgrade(config, revision)

    # The SQLite and MariaDB locks are held until the migration's transaction has committed, so
    # the next instance sees the new alembic_version.
    if database.is_sqlite and database.sqlite_path is not None:
        # The file lock is taken in a thread: waiting for another process must not block the loop.
        async with _sqlite_file_lock(Path(database.sqlite_path)), database.engine.begin() as conn:
            await conn.run_sync(_upgrade)
        return
    if database.dialect in ("mysql", "mariadb"):
        async with _mysql_lock(database), database.engine.begin() as conn:
            await conn.run_sync(_upgrade)
        return
    async with database.engine.begin() as conn:
        await conn.run_sync(_upgrade)


def head_revisions() -> set[str]:
    """The revisions the code expects the schema to be at."""
    return set(ScriptDirectory.from_config(alembic_config("sqlite://")).get_heads())


async def current_revisions(database: Database) -> set[str]:
    """The revisions the database says it is at (empty before the first migration)."""

    def _current(connection: Connection) -> set[str]:
        return set(MigrationContext.configure(connection).get_current_heads())

    async with database.read() as conn:
        return await conn.run_sync(_current)


@contextlib.asynccontextmanager
async def _mysql_lock(database: Database) -> AsyncIterator[None]:
    # A named lock is held by its connection (session), apart from the migration's own.
    async with database.engine.connect() as conn:
        got = (
            await conn.execute(
                text("SELECT GET_LOCK(:name, :timeout)"), {"name": MYSQL_LOCK_NAME, "timeout": LOCK_TIMEOUT_S}
            )
        ).scalar()
        if got != 1:
            raise RuntimeError("timed out waiting for another instance to finish migrating the database")
        try:
            yield
        finally:
            await conn.execute(text("SELECT RELEASE_LOCK(:name)"), {"name": MYSQL_LOCK_NAME})


@contextlib.asynccontextmanager
async def _sqlite_file_lock(database_path: Path) -> AsyncIterator[None]:
    database_path.parent.mkdir(parents=True, exist_ok=True)
    lock_path = database_path.with_name(database_path.name + ".migrate-lock")
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        await asyncio.to_thread(fcntl.flock, fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
