"""Withdraw and close against the simulator: exact amounts, refusals at no cost, failed sends refunded once."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest

from arkgate.payments.ledger import hash_token
from tests.conftest import wait_for
from tests.databases import backends, scratch_database


async def funded(gw: Any, simulator: Any, sats: int) -> str:
    created = await gw.create_session(sats)
    simulator.pay_invoice(created["funding"]["lightning_invoice"])
    token = created["token"]
    await wait_for(lambda: _balance_is(gw, token, sats))
    return str(token)


async def _balance_is(gw: Any, token: str, sats: int) -> bool:
    return await gw.balance(token) == sats


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def payout_rows(gw: Any) -> list[dict[str, Any]]:
    from sqlalchemy import select

    from arkgate.db import tables as t

    async with gw.runtime.database.read() as conn:
        return [dict(r._mapping) for r in await conn.execute(select(t.payouts).order_by(t.payouts.c.id))]


async def test_withdraw_to_a_bolt11_invoice_pays_it_exactly_and_the_fee_comes_from_the_balance(
    paid_gateway_factory, simulator
):
    async with paid_gateway_factory(payout_fee_base_sats=3, payout_fee_ppm=10_000) as gw:
        token = await funded(gw, simulator, 1000)
        payee = simulator.payee_invoice(400)
        quote = await gw.client.post(
            "/v1/sessions/withdraw", json={"destination": payee["invoice"], "quote_only": True}, headers=bearer(token)
        )
        assert quote.status_code == 200, quote.text
        fee = 3 + 400 * 10_000 // 1_000_000
        assert quote.json() == {
            "rail": "lightning",
            "amount_sats": 400 + fee,
            "fee_sats": fee,
            "net_sats": 400,
            "balance_sats": 1000,
        }
        response = await gw.client.post(
            "/v1/sessions/withdraw", json={"destination": payee["invoice"]}, headers=bearer(token)
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["status"] == "completed"
        assert body["fee_sats"] == fee
        assert body["amount_sats"] - body["fee_sats"] == 400
        received = simulator.payee_received(payee["invoice"])
        assert received == {"destination": payee["invoice"], "received_sat": 400, "payments": 1}
        assert await gw.balance(token) == 1000 - 400 - fee == body["balance_sats"]
        await gw.assert_ledger_consistent()
        # The same invoice again: barkd refuses it, the balance is refunded, the payee is not paid twice.
        again = await gw.client.post(
            "/v1/sessions/withdraw", json={"destination": payee["invoice"]}, headers=bearer(token)
        )
        assert again.status_code == 502, again.text
        assert again.json()["error_code"] == "payout_failed"
        assert simulator.payee_received(payee["invoice"])["payments"] == 1
        assert await gw.balance(token) == 1000 - 400 - fee
        await gw.assert_ledger_consistent()


async def test_withdraw_to_an_ark_address_sends_the_amount_minus_the_stated_fee(paid_gateway_factory, simulator):
    async with paid_gateway_factory(payout_fee_base_sats=5) as gw:
        token = await funded(gw, simulator, 1500)
        address = simulator.payee_address()
        response = await gw.client.post(
            "/v1/sessions/withdraw", json={"destination": address, "amount_sats": 600}, headers=bearer(token)
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert (body["status"], body["amount_sats"], body["fee_sats"], body["net_sats"]) == ("completed", 600, 5, 595)
        assert simulator.payee_received(address) == {"destination": address, "received_sat": 595, "payments": 1}
        assert await gw.balance(token) == 900
        rows = await payout_rows(gw)
        assert [(r["state"], r["movement_id"] is not None) for r in rows] == [("completed", True)]
        await gw.assert_ledger_consistent()
        listed = await gw.client.get("/v1/sessions/me/payouts", headers=bearer(token))
        assert [p["status"] for p in listed.json()["payouts"]] == ["completed"]


async def test_a_withdrawal_larger_than_the_balance_minus_fees_is_refused_at_no_cost(paid_gateway_factory, simulator):
    async with paid_gateway_factory(payout_fee_base_sats=10) as gw:
        token = await funded(gw, simulator, 500)
        address = simulator.payee_address()
        too_much = await gw.client.post(
            "/v1/sessions/withdraw", json={"destination": address, "amount_sats": 501}, headers=bearer(token)
        )
        assert too_much.status_code == 402, too_much.text
        body = too_much.json()
        assert body["success"] is False and body["cost_sats"] == 0
        assert "at most 490 sats can reach the destination" in body["error"]
        big_invoice = simulator.payee_invoice(495)  # 495 + 10 fee > 500
        refused = await gw.client.post(
            "/v1/sessions/withdraw", json={"destination": big_invoice["invoice"]}, headers=bearer(token)
        )
        assert refused.status_code == 402, refused.text
        garbage = await gw.client.post("/v1/sessions/withdraw", json={"destination": "hello"}, headers=bearer(token))
        assert garbage.status_code == 400 and "BOLT11" in garbage.json()["error"]
        assert await gw.balance(token) == 500
        assert await payout_rows(gw) == []
        assert simulator.payee_received(address)["payments"] == 0
        await gw.assert_ledger_consistent()


async def test_a_send_barkd_reports_failed_is_refunded_once(paid_gateway, simulator):
    token = await funded(paid_gateway, simulator, 800)
    simulator.faults(lightning_send_fail=True)
    payee = simulator.payee_invoice(300)
    response = await paid_gateway.client.post(
        "/v1/sessions/withdraw", json={"destination": payee["invoice"]}, headers=bearer(token)
    )
    assert response.status_code == 502, response.text
    assert response.json()["cost_sats"] == 0
    assert await paid_gateway.balance(token) == 800
    assert simulator.payee_received(payee["invoice"])["payments"] == 0
    service = paid_gateway.runtime.payouts
    assert await service.recover() == 0  # already settled: a second look refunds nothing more
    rows = await payout_rows(paid_gateway)
    assert [r["state"] for r in rows] == ["failed"]
    assert await paid_gateway.balance(token) == 800
    await paid_gateway.assert_ledger_consistent()


async def test_close_withdraws_everything_and_refuses_the_token_afterwards(paid_gateway, simulator):
    token = await funded(paid_gateway, simulator, 700)
    address = simulator.payee_address()
    response = await paid_gateway.client.post(
        "/v1/sessions/close", json={"destination": address}, headers=bearer(token)
    )
    assert response.status_code == 200, response.text
    assert response.json()["payout"]["net_sats"] == 700
    assert simulator.payee_received(address)["received_sat"] == 700
    after = await paid_gateway.client.get("/v1/balance", headers=bearer(token))
    assert after.status_code == 401 and "closed" in after.json()["error"]
    await paid_gateway.assert_ledger_consistent()


async def test_a_payment_after_close_is_credited_but_the_token_stays_closed(paid_gateway, simulator):
    """A late payment keeps the ledger exact, yet must not bring a closed (maybe leaked) token back to life."""
    created = await paid_gateway.create_session(500)
    simulator.pay_invoice(created["funding"]["lightning_invoice"])
    token = created["token"]
    await wait_for(lambda: _balance_is(paid_gateway, token, 500))
    closed = await paid_gateway.client.post(
        "/v1/sessions/close", json={"destination": simulator.payee_address()}, headers=bearer(token)
    )
    assert closed.status_code == 200, closed.text
    session_id = (await paid_gateway.runtime.ledger.session_by_token(hash_token(token))).id
    simulator.send_ark(created["funding"]["ark_address"], 300)
    await wait_for(lambda: _session_balance_is(paid_gateway, session_id, 300))
    session = await paid_gateway.runtime.ledger.session_by_id(session_id)
    assert session is not None and session.status == "closed"
    call = await paid_gateway.client.post("/api/qr-generate", json={"data": "after close"}, headers=bearer(token))
    assert call.status_code == 401 and "closed" in call.json()["error"], call.text
    balance = await paid_gateway.client.get("/v1/balance", headers=bearer(token))
    assert balance.status_code == 401
    assert (await paid_gateway.runtime.ledger.session_by_id(session_id)).balance_sats == 300  # nothing spent
    await paid_gateway.assert_ledger_consistent()


async def _session_balance_is(gw: Any, session_id: int, sats: int) -> bool:
    session = await gw.runtime.ledger.session_by_id(session_id)
    return session is not None and session.balance_sats == sats


async def test_listeners_hear_each_withdrawal_once(paid_gateway, simulator):
    token = await funded(paid_gateway, simulator, 900)
    heard: list[Any] = []

    async def listen(event: Any) -> None:
        heard.append(event)

    paid_gateway.runtime.payouts.listeners.append(listen)
    address = simulator.payee_address()
    await paid_gateway.client.post(
        "/v1/sessions/withdraw", json={"destination": address, "amount_sats": 400}, headers=bearer(token)
    )
    assert [(e.type, e.net_sats) for e in heard] == [("withdrawal.completed", 400)]


@pytest.mark.parametrize("backend", backends())
async def test_100_concurrent_withdrawals_and_paid_calls_never_overdraw(
    backend, paid_gateway_factory, simulator, tmp_path
):
    async with scratch_database(backend, str(tmp_path / "ledger.sqlite3")) as url:
        async with paid_gateway_factory(database_url=url, payout_max_per_hour=1000) as gw:
            assert await gw.runtime.watcher.wait_ready(10)
            token = await funded(gw, simulator, 5000)
            address = simulator.payee_address()
            withdrawals = [
                gw.client.post(
                    "/v1/sessions/withdraw", json={"destination": address, "amount_sats": 400}, headers=bearer(token)
                )
                for _ in range(50)
            ]
            calls = [gw.call("qr-generate", {"data": f"call {i}"}, token=token) for i in range(50)]
            responses = await asyncio.gather(*withdrawals, *calls)
            paid_out = [r for r in responses[:50] if r.status_code == 200]
            refused = [r for r in responses[:50] if r.status_code != 200]
            assert all(r.json()["status"] == "completed" for r in paid_out)
            assert all(r.status_code == 402 and r.json()["cost_sats"] == 0 for r in refused), [r.text for r in refused]
            served = sum(1 for r in responses[50:] if r.status_code == 200)
            assert all(r.status_code in (200, 402) for r in responses[50:])
            balance = await gw.balance(token)
            assert balance == 5000 - 400 * len(paid_out) - 2 * served >= 0
            assert balance < 400 or served < 50  # it stopped only when nothing more fitted
            received = simulator.payee_received(address)
            assert received["payments"] == len(paid_out)
            assert received["received_sat"] == 400 * len(paid_out)
            await gw.assert_ledger_consistent()


async def test_refund_to_pays_the_remainder_once_when_the_session_expires(paid_gateway_factory, simulator):
    from sqlalchemy import update

    from arkgate.db import tables as t
    from arkgate.db.engine import utcnow

    async with paid_gateway_factory(payout_recover_interval_s=0.05) as gw:
        address = simulator.payee_address()
        refused = await gw.client.post("/v1/sessions", json={"amount_sats": 500, "refund_to": "lnbc1nonsense"})
        assert refused.status_code == 400
        created = await gw.client.post("/v1/sessions", json={"amount_sats": 500, "refund_to": address})
        assert created.status_code == 201, created.text
        token = created.json()["token"]
        simulator.pay_invoice(created.json()["funding"]["lightning_invoice"])
        await wait_for(lambda: _balance_is(gw, token, 500))
        assert (await gw.call("qr-generate", {"data": "spend a little"}, token=token)).status_code == 200
        listed = await gw.client.get("/v1/sessions/me/payouts", headers=bearer(token))
        assert listed.json()["refund_to"] == address
        assert simulator.payee_received(address)["payments"] == 0  # not before it expires

        async with gw.runtime.database.write() as conn:
            await conn.execute(update(t.sessions).values(expires_at=utcnow() - timedelta(days=1)))
        await wait_for(lambda: simulator.payee_received(address)["payments"] == 1)
        rows = await wait_for(lambda: _settled_rows(gw))
        assert [(r["purpose"], r["state"], int(r["net_sats"])) for r in rows] == [("refund_to", "completed", 498)]
        # More rounds of the job pay nothing more.
        service = gw.runtime.payouts
        from arkgate.payments.refund_to import refund_expired

        assert await refund_expired(service) == 0
        assert simulator.payee_received(address) == {"destination": address, "received_sat": 498, "payments": 1}
        assert await gw.balance(token) == 0
        await gw.assert_ledger_consistent()


async def test_refund_to_can_be_set_later_and_must_be_an_ark_address(paid_gateway, simulator):
    token = await funded(paid_gateway, simulator, 400)
    address = simulator.payee_address()
    bad = await paid_gateway.client.post(
        "/v1/sessions/me/refund-to", json={"refund_to": simulator.payee_invoice(10)["invoice"]}, headers=bearer(token)
    )
    assert bad.status_code == 400 and "Ark address" in bad.json()["error"]
    ok = await paid_gateway.client.post("/v1/sessions/me/refund-to", json={"refund_to": address}, headers=bearer(token))
    assert ok.status_code == 200 and ok.json()["refund_to"] == address
    cleared = await paid_gateway.client.post(
        "/v1/sessions/me/refund-to", json={"refund_to": None}, headers=bearer(token)
    )
    assert cleared.json()["refund_to"] is None


async def _settled_rows(gw: Any) -> list[dict[str, Any]]:
    rows = await payout_rows(gw)
    return rows if rows and all(r["state"] != "pending" for r in rows) else []


async def test_withdraw_to_a_bolt12_offer_twice_pays_each_amount_minus_the_fee(paid_gateway_factory, simulator):
    async with paid_gateway_factory(payout_fee_base_sats=2) as gw:
        token = await funded(gw, simulator, 1000)
        offer = simulator.payee_offer()
        for amount in (300, 300):
            response = await gw.client.post(
                "/v1/sessions/withdraw", json={"destination": offer, "amount_sats": amount}, headers=bearer(token)
            )
            assert response.status_code == 200, response.text
            assert (response.json()["status"], response.json()["net_sats"]) == ("completed", amount - 2)
        assert simulator.payee_received(offer) == {"destination": offer, "received_sat": 596, "payments": 2}
        rows = await payout_rows(gw)
        assert len({r["movement_id"] for r in rows}) == 2  # each payout settled by its own movement
        assert await gw.balance(token) == 400
        await gw.assert_ledger_consistent()


async def test_a_withdrawal_is_not_revenue_nor_a_call_in_the_statistics(paid_gateway_factory, simulator):
    from tests.admin.conftest import ADMIN_TOKEN, admin_get

    async with paid_gateway_factory(admin_token=ADMIN_TOKEN) as gw:
        token = await funded(gw, simulator, 1000)
        assert (await gw.call("qr-generate", {"data": "one call"}, token=token)).status_code == 200
        address = simulator.payee_address()
        paid = await gw.client.post(
            "/v1/sessions/withdraw", json={"destination": address, "amount_sats": 500}, headers=bearer(token)
        )
        assert paid.status_code == 200, paid.text
        overview = await admin_get(gw.client, "overview")
        assert overview["revenue_all_time_sats"] == 2
        assert overview["liabilities_sats"] == 498
        assert [e["endpoint"] for e in overview["endpoints"]] == ["qr-generate"]
        stats = (await gw.client.get("/v1/stats")).json()
        assert stats["calls_today"] == 1
