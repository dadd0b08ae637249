"""The charge and settlement in one round trip each on PostgreSQL and MariaDB (``charging.charge_script``)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import event, text

from arkgate.db import migrate, prepared
from arkgate.db.engine import Database
from arkgate.errors import InsufficientBalanceError, InvalidTokenError
from arkgate.payments.ledger import Ledger, hash_token
from tests.conftest import wait_for
from tests.databases import backends, scratch_database

SERVERS = [p for p in backends() if p.values[0] != "sqlite"]


@pytest.mark.parametrize("kind", backends())
async def test_the_token_lookup_skips_sqlalchemy_and_returns_what_it_would(kind: str, tmp_path: Path) -> None:
    async with scratch_database(kind, str(tmp_path / "x.sqlite3")) as url:
        database = Database(url, pool_size=2)
        try:
            await migrate.upgrade(database)
            ledger = Ledger(database, session_ttl_s=3600, group_commit=False)
            token_hash = hash_token("ak_lookup")
            session_id = await ledger.open_session(token_hash=token_hash, requested_sats=0, ark_address=None)
            await ledger.credit_free(session_id, 10)
            through_sqlalchemy: list[str] = []
            event.listen(
                database.engine.sync_engine, "before_cursor_execute", lambda *a: through_sqlalchemy.append(a[2])
            )
            session = await ledger.session_by_token(token_hash)
            assert through_sqlalchemy == []
            assert session is not None and session == await ledger.session_by_id(session_id)
            assert session.created_at is not None and session.funded_at is not None
            assert await ledger.session_by_token(hash_token("ak_unknown")) is None
            await ledger.charge(token_hash, "qr-generate", 3)
            assert (await ledger.session_by_token(token_hash)).balance_sats == 7  # type: ignore[union-attr]
        finally:
            await database.dispose()


@pytest.mark.parametrize("kind", SERVERS)
async def test_a_plain_paid_call_is_two_driver_round_trips_and_keeps_the_ledger_exact(
    kind: str, tmp_path: Path
) -> None:
    async with scratch_database(kind, str(tmp_path / "x.sqlite3")) as url:
        database = Database(url, pool_size=2)
        try:
            await migrate.upgrade(database)
            ledger = Ledger(database, session_ttl_s=3600)
            token_hash = hash_token("ak_prepared")
            session_id = await ledger.open_session(token_hash=token_hash, requested_sats=0, ark_address=None)
            await ledger.credit_free(session_id, 10)
            through_sqlalchemy: list[str] = []
            event.listen(
                database.engine.sync_engine, "before_cursor_execute", lambda *a: through_sqlalchemy.append(a[2])
            )

            session = await ledger.session_by_token(token_hash)  # the lookup of every call and balance poll
            assert through_sqlalchemy == []
            assert session is not None and session.balance_sats == 10
            assert session == await ledger.session_by_id(session_id)  # same values, same types, as SQLAlchemy's
            assert await ledger.session_by_token(hash_token("ak_unknown")) is None
            through_sqlalchemy.clear()
            charge = await ledger.charge(token_hash, "qr-generate", 4)
            assert through_sqlalchemy == []  # one round trip on the driver
            assert (charge.session_id, charge.balance_sats) == (session_id, 6)
            assert await ledger.in_flight_call_ids(session_id) == {charge.call_id}
            through_sqlalchemy.clear()
            settled = await ledger.settle(charge.call_id)
            assert through_sqlalchemy == []
            assert settled is not None and settled.refunded_sats == 0
            assert await ledger.settle(charge.call_id) is None  # settled once (the general path agrees)
            again = await ledger.charge(token_hash, "qr-generate", 4)

            # A refund, an unknown token and too small a balance take the general path, with the same rules.
            assert await ledger.refund(again, 4, reason="failed") == 6
            with pytest.raises(InsufficientBalanceError):
                await ledger.charge(token_hash, "qr-generate", 7)
            with pytest.raises(InvalidTokenError):
                await ledger.charge(hash_token("ak_unknown"), "qr-generate", 1)
            assert (await ledger.session_by_id(session_id)).balance_sats == 6  # type: ignore[union-attr]
            assert await ledger.in_flight_call_ids(session_id) == set()
            assert await ledger.inconsistent_sessions() == []
        finally:
            await database.dispose()


RUNNING = {  # the server id of the connection running the slow query
    "postgresql": "SELECT max(pid) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(30)%'",
    "mysql": "SELECT max(id) FROM information_schema.processlist WHERE info LIKE 'SELECT SLEEP(30)%'",
}
BACKEND_ID = {"postgresql": "SELECT pg_backend_pid() AS x", "mysql": "SELECT CONNECTION_ID() AS x"}


@pytest.mark.parametrize("kind", SERVERS)
async def test_a_driver_round_trip_cancelled_midway_never_returns_its_connection_to_the_pool(
    kind: str, tmp_path: Path
) -> None:
    async with scratch_database(kind, str(tmp_path / "x.sqlite3")) as url:
        database = Database(url, pool_size=1)
        watcher = Database(url, pool_size=1)
        try:
            async with database.read() as conn:  # connected: the dialect knows its server
                await conn.execute(text("SELECT 1"))
            sleep = "SELECT pg_sleep(30) AS x" if kind == "postgresql" else "SELECT SLEEP(30) AS x"
            slow = asyncio.ensure_future(
                prepared.fetchrow(database, prepared.DriverScript(lambda _: (text(sleep),)), {})
            )

            async def running() -> int | None:
                async with watcher.read() as conn:
                    return (await conn.execute(text(RUNNING[kind]))).scalar_one()  # type: ignore[no-any-return]

            busy = int(await wait_for(running))
            slow.cancel()
            with pytest.raises(asyncio.CancelledError):
                await slow
            # The next round trip runs on a fresh connection: the cancelled one was dropped, not pooled.
            backend = await prepared.fetchrow(database, prepared.DriverScript(lambda _: (text(BACKEND_ID[kind]),)), {})
            assert backend is not None and int(backend["x"]) != busy
            await database.held.aclose()  # the one connection held now goes back: nothing else is out
            assert database.engine.pool.checkedout() == 0  # type: ignore[attr-defined]
        finally:
            await watcher.dispose()
            await database.dispose()


@pytest.mark.parametrize("kind", SERVERS)
async def test_hot_statements_reuse_a_held_connection_without_a_pool_checkout(kind: str, tmp_path: Path) -> None:
    async with scratch_database(kind, str(tmp_path / "x.sqlite3")) as url:
        database = Database(url, pool_size=2, idle_check_s=3600)
        try:
            async with database.read() as conn:  # connected: the dialect knows its server
                await conn.execute(text("SELECT 1"))
            whoami = prepared.DriverScript(lambda _: (text(BACKEND_ID[kind]),))
            first = await prepared.fetchrow(database, whoami, {})
            checkouts: list[object] = []
            event.listen(database.engine.sync_engine.pool, "checkout", lambda *a: checkouts.append(a))
            for _ in range(3):
                assert await prepared.fetchrow(database, whoami, {}) == first
            assert checkouts == []
            assert database.held.idle_checks == 0  # used moments ago: no test round trip

            database.drop_connections()  # what a failed health probe does: held ones go back to the pool too
            assert await prepared.fetchrow(database, whoami, {}) != first
            assert len(checkouts) == 1
        finally:
            await database.dispose()


@pytest.mark.parametrize("kind", SERVERS)
async def test_a_held_connection_idle_for_a_while_is_tested_and_replaced_when_dead(kind: str, tmp_path: Path) -> None:
    async with scratch_database(kind, str(tmp_path / "x.sqlite3")) as url:
        database = Database(url, pool_size=2, idle_check_s=0.0)  # every reuse counts as after a while
        try:
            async with database.read() as conn:  # connected: the dialect knows its server
                await conn.execute(text("SELECT 1"))
            whoami = prepared.DriverScript(lambda _: (text(BACKEND_ID[kind]),))
            first = await prepared.fetchrow(database, whoami, {})
            assert await prepared.fetchrow(database, whoami, {}) == first
            assert database.held.idle_checks == 1
            assert first is not None
            # The server closes it while held: the next hot statement runs on another connection.
            async with database.read() as conn:
                if kind == "postgresql":
                    await conn.execute(text("SELECT pg_terminate_backend(:pid, 5000)"), {"pid": int(first["x"])})
                else:
                    await conn.execute(text(f"KILL {int(first['x'])}"))
                await conn.commit()
            second = await prepared.fetchrow(database, whoami, {})
            assert second is not None and second != first
        finally:
            await database.dispose()
