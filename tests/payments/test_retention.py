"""Retention: old rows are pruned, and every remaining balance still equals its ledger sum."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from arkgate.db import tables as t
from arkgate.db.engine import utcnow
from arkgate.payments.ledger import NewInvoice, hash_token
from arkgate.payments.retention import AGGREGATE_ENDPOINT, PruneResult, Retention, prune
from arkgate.settings import Settings
from tests.conftest import running_gateway
from tests.databases import backends, scratch_database


async def _count(gw: Any, table: Any) -> int:
    async with gw.runtime.database.read() as conn:
        return int((await conn.execute(select(func.count()).select_from(table))).scalar_one())


async def _unfunded_session(gw: Any) -> int:
    now = utcnow()
    invoice = NewInvoice(
        payment_hash=secrets.token_hex(32),
        bolt11="lntbs5u1unfunded",
        amount_sats=500,
        expires_at=now + timedelta(minutes=10),
    )
    return int(
        await gw.runtime.ledger.open_session(
            token_hash=hash_token(f"ak_{secrets.token_hex(16)}"),
            requested_sats=500,
            ark_address=f"tark1{secrets.token_hex(20)}",
            invoice=invoice,
        )
    )


@pytest.mark.parametrize("backend", backends())
async def test_after_the_retention_period_old_rows_go_and_balances_still_match_the_ledger(
    backend: str, tmp_path: Path, make_settings: Callable[..., Settings]
) -> None:
    async with scratch_database(backend, str(tmp_path / "retention.sqlite3")) as url:
        settings = make_settings(
            database_url=url,
            idempotency_ttl_s=3600,
            unpaid_session_ttl_s=3600,
            unfunded_retention_s=24 * 3600,
            call_receipt_retention_s=7 * 24 * 3600,
        )
        async with running_gateway(settings) as gw:
            tokens = [await gw.new_session(1000) for _ in range(2)]
            for n, token in enumerate(tokens * 3):
                response = await gw.call(
                    "qr-generate", {"data": f"hello {n}"}, token=token, headers={"Idempotency-Key": f"key-{n}"}
                )
                assert response.status_code == 200, response.text
            funded = await gw.runtime.ledger.session_by_token(hash_token(tokens[0]))
            # A top-up invoice of a funded session that was never paid.
            await gw.runtime.ledger.add_invoice(
                funded.id,
                NewInvoice(
                    payment_hash=secrets.token_hex(32),
                    bolt11="lntbs1topup",
                    amount_sats=100,
                    expires_at=utcnow() + timedelta(minutes=10),
                    purpose="topup",
                ),
            )
            unfunded = [await _unfunded_session(gw) for _ in range(3)]
            balances = {token: await gw.balance(token) for token in tokens}
            retention = Retention.from_settings(settings)
            database = gw.runtime.database

            # Inside every window nothing goes, and a retried call still gets its stored answer.
            assert await prune(database, retention) == PruneResult()
            assert await _count(gw, t.idempotency_keys) == 6
            replay = await gw.call(
                "qr-generate", {"data": "hello 0"}, token=tokens[0], headers={"Idempotency-Key": "key-0"}
            )
            assert replay.status_code == 200 and await gw.balance(tokens[0]) == balances[tokens[0]]

            # Past the idempotency window, the lapse of unfunded sessions and their retention.
            later = utcnow() + timedelta(hours=1 + 24, minutes=1)
            result = await prune(database, retention, now=later)
            assert result.idempotency_answers == 6
            assert result.sessions == 3
            assert result.invoices == 4  # three funding invoices and the lapsed top-up
            assert await _count(gw, t.idempotency_keys) == 0
            async with database.read() as conn:
                ids = {row.id for row in await conn.execute(select(t.sessions.c.id))}
            assert ids.isdisjoint(unfunded) and len(ids) == 2
            await gw.assert_ledger_consistent()

            # Past the receipt retention, calls fold into one aggregate row per session.
            calls_before = await _count(gw, t.calls)
            result = await prune(database, retention, now=utcnow() + timedelta(days=8))
            assert result.calls_folded == calls_before
            async with database.read() as conn:
                rows = (await conn.execute(select(t.calls))).all()
            assert {row.endpoint_id for row in rows} == {AGGREGATE_ENDPOINT}
            assert len(rows) == 2
            await gw.assert_ledger_consistent()
            assert {token: await gw.balance(token) for token in tokens} == balances

            # New calls after folding, folded again later: still one row per session, sums intact.
            for token in tokens:
                assert (await gw.call("qr-generate", {"data": "again"}, token=token)).status_code == 200
            await prune(database, retention, now=utcnow() + timedelta(days=8))
            assert await _count(gw, t.calls) == 2
            await gw.assert_ledger_consistent()
            receipts = await gw.client.get("/v1/sessions/me/calls", headers={"Authorization": f"Bearer {tokens[1]}"})
            assert receipts.json()["calls"][0]["endpoint"] == AGGREGATE_ENDPOINT
            assert receipts.json()["calls"][0]["cost_sats"] == 1000 - await gw.balance(tokens[1])


async def test_the_pruning_job_runs_with_the_app(gateway: Any) -> None:
    assert any(task.get_name() == "retention" for task in asyncio.all_tasks())


def test_the_sqlite_file_and_data_directory_are_the_owners_only(tmp_path: Path) -> None:
    from arkgate.app import create_app

    settings = Settings(payment_mode="free", data_dir=tmp_path / "private")
    create_app(settings)
    assert (tmp_path / "private").stat().st_mode & 0o777 == 0o700
    assert (tmp_path / "private" / "arkgate.sqlite3").stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize("backend", backends())
async def test_ended_webhook_deliveries_go_after_their_retention_and_pending_ones_stay(
    backend: str, tmp_path: Path, make_settings: Callable[..., Settings]
) -> None:
    async with scratch_database(backend, str(tmp_path / "deliveries.sqlite3")) as url:
        settings = make_settings(database_url=url, webhook_delivery_retention_s=7 * 24 * 3600)
        async with running_gateway(settings) as gw:
            # "Now" is a month ahead, so the app's own pruning pass (running meanwhile) finds nothing old.
            now = utcnow() + timedelta(days=30)
            old = now - timedelta(days=8)
            rows = [
                ("delivered", old, old),  # ended long ago: goes
                ("failed", old, None),  # failed for good long ago: goes
                ("pending", old, None),  # still owed to someone: stays however old
                ("delivered", old, now - timedelta(days=1)),  # created long ago, delivered recently: stays
                ("failed", now, None),
            ]
            async with gw.runtime.database.write() as conn:
                for n, (status, created_at, delivered_at) in enumerate(rows):
                    await conn.execute(
                        t.webhook_deliveries.insert().values(
                            event="session.funded",
                            payload="{}",
                            status=status,
                            attempts=1,
                            created_at=created_at,
                            delivered_at=delivered_at,
                            dedupe_key=f"retention-{n}",
                        )
                    )
            retention = Retention.from_settings(settings)
            result = await prune(gw.runtime.database, retention, now=now)
            assert result.webhook_deliveries == 2
            async with gw.runtime.database.read() as conn:
                left = (await conn.execute(select(t.webhook_deliveries.c.dedupe_key))).scalars().all()
            assert sorted(left) == ["retention-2", "retention-3", "retention-4"]
            # Off (0): nothing goes.
            keep_all = Retention.from_settings(make_settings(database_url=url, webhook_delivery_retention_s=0))
            assert (await prune(gw.runtime.database, keep_all, now=now + timedelta(days=60))).webhook_deliveries == 0
