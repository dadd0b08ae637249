"""Apply Alembic migrations programmatically (``arkgate migrate`` and every start-up)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection

from arkgate.db.engine import Database

MIGRATIONS = Path(__file__).with_name("migrations")


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url)
    return config


async def upgrade(database: Database, revision: str = "head") -> None:
    """Bring the schema to ``revision`` inside one connection."""

    def _upgrade(connection: Connection) -> None:
        config = alembic_config(database.url)
        config.attributes["connection"] = connection
        command.upgrade(config, revision)

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
