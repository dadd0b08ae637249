"""Instants: the tables keep naive UTC, the code gets aware UTC back, on every backend."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import Column, DateTime, Integer, MetaData, Table, create_engine, func, insert, select, text

from arkgate.db.engine import Database
from arkgate.db.types import UTCDateTime
from tests.databases import backends, scratch_database

_metadata = MetaData()
_moments = Table(
    "moments",
    _metadata,
    Column("id", Integer, primary_key=True),
    Column("at", UTCDateTime(), nullable=True),
)


@pytest.mark.parametrize("kind", backends())
async def test_instants_are_stored_naive_utc_and_read_back_aware_utc(kind: str, tmp_path: Path) -> None:
    async with scratch_database(kind, str(tmp_path / "x.sqlite3")) as url:
        database = Database(url)
        try:
            async with database.write() as conn:
                await conn.run_sync(_metadata.create_all)
                utc = datetime(2026, 12, 7, 12, 49, 46, 123456, tzinfo=UTC)
                # The same instant written from another offset is stored as the same UTC wall time.
                tokyo = utc.astimezone(timezone(timedelta(hours=9)))
                await conn.execute(
                    insert(_moments), [{"id": 1, "at": utc}, {"id": 2, "at": tokyo}, {"id": 3, "at": None}]
                )
            async with database.read() as conn:
                rows = {row.id: row.at for row in await conn.execute(select(_moments.c.id, _moments.c.at))}
                stored = (await conn.execute(text("SELECT at FROM moments WHERE id = 2"))).scalar_one()
                latest = (await conn.execute(select(func.max(_moments.c.at)))).scalar_one()
                earlier = (
                    await conn.execute(select(func.count()).where(_moments.c.at < utc + timedelta(seconds=1)))
                ).scalar_one()
        finally:
            await database.dispose()
    assert rows == {1: utc, 2: utc, 3: None}
    assert rows[1] is not None and rows[1].tzinfo is UTC
    assert latest == utc and latest.tzinfo is UTC  # an aggregate of the column keeps its type
    assert earlier == 2  # comparisons bind the aware bound as naive UTC too
    if isinstance(stored, datetime):  # SQLite hands the raw column back as text
        assert stored.tzinfo is None and stored == utc.replace(tzinfo=None)


def test_sqlite_binds_the_text_sqlalchemy_datetime_would_store() -> None:
    sqlite = create_engine("sqlite://").dialect
    ours = UTCDateTime().dialect_impl(sqlite).bind_processor(sqlite)
    theirs = DateTime().dialect_impl(sqlite).bind_processor(sqlite)
    assert ours is not None and theirs is not None
    tokyo = timezone(timedelta(hours=9))
    for instant in (
        datetime(2026, 12, 7, 12, 49, 46, 123456, tzinfo=UTC),
        datetime(2026, 12, 7, 12, 49, 46, tzinfo=UTC),  # no microseconds: still six digits
        datetime(2026, 12, 8, 1, 0, 0, 5, tzinfo=tokyo),  # another offset: the UTC wall time
        datetime(1, 1, 1, tzinfo=UTC),
    ):
        assert ours(instant) == theirs(instant.astimezone(UTC).replace(tzinfo=None))
    assert ours(None) is None
    with pytest.raises(ValueError, match="naive"):
        ours(datetime(2026, 12, 7, 12, 0))


def test_binding_a_naive_datetime_is_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        UTCDateTime().process_bind_param(datetime(2026, 12, 7, 12, 0), dialect=None)  # type: ignore[arg-type]
