"""A paid call's life cycle in the ledger: in flight, settled once, swept once after a crash."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from arkgate.db import migrate
from arkgate.db import tables as t
from arkgate.db.engine import Database, utcnow
from arkgate.errors import ArkgateError, ConflictError, IdempotencyConflict
from arkgate.payments.charging import INTERRUPTED
from arkgate.payments.ledger import ArkEntry, Credit, Ledger, hash_token
from tests.databases import backends, scratch_database


@contextlib.asynccontextmanager
async def ledgers(backend: str, tmp_path: Any, *instances: str) -> AsyncIterator[list[Ledger]]:
    """One ledger per gateway instance, each with its own engine, all on one fresh database."""
    async with scratch_database(backend, str(tmp_path / "ledger.sqlite3")) as url:
        databases = [Database(url) for _ in instances]
        await migrate.upgrade(databases[0])
        opened = [
            Ledger(database, session_ttl_s=3600, instance_id=name)
            for database, name in zip(databases, instances, strict=True)
        ]
        try:
            yield opened
        finally:
            for ledger, database in zip(opened, databases, strict=True):
                ledger.close()
                await database.dispose()


async def funded(ledger: Ledger, token: str, sats: int) -> int:
    session_id = await ledger.open_session(token_hash=hash_token(token), requested_sats=sats, ark_address=None)
    await ledger.credit_lightning(
        Credit(rail="lightning", payment_key=f"ln:{token}", amount_sats=sats), session_id=session_id
    )
    return session_id


@pytest.mark.parametrize("backend", backends())
async def test_two_instances_sweeping_the_same_interrupted_calls_refund_each_once(backend, tmp_path):
    async with ledgers(backend, tmp_path, "crashed", "a", "b") as (crashed, first, second):
        session_id = await funded(crashed, "ak_sweep", 1000)
        charges = [
            await crashed.charge(hash_token("ak_sweep"), "ai-chat", 10 + i, idempotency=(f"k{i}", "h"))
            for i in range(20)
        ]
        assert (await crashed.session_by_id(session_id)).balance_sats == 1000 - sum(c.amount_sats for c in charges)
        # Nothing is past its deadline yet: a live instance's calls are not another's to sweep.
        assert await first.sweep_interrupted(include_own=True) == []

        later = utcnow() + timedelta(hours=1)  # the crashed instance never came back
        rounds = await asyncio.gather(
            *[ledger.sweep_interrupted(include_own=False, now=later) for ledger in (first, second) * 3]
        )
        swept = [settled.call_id for batch in rounds for settled in batch]
        assert sorted(swept) == sorted(c.call_id for c in charges)  # each call exactly once, across sweepers
        assert (await first.session_by_id(session_id)).balance_sats == 1000
        assert await first.inconsistent_sessions() == []
        for receipt in await first.receipts_of(session_id):
            assert receipt.refunded_sats == receipt.charged_sats
            assert receipt.refund_reason == INTERRUPTED
            assert [row.kind for row in receipt.rows] == ["debit", "refund"]
            assert not receipt.is_in_flight
        async with first.db.read() as conn:  # every Idempotency-Key released: a retry runs
            assert (await conn.execute(select(t.idempotency_keys))).first() is None


@pytest.mark.parametrize("backend", backends())
async def test_a_restarted_instance_sweeps_its_own_calls_at_once_and_only_its_own(backend, tmp_path):
    async with ledgers(backend, tmp_path, "me", "other") as (me, other):
        await funded(me, "ak_mine", 500)
        mine = await me.charge(hash_token("ak_mine"), "e", 100)
        theirs = await other.charge(hash_token("ak_mine"), "e", 50)
        swept = await me.sweep_interrupted(include_own=True)
        assert [s.call_id for s in swept] == [mine.call_id]
        assert await other.settle(theirs.call_id) is not None  # the other instance's call ends normally


@pytest.mark.parametrize("backend", backends())
async def test_refunds_never_exceed_the_debit_whatever_the_callers_do(backend, tmp_path):
    async with ledgers(backend, tmp_path, "one") as (ledger,):
        session_id = await funded(ledger, "ak_refund", 100)
        charge = await ledger.charge(hash_token("ak_refund"), "e", 40)
        await asyncio.gather(*[ledger.refund(charge, 1000, reason="greedy") for _ in range(10)])
        await ledger.refund(charge, 40, reason="again")
        assert (await ledger.session_by_id(session_id)).balance_sats == 100
        (receipt,) = await ledger.receipts_of(session_id)
        assert receipt.charged_sats == receipt.refunded_sats == 40
        assert await ledger.inconsistent_sessions() == []


@pytest.mark.parametrize("backend", backends())
async def test_an_idempotency_clash_is_a_domain_error_not_a_database_error(backend, tmp_path):
    async with ledgers(backend, tmp_path, "one") as (ledger,):
        session_id = await funded(ledger, "ak_idem", 100)
        outcomes = await asyncio.gather(
            *[ledger.charge(hash_token("ak_idem"), "e", 10, idempotency=("same", "h")) for _ in range(8)],
            return_exceptions=True,
        )
        clashes = [o for o in outcomes if isinstance(o, BaseException)]
        assert len(clashes) == 7
        assert all(isinstance(o, IdempotencyConflict) for o in clashes), clashes
        assert issubclass(IdempotencyConflict, ConflictError) and issubclass(IdempotencyConflict, ArkgateError)
        assert IdempotencyConflict.status == 409
        assert (await ledger.session_by_id(session_id)).balance_sats == 90


@pytest.mark.parametrize("backend", backends())
async def test_a_vtxo_is_credited_once_whatever_wallet_or_movement_id_it_comes_with(backend, tmp_path):
    async with ledgers(backend, tmp_path, "one") as (ledger,):
        session_id = await ledger.open_session(token_hash="h" * 64, requested_sats=500, ark_address="tark1vtxo")
        entry = [ArkEntry(address="tark1vtxo", amount_sats=500)]
        # barkd without a fingerprint once made the watcher say "wallet"; then the real one came back.
        first = await ledger.credit_ark_movement(wallet_id="wallet", movement_id=7, entries=entry, vtxo_ids=["ab:0"])
        again = await ledger.credit_ark_movement(wallet_id="fp1234", movement_id=7, entries=entry, vtxo_ids=["ab:0"])
        moved = await ledger.credit_ark_movement(wallet_id="fp1234", movement_id=8, entries=entry, vtxo_ids=["ab:0"])
        assert [r.credited for r in first] == [True]
        assert again == [] and moved == []
        assert (await ledger.session_by_id(session_id)).balance_sats == 500
        with pytest.raises(ValueError, match="fingerprint"):
            await ledger.credit_ark_movement(wallet_id="", movement_id=9, entries=entry, vtxo_ids=["cd:0"])
