"""The parts on their own, on every database: migration lock, leader lease, event bus, shared keys."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator

import pytest

from arkgate.cluster.bus import PostgresBus, RedisBus, TableBus, choose_bus
from arkgate.cluster.leader import Leadership
from arkgate.cluster.mutex import DatabaseMutex
from arkgate.db import keys, migrate
from arkgate.db.engine import Database
from arkgate.errors import ConflictError
from arkgate.payments.events import EventHub
from tests.conftest import wait_for
from tests.databases import backends, scratch_database


@pytest.fixture(params=backends())
async def database_url(request: pytest.FixtureRequest, tmp_path) -> AsyncIterator[str]:
    async with scratch_database(request.param, str(tmp_path / "db.sqlite3")) as url:
        yield url


async def test_instances_migrating_at_the_same_moment_all_succeed(database_url: str) -> None:
    databases = [Database(database_url) for _ in range(4)]
    try:
        await asyncio.gather(*(migrate.upgrade(db) for db in databases))
        await migrate.upgrade(databases[0])  # and again: nothing to do
    finally:
        for db in databases:
            await db.dispose()


async def test_one_leader_at_a_time_and_a_dead_leaders_lease_is_taken_over(database_url: str) -> None:
    databases = [Database(database_url) for _ in range(3)]
    await migrate.upgrade(databases[0])
    lease_s = 0.6
    nodes = [Leadership(db, lease_s=lease_s) for db in databases]
    runs: list[str] = []
    for node in nodes:

        async def job(node: Leadership = node) -> None:
            runs.append(node.holder)
            await asyncio.Event().wait()

        node.register("job", job)
    with pytest.raises(ValueError, match="already registered"):
        nodes[0].register("job", job)
    try:
        await asyncio.gather(*(node.start() for node in nodes))
        await wait_for(lambda: sum(node.is_leader for node in nodes) == 1)
        [leader] = [node for node in nodes if node.is_leader]
        await wait_for(lambda: runs == [leader.holder])  # the job runs on the leader only

        # Death without a goodbye: the renewals stop, the lease is left to run out.
        assert leader._loop_task is not None
        leader._loop_task.cancel()
        died = time.monotonic()
        others = [node for node in nodes if node is not leader]
        await wait_for(lambda: any(node.is_leader for node in others), timeout_s=lease_s * 4 / 3 + 10)
        print(f"\ntake-over after {time.monotonic() - died:.2f} s with a {lease_s} s lease")
        [successor] = [node for node in others if node.is_leader]
        assert successor.term == leader.term + 1
        await wait_for(lambda: runs[-1] == successor.holder)
        assert len(runs) == 2

        # A clean shutdown hands over at once.
        await successor.aclose()
        [last] = [node for node in others if node is not successor]
        await wait_for(lambda: last.is_leader, timeout_s=lease_s + 10)
    finally:
        for node in nodes:
            await node.aclose()
        for db in databases:
            await db.dispose()


async def test_shared_keys_are_created_once_whoever_asks_first(database_url: str) -> None:
    databases = [Database(database_url) for _ in range(4)]
    await migrate.upgrade(databases[0])
    try:
        values = await asyncio.gather(*(keys.shared_key(db, "k") for db in databases))
        assert len(set(values)) == 1 and len(values[0]) == 32
        assert await keys.forget_key(databases[0], "k")
        assert await keys.shared_key(databases[1], "k") != values[0]  # rotated
    finally:
        for db in databases:
            await db.dispose()


def _buses(kind: str, database: Database, hub: EventHub) -> TableBus | PostgresBus | RedisBus:
    if kind == "redis":
        return RedisBus(hub, os.environ["ARKGATE_TEST_REDIS_URL"])
    if kind == "postgres":
        return PostgresBus(hub, database)
    return TableBus(hub, database)


@pytest.mark.parametrize("kind", ["table", "postgres", "redis"])
async def test_an_event_published_in_one_process_reaches_subscribers_in_another(kind: str, database_url: str) -> None:
    database = Database(database_url)
    if kind == "postgres" and database.dialect != "postgresql":
        await database.dispose()
        pytest.skip("NOTIFY needs PostgreSQL")
    if kind == "redis" and (not os.environ.get("ARKGATE_TEST_REDIS_URL") or not database.is_sqlite):
        await database.dispose()
        pytest.skip("Redis once, with ARKGATE_TEST_REDIS_URL")
    await migrate.upgrade(database)
    here, there = EventHub(), EventHub()
    buses = [_buses(kind, database, hub) for hub in (here, there)]
    try:
        for bus in buses:
            await bus.start()
        await asyncio.wait_for(asyncio.gather(*(bus.ready.wait() for bus in buses)), 10)
        async with here.subscribe(7) as mine, there.subscribe(7) as theirs:
            here.publish(7, {"type": "payment", "amount_sats": 5})
            assert (await asyncio.wait_for(theirs.get(), 10)) == {"type": "payment", "amount_sats": 5}
            assert mine.get_nowait() == {"type": "payment", "amount_sats": 5}
            here.publish(8, {"type": "payment", "amount_sats": 1})  # another session: not delivered
            there.publish(7, {"type": "payment", "amount_sats": 6})
            assert (await asyncio.wait_for(mine.get(), 10))["amount_sats"] == 6
            assert theirs.get_nowait()["amount_sats"] == 6  # its own, delivered once, at once
            await asyncio.sleep(0.5)  # room for a wrong duplicate to arrive (asserting absence)
            assert mine.empty() and theirs.empty()
    finally:
        for bus in buses:
            await bus.aclose()
        await database.dispose()


async def test_the_wallet_lock_lets_one_instance_at_a_time_move_funds(database_url: str) -> None:
    databases = [Database(database_url) for _ in range(3)]
    await migrate.upgrade(databases[0])
    locks = [DatabaseMutex(db, "wallet", wait_s=30) for db in databases]
    inside: list[int] = []
    overlaps: list[int] = []

    async def act(lock: DatabaseMutex, n: int) -> None:
        async with lock:
            inside.append(n)
            if len(inside) > 1:
                overlaps.append(n)
            await asyncio.sleep(0.02)  # a barkd call in flight while holding the lock
            inside.remove(n)

    try:
        await asyncio.gather(*(act(locks[i % 3], i) for i in range(12)))
        assert overlaps == []
        # A holder that died leaves the row to expire; then the next one gets in.
        dead = DatabaseMutex(databases[0], "wallet", ttl_s=0.3)
        await dead.__aenter__()  # never exits
        survivor = DatabaseMutex(databases[1], "wallet", wait_s=0.1)
        with pytest.raises(ConflictError):
            async with survivor:
                pass
        async with DatabaseMutex(databases[1], "wallet", wait_s=10):
            pass
    finally:
        for db in databases:
            await db.dispose()


def test_the_event_bus_follows_the_setting_and_the_database(make_settings, tmp_path) -> None:
    sqlite = Database(f"sqlite:///{tmp_path / 'x.sqlite3'}")
    postgres = Database("postgresql://u@127.0.0.1:9/x")  # never connected
    hub = EventHub()
    assert choose_bus(make_settings(), sqlite, hub) is None  # one SQLite process: in-process only
    assert isinstance(choose_bus(make_settings(workers=2), sqlite, hub), TableBus)
    assert isinstance(choose_bus(make_settings(), postgres, hub), PostgresBus)
    assert isinstance(choose_bus(make_settings(event_bus="redis://127.0.0.1:6379/0"), postgres, hub), RedisBus)
    assert choose_bus(make_settings(event_bus="memory"), postgres, hub) is None
    with pytest.raises(ValueError, match="event_bus"):
        make_settings(event_bus="carrier-pigeon")


def test_memory_rate_limits_shared_by_several_processes_are_warned_about(make_settings, tmp_path) -> None:
    from structlog.testing import capture_logs

    from arkgate.app import _warn_about_memory_limits

    sqlite = Database(f"sqlite:///{tmp_path / 'x.sqlite3'}")
    postgres = Database("postgresql://u@127.0.0.1:9/x")
    with capture_logs() as logs:
        _warn_about_memory_limits(make_settings(rate_limits="on"), sqlite)  # one process: fine
        _warn_about_memory_limits(make_settings(rate_limits="on", workers=2), sqlite)
        _warn_about_memory_limits(make_settings(rate_limits="on"), postgres)
        _warn_about_memory_limits(
            make_settings(rate_limits="on", rate_limit_storage="redis://127.0.0.1:6379"), postgres
        )
    assert [entry["event"] for entry in logs] == ["ratelimit.memory_per_process"] * 2


async def test_downloads_kept_in_the_database_are_served_until_they_expire(database_url: str) -> None:
    from arkgate.downloads import DatabaseDownloadStore

    now = [1_900_000_000.0]
    writer, reader = Database(database_url), Database(database_url)
    await migrate.upgrade(writer)
    try:
        store = DatabaseDownloadStore(writer, default_ttl_s=60, max_bytes=1_000_000, clock=lambda: now[0])
        other = DatabaseDownloadStore(reader, clock=lambda: now[0])  # another instance
        data = os.urandom(300_000)  # past MariaDB's 64 KB BLOB: stored as LONGBLOB
        saved = await store.save(data, "image/png")
        loaded = await other.load(saved.id)
        assert loaded is not None and loaded.data == data and loaded.mime == "image/png"
        assert loaded.expires_at == saved.expires_at
        assert await other.load("A" * 32) is None and await other.load("../etc/passwd") is None
        now[0] += 61
        assert await other.load(saved.id) is None  # expired: refused before the sweep
        fresh = await store.save(b"x", "text/plain", ttl_s=3600)
        assert await store.cleanup() == 1  # the expired one only
        assert await other.load(fresh.id) is not None
    finally:
        await writer.dispose()
        await reader.dispose()
