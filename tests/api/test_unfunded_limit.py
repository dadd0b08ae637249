"""One client cannot hold unfunded sessions (invoices, barkd addresses) without limit."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from arkgate.db import tables as t
from tests.conftest import wait_for


async def _sessions(gw: Any) -> int:
    async with gw.runtime.database.read() as conn:
        return int((await conn.execute(select(func.count()).select_from(t.sessions))).scalar_one())


async def test_unfunded_sessions_per_client_are_bounded_until_one_is_paid(gateway_factory: Any, simulator: Any) -> None:
    async with gateway_factory(
        payment_mode="barkd",
        barkd_url=simulator.url,
        barkd_token=simulator.token,
        max_unfunded_sessions_per_ip=3,
    ) as gw:
        created = [await gw.create_session(500) for _ in range(3)]
        refused = await gw.client.post("/v1/sessions", json={"amount_sats": 500})
        assert refused.status_code == 429
        assert refused.json()["success"] is False and "unpaid sessions" in refused.json()["error"]
        # A tokenless paid call (the anonymous 402 challenge) opens no further session either.
        challenge = await gw.call("qr-generate", {"data": "hi"})
        assert challenge.status_code == 429
        assert await _sessions(gw) == 3

        simulator.send_ark(created[0]["funding"]["ark_address"], 500)

        async def credited() -> bool:
            return await gw.balance(created[0]["token"]) == 500

        await wait_for(credited)
        assert (await gw.client.post("/v1/sessions", json={"amount_sats": 500})).status_code == 201
        assert await _sessions(gw) == 4


async def test_open_top_up_invoices_per_session_are_bounded(gateway_factory: Any, simulator: Any) -> None:
    async with gateway_factory(
        payment_mode="barkd", barkd_url=simulator.url, barkd_token=simulator.token, max_open_invoices_per_session=2
    ) as gw:
        created = await gw.create_session(500)  # its funding invoice is the first open one
        headers = {"Authorization": f"Bearer {created['token']}"}
        first = await gw.client.post("/v1/sessions/topup", json={"amount_sats": 100}, headers=headers)
        assert first.status_code == 200, first.text
        refused = await gw.client.post("/v1/sessions/topup", json={"amount_sats": 100}, headers=headers)
        assert refused.status_code == 429 and "unpaid invoices" in refused.json()["error"]
        simulator.pay_invoice(first.json()["funding"]["lightning_invoice"])

        async def credited() -> bool:
            return await gw.balance(created["token"]) == 100

        await wait_for(credited)
        again = await gw.client.post("/v1/sessions/topup", json={"amount_sats": 100}, headers=headers)
        assert again.status_code == 200, again.text
