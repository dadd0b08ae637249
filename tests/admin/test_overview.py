"""The overview's figures come from the ledger: revenue = debits - refunds, liabilities, funding, attention."""

from __future__ import annotations

from sqlalchemy import select

from arkgate.db import tables as t
from arkgate.payments.ledger import Credit, hash_token
from tests.admin.conftest import admin_get


async def test_overview_adds_up_calls_refunds_sessions_and_payments(admin_gateway_factory):
    async with admin_gateway_factory() as gw:
        empty = await admin_get(gw.client, "overview")
        assert empty["liabilities_sats"] == 0
        assert empty["revenue_all_time_sats"] == 0
        assert empty["wallet"] is None  # free mode: no barkd
        assert empty["solvent"] is True
        assert len(empty["hourly"]["hours"]) == 24

        first = await gw.new_session(1000)
        second = await gw.new_session(500)
        for _ in range(3):
            assert (await gw.call("qr-generate", {"data": "hello"}, token=first)).status_code == 200
        assert (await gw.call("qr-generate", {"data": "x"}, token=second)).status_code == 200
        ledger = gw.runtime.ledger
        # A charge refunded in part, as the meter does for a metered endpoint.
        charge = await ledger.charge(hash_token(second), "ai-chat", 40)
        await ledger.refund(charge, 15, reason="unused_tokens")
        # One orphan payment (no session owns it) and one late payment.
        await ledger.credit_lightning(
            Credit(rail="lightning", payment_key="ln:orphan", amount_sats=70, fee_sats=3, payment_hash="ab" * 32)
        )
        async with gw.runtime.database.write() as conn:
            await conn.execute(t.payments.update().where(t.payments.c.session_id.is_not(None)).values(fee_sats=1))
            first_id = (await conn.execute(select(t.payments.c.id).order_by(t.payments.c.id))).scalars().first()
            await conn.execute(t.payments.update().where(t.payments.c.id == first_id).values(is_late=True))

        overview = await admin_get(gw.client, "overview")
        qr_price = gw.runtime.catalog.get("qr-generate").price_sats
        revenue = 4 * qr_price + 40 - 15
        assert overview["revenue_all_time_sats"] == revenue
        assert overview["revenue_today_sats"] == revenue
        assert overview["revenue_7d_sats"] == revenue
        assert overview["liabilities_sats"] == 1000 + 500 - revenue
        assert overview["liabilities_sats"] == await ledger.liabilities_sats()
        by_endpoint = {e["endpoint"]: e for e in overview["endpoints"]}
        assert by_endpoint["qr-generate"] == {"endpoint": "qr-generate", "calls": 4, "refunds": 0, "sats": 4 * qr_price}
        assert by_endpoint["ai-chat"] == {"endpoint": "ai-chat", "calls": 1, "refunds": 1, "sats": 25}
        assert overview["sessions"]["active"]["count"] == 2
        assert overview["funding"]["free"] == {"count": 2, "amount_sats": 1500, "fee_sats": 2}
        assert overview["funding"]["lightning"] == {"count": 1, "amount_sats": 70, "fee_sats": 3}
        assert overview["receive_fees_sats"] == 5
        attention = overview["attention"]
        assert attention["orphan_payments"] == 1
        assert attention["late_payments"] == 1
        assert {p["payment_hash"] for p in attention["payments"] if p["orphan"]} == {"ab" * 32}
        assert sum(overview["hourly"]["calls"]) == 5
        assert sum(overview["hourly"]["sats"]) == revenue
        assert sum(overview["hourly"]["funding_sats"]) == 1500 + 70

        activity = await admin_get(gw.client, "activity", params={"limit": 3})
        assert len(activity["calls"]) == 3
        assert activity["calls"][0]["kind"] == "refund"
        assert activity["payments"][0]["amount_sats"] == 70
        await gw.assert_ledger_consistent()


async def test_wallet_actions_in_free_mode_say_there_is_no_wallet(admin_gateway_factory):
    async with admin_gateway_factory() as gw:
        health = await admin_get(gw.client, "health")
        assert health["payment_mode"] == "free"
        assert health["monitor"]["running"] is False
        for path in ("refresh", "sweep", "exits/start", "exits/progress", "exits/claim"):
            response = await gw.client.post(
                f"/admin/api/{path}",
                json={},
                headers={"Authorization": f"Bearer {gw.settings.admin_token.get_secret_value()}"},
            )
            assert response.status_code == 409, (path, response.text)
            assert "free payment mode" in response.json()["error"]


async def test_bad_admin_input_is_a_400_with_a_message(admin_gateway_factory):
    async with admin_gateway_factory() as gw:
        headers = {"Authorization": f"Bearer {gw.settings.admin_token.get_secret_value()}"}
        for path, body in (
            ("sweep", {"amount_sats": -5}),
            ("sweep", {"amount_sats": "lots"}),
            ("sweep", {"unknown": 1}),
            ("exits/progress", {"fee_rate_sat_per_vb": 0}),
            ("refresh", {"vtxos": "abc"}),
        ):
            response = await gw.client.post(f"/admin/api/{path}", json=body, headers=headers)
            assert response.status_code == 400, (path, body, response.text)
            assert response.json()["error"]
        response = await gw.client.post(
            "/admin/api/sweep", content=b"{nope", headers={**headers, "Content-Type": "application/json"}
        )
        assert response.status_code == 400
