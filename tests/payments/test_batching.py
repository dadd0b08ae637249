"""SQLite group commit: one failing operation never commits half of itself, nor takes the others down."""

from __future__ import annotations

import asyncio
import sqlite3

from sqlalchemy import insert, select
from sqlalchemy.engine import Connection

from arkgate.db import migrate
from arkgate.db import tables as t
from arkgate.db.engine import Database
from arkgate.errors import InputError
from arkgate.payments.batching import GroupCommit

_WRITE = insert(t.watcher_cursors)  # the group commit's statements live as long as the process


def write(name: str, *, then_raise: Exception | None = None) -> object:
    def operation(conn: Connection) -> str:
        conn.execute(_WRITE, {"name": name, "value": "1"})
        if then_raise is not None:
            raise then_raise
        return name

    return operation


async def test_a_batch_keeps_each_operation_whole(tmp_path):
    database = Database(f"sqlite:///{tmp_path / 'batch.sqlite3'}")
    await migrate.upgrade(database)
    group = GroupCommit(database.sqlite_path, asyncio.Lock())
    try:
        outcomes = await asyncio.gather(
            group.run(write("first")),
            group.run(write("broken", then_raise=RuntimeError("disk hiccup"))),  # wrote, then failed
            group.run(write("guarded", then_raise=InputError("no")), savepoint=True),
            group.run(write("last")),
            return_exceptions=True,
        )
        assert outcomes[0] == "first" and outcomes[3] == "last"
        assert isinstance(outcomes[1], RuntimeError) and isinstance(outcomes[2], InputError)
        async with database.read() as conn:
            names = {row.name for row in await conn.execute(select(t.watcher_cursors.c.name))}
        assert names == {"first", "last"}  # neither failed operation left a partial write
    finally:
        group.close()
        await database.dispose()


async def test_a_batch_waits_for_another_process_holding_the_write_lock_without_blocking_the_loop(tmp_path):
    database = Database(f"sqlite:///{tmp_path / 'batch.sqlite3'}")
    await migrate.upgrade(database)
    group = GroupCommit(database.sqlite_path, asyncio.Lock())
    other = sqlite3.connect(database.sqlite_path, isolation_level=None)  # another process's connection
    try:
        assert await group.run(write("first")) == "first"  # the lock was free: taken on the loop
        other.execute("BEGIN IMMEDIATE")  # now the other writer holds it
        blocked = asyncio.create_task(group.run(write("second")))
        for _ in range(20):  # the loop keeps turning while the batch waits in a worker thread
            await asyncio.sleep(0.01)
        assert not blocked.done()
        other.execute("COMMIT")
        assert await asyncio.wait_for(blocked, 10) == "second"
        assert await group.run(write("third")) == "third"
        async with database.read() as conn:
            names = {row.name for row in await conn.execute(select(t.watcher_cursors.c.name))}
        assert names == {"first", "second", "third"}
    finally:
        other.close()
        group.close()
        await database.dispose()
