"""Requests that arrive together share a round trip (``db/batches.py``), and every caller still gets its own answer."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from arkgate.db import batches, migrate
from arkgate.db.engine import Database
from arkgate.payments import charging
from arkgate.payments.ledger import Ledger, hash_token
from tests.databases import backends, scratch_database

SERVERS = [p for p in backends() if p.values[0] != "sqlite"]


@contextlib.asynccontextmanager
async def funded_sessions(
    kind: str, tmp_path: Path, name: str, balances: list[int]
) -> AsyncIterator[tuple[Ledger, list[str]]]:
    """A ledger on a fresh database of ``kind`` and the token hashes of sessions holding ``balances``."""
    async with scratch_database(kind, str(tmp_path / "x.sqlite3")) as url:
        database = Database(url, pool_size=4)
        try:
            await migrate.upgrade(database)
            ledger = Ledger(database, session_ttl_s=3600)
            tokens = [hash_token(f"ak_{name}_{i}") for i in range(len(balances))]
            for token_hash, sats in zip(tokens, balances, strict=True):
                session_id = await ledger.open_session(token_hash=token_hash, requested_sats=0, ark_address=None)
                await ledger.credit_free(session_id, sats)
            yield ledger, tokens
        finally:
            await database.dispose()


@pytest.mark.parametrize("kind", SERVERS)
async def test_concurrent_lookups_and_settlements_share_round_trips_and_stay_exact(
    kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The coalescer: many requests, few batches; every caller still gets its own answer, once."""
    async with funded_sessions(kind, tmp_path, "batch", [100 + i for i in range(20)]) as (ledger, tokens):
        sizes: list[int] = []
        real = batches.fetch_keyed

        async def counted(database: Database, script: batches.KeyedScript, keys: list[object]) -> object:
            sizes.append(len(keys))
            return await real(database, script, keys)

        monkeypatch.setattr(batches, "fetch_keyed", counted)

        # 20 distinct tokens, each asked 3 times at once, and one unknown token.
        asked = [*tokens, *tokens, *tokens, hash_token("ak_unknown")]
        sessions = await asyncio.gather(*(ledger.session_by_token(token_hash) for token_hash in asked))
        assert sessions[-1] is None
        assert [s.balance_sats for s in sessions[:20]] == [100 + i for i in range(20)]  # type: ignore[union-attr]
        assert sessions[:20] == sessions[20:40] == sessions[40:60]
        assert sum(sizes) == 21 and len(sizes) < 21  # each distinct key sent once, in shared batches

        sizes.clear()
        charges = await asyncio.gather(*(ledger.charge(token_hash, "qr-generate", 5) for token_hash in tokens))
        # Each call settled by two settlers at once (the meter and, say, a sweep): exactly one claims it.
        settled = await asyncio.gather(*(ledger.settle(charge.call_id) for charge in charges for _ in range(2)))
        assert sum(s is not None for s in settled) == len(charges)
        assert len(sizes) < len(charges)
        for charge in charges:
            assert await ledger.in_flight_call_ids(charge.session_id) == set()
        assert await ledger.inconsistent_sessions() == []


@pytest.mark.parametrize("kind", SERVERS)
async def test_a_settlement_cancelled_before_its_batch_leaves_the_call_in_flight(kind: str, tmp_path: Path) -> None:
    async with funded_sessions(kind, tmp_path, "cancel", [10]) as (ledger, [token_hash]):
        session = await ledger.session_by_token(token_hash)
        assert session is not None
        session_id = session.id
        first, second = [await ledger.charge(token_hash, "qr-generate", 2) for _ in range(2)]
        sent = asyncio.ensure_future(ledger.settle(first.call_id))  # starts the batch
        await asyncio.sleep(0)
        dropped = asyncio.ensure_future(ledger.settle(second.call_id))  # waits for the next batch
        await asyncio.sleep(0)
        dropped.cancel()
        assert await sent is not None
        with pytest.raises(asyncio.CancelledError):
            await dropped
        # Never sent: the call is still in flight, for the meter or the sweep to settle (and refund).
        assert await ledger.in_flight_call_ids(session_id) == {second.call_id}
        assert await ledger.refund(second, 2, reason="interrupted") == 8
        assert await ledger.inconsistent_sessions() == []


@pytest.mark.parametrize("kind", SERVERS)
async def test_charges_batched_together_commit_together_and_a_failing_one_sends_all_to_the_general_path(
    kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with funded_sessions(kind, tmp_path, "charge", [30] * 4) as (ledger, tokens):
        await ledger.charge(tokens[0], "qr-generate", 1)  # connected, compiled: the rest can batch
        general: list[str] = []
        apply_charge = charging.apply_charge

        def counted(conn: object, request: charging.ChargeRequest) -> object:
            general.append(request.call_id)
            return apply_charge(conn, request)  # type: ignore[arg-type]

        monkeypatch.setattr(charging, "apply_charge", counted)
        sizes: list[int] = []
        send = batches.ScriptBatch._send

        async def sent(self: batches.ScriptBatch, compiled: object, batch: list[object]) -> None:
            sizes.append(len(batch))
            await send(self, compiled, batch)  # type: ignore[arg-type]

        monkeypatch.setattr(batches.ScriptBatch, "_send", sent)

        # 40 charges of 1 sat over 4 sessions at once: batched, each sees the ones before it.
        charges = await asyncio.gather(*(ledger.charge(tokens[i % 4], "qr-generate", 1) for i in range(40)))
        assert general == [] and sum(sizes) == 40 and len(sizes) < 40
        assert len({c.call_id for c in charges}) == 40
        assert sorted(c.balance_sats for c in charges if c.session_id == charges[1].session_id) == list(range(20, 30))

        # Two charges with one call id in the same batch: the second's in-flight row fails, the whole
        # batch rolls back, and every charge in it runs alone on the general path.
        results = await asyncio.gather(
            *(ledger.charge(tokens[i % 4], "qr-generate", 1, call_id="same" if i < 2 else None) for i in range(8)),
            return_exceptions=True,
        )
        failed = [r for r in results if isinstance(r, BaseException)]
        assert len(failed) == 1 and len(general) == 8
        ids = set()
        for token_hash in tokens:
            session = await ledger.session_by_token(token_hash)
            assert session is not None
            ids |= await ledger.in_flight_call_ids(session.id)
        assert len(ids) == 1 + 40 + 7
        assert await ledger.inconsistent_sessions() == []
