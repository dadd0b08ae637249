"""A real ``arkgate serve`` killed (SIGKILL) mid-withdrawal: before barkd's send, and after it but before settling.

The gateway holds at either point (``ARKGATE_PAYOUT_TEST_PAUSE``); after the kill a fresh process
settles the payout once from barkd's history: never sent → refunded; sent → completed; barkd says
failed → refunded. The simulator counts what reached the destination: never more than once.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from arkgate.db import tables as t
from arkgate.db.engine import Database
from arkgate.payments.ledger import Ledger
from tests.conftest import wait_for
from tests.databases import backends, scratch_database
from tests.payments.test_crash import GatewayProcess

FAST_RECOVERY = {
    "payout_send_timeout_s": 1,
    "payout_unknown_grace_s": 0,
    "payout_recover_interval_s": 0.2,
    "reconcile_interval_s": 3600,
}


async def _fund(client: httpx.AsyncClient, simulator: Any, sats: int) -> str:
    created = (await client.post("/v1/sessions", json={"amount_sats": sats})).json()
    simulator.pay_invoice(created["funding"]["lightning_invoice"])
    token = str(created["token"])

    async def funded() -> bool:
        response = await client.get("/v1/balance", headers={"Authorization": f"Bearer {token}"})
        return response.status_code == 200 and response.json()["balance_sats"] == sats

    await wait_for(funded, timeout_s=20)
    return token


async def _payouts(url: str) -> list[dict[str, Any]]:
    database = Database(url)
    try:
        async with database.read() as conn:
            return [dict(r._mapping) for r in await conn.execute(select(t.payouts))]
    finally:
        await database.dispose()


async def _assert_consistent(url: str) -> None:
    database = Database(url)
    try:
        assert await Ledger(database, session_ttl_s=60, group_commit=False).inconsistent_sessions() == []
    finally:
        await database.dispose()


# (where the gateway is killed, the rail, barkd fails the send?) -> what the restart must conclude
SCENARIOS = [
    pytest.param("before_send", "ark", False, "failed", 0, id="killed-before-send"),
    pytest.param("after_send", "ark", False, "completed", 1, id="killed-after-ark-send"),
    pytest.param("after_send", "lightning", False, "completed", 1, id="killed-after-lightning-send"),
    pytest.param("after_send", "lightning", True, "failed", 0, id="killed-after-a-failed-send"),
    pytest.param("after_send", "offer", False, "completed", 1, id="killed-after-a-bolt12-send"),
]


@pytest.mark.parametrize("backend", backends())
@pytest.mark.parametrize(("pause", "rail", "send_fails", "expected_state", "expected_payments"), SCENARIOS)
async def test_sigkill_mid_withdrawal_settles_it_once_from_barkds_state(
    backend, pause, rail, send_fails, expected_state, expected_payments, tmp_path, simulator
):
    data = tmp_path / "data"
    async with scratch_database(backend, str(data / "arkgate.sqlite3")) as url:
        first = GatewayProcess(
            data, simulator, database_url=url, payout_test_pause=pause, payout_fee_base_sats=2, **FAST_RECOVERY
        )
        first.start()
        try:
            async with httpx.AsyncClient(base_url=first.url, timeout=30) as client:
                token = await _fund(client, simulator, 1000)
                if rail in ("ark", "offer"):
                    destination = simulator.payee_address() if rail == "ark" else simulator.payee_offer()
                    body: dict[str, Any] = {"destination": destination, "amount_sats": 600}
                else:
                    destination = simulator.payee_invoice(598)["invoice"]
                    body = {"destination": destination}
                if send_fails:
                    simulator.faults(lightning_send_fail=True)
                request = asyncio.create_task(
                    client.post("/v1/sessions/withdraw", json=body, headers={"Authorization": f"Bearer {token}"})
                )
                await wait_for(lambda: "payout.paused" in first.log(), timeout_s=20)
                rows = await _payouts(url)
                assert [(r["state"], int(r["amount_sats"])) for r in rows] == [("pending", 600)]
                first.kill()
                with contextlib.suppress(httpx.HTTPError):
                    await request
        finally:
            if first.process is not None and first.process.poll() is None:
                first.kill()
        simulator.faults(lightning_send_fail=False)
        # What barkd did before the restart: the destination was paid at most once.
        assert simulator.payee_received(destination)["payments"] == expected_payments

        second = GatewayProcess(data, simulator, database_url=url, **FAST_RECOVERY)
        second.start()
        try:

            async def settled() -> list[dict[str, Any]]:
                rows = await _payouts(url)
                return rows if rows and rows[0]["state"] != "pending" else []

            rows = await wait_for(settled, timeout_s=20)
            assert [r["state"] for r in rows] == [expected_state]
            async with httpx.AsyncClient(base_url=second.url, timeout=30) as client:
                balance = (await client.get("/v1/balance", headers={"Authorization": f"Bearer {token}"})).json()[
                    "balance_sats"
                ]
            assert balance == (400 if expected_state == "completed" else 1000)
            received = simulator.payee_received(destination)
            assert received["payments"] == expected_payments
            assert received["received_sat"] == (598 * expected_payments)
            assert second.log().count("payout.settled") == 1
        finally:
            second.kill()
        assert [r["state"] for r in await _payouts(url)] == [expected_state]
        await _assert_consistent(url)
