"""The engine's pool: dead server connections are replaced without a pre-ping per checkout."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import create_async_engine

from arkgate.db.engine import Database, async_url
from tests.databases import SERVER_URLS, backends, scratch_database

SERVERS = [p for p in backends() if p.values[0] != "sqlite"]
BACKEND_ID = {"postgresql": "SELECT pg_backend_pid()", "mysql": "SELECT CONNECTION_ID()"}


async def _hold_connections(database: Database, kind: str, count: int) -> set[int]:
    """Check ``count`` connections out at once (so the pool holds that many) and return their server ids."""
    ready = asyncio.Event()
    ids: list[int] = []

    async def borrow() -> None:
        async with database.read() as conn:
            ids.append(int((await conn.execute(text(BACKEND_ID[kind]))).scalar_one()))
            if len(ids) == count:
                ready.set()
            await ready.wait()

    await asyncio.gather(*(borrow() for _ in range(count)))
    return set(ids)


async def _kill(kind: str, ids: set[int]) -> None:
    admin = create_async_engine(async_url(os.environ[SERVER_URLS[kind]]), isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            for backend_id in ids:
                if kind == "postgresql":
                    # With a timeout the call returns once the backend has exited.
                    await conn.execute(text("SELECT pg_terminate_backend(:pid, 5000)"), {"pid": backend_id})
                else:
                    await conn.execute(text(f"KILL {int(backend_id)}"))
    finally:
        await admin.dispose()


@pytest.mark.parametrize("kind", SERVERS)
async def test_killed_server_connections_are_replaced_on_checkout(kind: str, tmp_path: Path) -> None:
    async with scratch_database(kind, str(tmp_path / "x.sqlite3")) as url:
        database = Database(url, pool_size=4, idle_check_s=0.0)  # every reused connection counts as idle
        try:
            old = await _hold_connections(database, kind, 4)
            await _kill(kind, old)
            async with database.write() as conn:
                new_id = int((await conn.execute(text(BACKEND_ID[kind]))).scalar_one())
            assert new_id not in old
            assert await _hold_connections(database, kind, 4)  # the whole pool works again
        finally:
            await database.dispose()


@pytest.mark.parametrize("kind", SERVERS)
async def test_a_connection_reused_at_once_costs_no_extra_round_trip(kind: str, tmp_path: Path) -> None:
    """No pre-ping: back-to-back transactions send only their own statements, no PING, no reset ROLLBACK."""
    async with scratch_database(kind, str(tmp_path / "x.sqlite3")) as url:
        database = Database(url, pool_size=1)
        sent: list[str] = []
        event.listen(database.engine.sync_engine, "before_cursor_execute", lambda *a: sent.append(a[2]))
        try:
            rollbacks_before = await _session_rollbacks(database, kind)
            for _ in range(3):
                async with database.write() as conn:
                    await conn.execute(text("SELECT 1"))
            assert await _session_rollbacks(database, kind) == rollbacks_before
            assert database.idle_checks == 0
            assert sent.count("SELECT 1") == 3
        finally:
            await database.dispose()


async def _session_rollbacks(database: Database, kind: str) -> int:
    """ROLLBACKs this (single pooled) connection sent so far, by the server's count; 0 on PostgreSQL.

    asyncpg sends no ROLLBACK when no transaction is open, so only MariaDB's reset-on-return matters.
    """
    if kind != "mysql":
        return 0
    async with database.write() as conn:
        row = (await conn.execute(text("SHOW SESSION STATUS LIKE 'Com_rollback'"))).one()
    return int(row[1])


async def test_sqlite_commits_are_durable_by_default(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path / 'a.sqlite3'}")
    try:
        async with database.read() as conn:
            assert (await conn.execute(text("PRAGMA synchronous"))).scalar_one() == 2  # FULL
    finally:
        await database.dispose()
    relaxed = Database(f"sqlite:///{tmp_path / 'b.sqlite3'}", sqlite_synchronous="normal")
    try:
        async with relaxed.read() as conn:
            assert (await conn.execute(text("PRAGMA synchronous"))).scalar_one() == 1  # NORMAL
    finally:
        await relaxed.dispose()


def test_sqlite_synchronous_must_be_a_known_mode() -> None:
    with pytest.raises(ValueError, match="synchronous"):
        Database("sqlite:///:memory:", sqlite_synchronous="OFF")


SERVER_SESSIONS = {
    "postgresql": "SELECT pid FROM pg_stat_activity WHERE datname = :name AND pid <> pg_backend_pid()",
    "mysql": "SELECT ID FROM information_schema.PROCESSLIST WHERE DB = :name AND ID <> CONNECTION_ID()",
}


@pytest.mark.parametrize("kind", SERVERS)
async def test_requests_succeed_right_after_the_server_killed_every_connection(
    gateway_factory, tmp_path: Path, kind: str
) -> None:
    async with scratch_database(kind, str(tmp_path / "x.sqlite3")) as url:
        async with gateway_factory(database_url=url) as gw:
            token = (await gw.client.post("/v1/sessions", json={"amount_sats": 1000})).json()["token"]
            headers = {"Authorization": f"Bearer {token}"}
            assert (await gw.client.get("/v1/balance", headers=headers)).status_code == 200
            admin = create_async_engine(async_url(os.environ[SERVER_URLS[kind]]), isolation_level="AUTOCOMMIT")
            async with admin.connect() as conn:
                name = url.rpartition("/")[2]
                ids = {int(row[0]) for row in await conn.execute(text(SERVER_SESSIONS[kind]), {"name": name})}
            await admin.dispose()
            assert ids
            await _kill(kind, ids)
            balance = await gw.client.get("/v1/balance", headers=headers)
            assert balance.status_code == 200 and balance.json()["balance_sats"] == 1000
            paid = await gw.client.post("/api/qr-generate", json={"data": "x"}, headers=headers)
            assert paid.status_code == 200, paid.text
            assert (await gw.client.get("/v1/balance", headers=headers)).json()["balance_sats"] < 1000
