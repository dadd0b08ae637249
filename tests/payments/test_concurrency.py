"""Concurrent paid calls never overspend, on SQLite, PostgreSQL and MariaDB."""

from __future__ import annotations

import asyncio

import pytest

from tests.conftest import running_gateway
from tests.databases import backends, scratch_database


@pytest.mark.parametrize("backend", backends())
async def test_200_concurrent_calls_on_a_balance_for_50_succeed_exactly_50_times(backend, make_settings, tmp_path):
    async with scratch_database(backend, str(tmp_path / "ledger.sqlite3")) as url:
        async with running_gateway(make_settings(database_url=url)) as gw:
            token = await gw.new_session(100)  # qr-generate costs 2: 50 calls
            calls = [gw.call("qr-generate", {"data": f"call {i}"}, token=token) for i in range(200)]
            responses = await asyncio.gather(*calls)
            statuses = [r.status_code for r in responses]
            assert statuses.count(200) == 50
            assert statuses.count(402) == 150
            assert all(r.json()["cost_sats"] == 0 for r in responses if r.status_code == 402)
            assert await gw.balance(token) == 0
            await gw.assert_ledger_consistent()


@pytest.mark.parametrize("backend", backends())
async def test_concurrent_credits_of_one_payment_credit_once(backend, make_settings, tmp_path):
    from arkgate.payments.ledger import ArkEntry, Credit

    async with scratch_database(backend, str(tmp_path / "ledger.sqlite3")) as url:
        async with running_gateway(make_settings(database_url=url, payment_mode="free")) as gw:
            ledger = gw.runtime.ledger
            session_id = await ledger.open_session(
                token_hash="h" * 64, requested_sats=10, ark_address="tark1concurrent"
            )
            credit = Credit(rail="lightning", payment_key="ln:" + "a" * 64, amount_sats=10)
            ark = dict(
                wallet_id="w",
                movement_id=7,
                entries=[ArkEntry(address="tark1concurrent", amount_sats=5)],
                vtxo_ids=["ab:0"],
            )
            results = await asyncio.gather(
                *[ledger.credit_lightning(credit, session_id=session_id) for _ in range(20)],
                *[ledger.credit_ark_movement(**ark) for _ in range(20)],
            )
            flat = [r for r in results[:20]] + [r for batch in results[20:] for r in batch]
            assert sum(1 for r in flat if r.credited) == 2
            session = await ledger.session_by_id(session_id)
            assert session.balance_sats == 15
            await gw.assert_ledger_consistent()


@pytest.mark.parametrize("backend", backends())
async def test_concurrent_retries_with_one_idempotency_key_are_charged_once(backend, make_settings, tmp_path):
    async with scratch_database(backend, str(tmp_path / "ledger.sqlite3")) as url:
        async with running_gateway(make_settings(database_url=url)) as gw:
            token = await gw.new_session(100)
            headers = {"Idempotency-Key": "same-call"}
            responses = await asyncio.gather(
                *[gw.call("qr-generate", {"data": "once"}, token=token, headers=headers) for _ in range(20)]
            )
            assert {r.status_code for r in responses} <= {200, 409}
            assert await gw.balance(token) == 98
            replay = await gw.call("qr-generate", {"data": "once"}, token=token, headers=headers)
            assert replay.status_code == 200 and replay.headers.get("Idempotent-Replayed") == "true"
            assert await gw.balance(token) == 98
            await gw.assert_ledger_consistent()
