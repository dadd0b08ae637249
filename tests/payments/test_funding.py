"""Funding sessions over Lightning and Ark through the real simulator: every sat credited once."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from arkgate.db import tables as t
from tests.conftest import wait_for


async def payment_rows(gw: Any) -> list[dict[str, Any]]:
    async with gw.runtime.database.read() as conn:
        return [dict(r._mapping) for r in await conn.execute(select(t.payments).order_by(t.payments.c.id))]


async def test_lightning_funding_activates_the_session(paid_gateway, simulator):
    created = await paid_gateway.create_session(500)
    assert created["status"] == "awaiting_payment"
    assert created["balance_sats"] == 0
    assert created["token"].startswith("ak_")
    funding = created["funding"]
    assert funding["lightning_invoice"].startswith("lntbs")
    assert funding["ark_address"].startswith("tark1")
    assert len(funding["payment_hash"]) == 64

    simulator.pay_invoice(funding["lightning_invoice"])
    await wait_for(lambda: paid_gateway.balance(created["token"]), timeout_s=10)
    assert await paid_gateway.balance(created["token"]) == 500
    balance = (await paid_gateway.client.get("/v1/balance", headers=_auth(created))).json()
    assert balance["status"] == "active"
    await paid_gateway.assert_ledger_consistent()


async def test_each_session_gets_its_own_address_and_invoice(paid_gateway):
    first = await paid_gateway.create_session(100)
    second = await paid_gateway.create_session(100)
    assert first["funding"]["ark_address"] != second["funding"]["ark_address"]
    assert first["funding"]["payment_hash"] != second["funding"]["payment_hash"]


async def test_ark_funding_credits_what_was_received(paid_gateway, simulator):
    created = await paid_gateway.create_session(500)
    simulator.send_ark(created["funding"]["ark_address"], 700)  # overpayment: all of it is credited
    assert await wait_for(lambda: _balance_is(paid_gateway, created, 700))
    await paid_gateway.assert_ledger_consistent()


async def test_both_rails_top_up_and_repeated_payments_all_credit(paid_gateway, simulator):
    created = await paid_gateway.create_session(300)
    simulator.pay_invoice(created["funding"]["lightning_invoice"])
    simulator.send_ark(created["funding"]["ark_address"], 200)
    simulator.send_ark(created["funding"]["ark_address"], 50, vtxos=2)
    assert await wait_for(lambda: _balance_is(paid_gateway, created, 550))

    topup = await paid_gateway.client.post("/v1/sessions/topup", json={"amount_sats": 1000}, headers=_auth(created))
    assert topup.status_code == 200, topup.text
    assert topup.json()["funding"]["ark_address"] == created["funding"]["ark_address"]
    assert topup.json()["funding"]["payment_hash"] != created["funding"]["payment_hash"]
    simulator.pay_invoice(topup.json()["funding"]["lightning_invoice"])
    assert await wait_for(lambda: _balance_is(paid_gateway, created, 1550))

    payments = (await paid_gateway.client.get("/v1/sessions/me/payments", headers=_auth(created))).json()
    assert sorted(p["amount_sats"] for p in payments["payments"]) == [50, 200, 300, 1000]
    assert {p["rail"] for p in payments["payments"]} == {"lightning", "ark"}
    await paid_gateway.assert_ledger_consistent()


async def test_duplicate_notifications_credit_once(paid_gateway, simulator):
    simulator.faults(duplicate_notifications=10)
    created = await paid_gateway.create_session(400)
    simulator.pay_invoice(created["funding"]["lightning_invoice"])
    simulator.send_ark(created["funding"]["ark_address"], 100)
    assert await wait_for(lambda: _balance_is(paid_gateway, created, 500))
    # Replaying every movement again (as a reconcile does) changes nothing.
    await paid_gateway.runtime.watcher.reconcile()
    for movement in await paid_gateway.runtime.barkd.history():
        await paid_gateway.runtime.watcher.handle_movement(movement)
    assert await paid_gateway.balance(created["token"]) == 500
    assert len(await payment_rows(paid_gateway)) == 2
    await paid_gateway.assert_ledger_consistent()


async def test_payments_made_while_the_gateway_was_down_are_credited_once_on_restart(paid_gateway_factory, simulator):
    async with paid_gateway_factory() as gw:
        assert await gw.runtime.watcher.wait_ready(10)
        created = await gw.create_session(250)
    simulator.pay_invoice(created["funding"]["lightning_invoice"])
    simulator.send_ark(created["funding"]["ark_address"], 75)
    for _ in range(2):  # two restarts: the second must not credit again
        async with paid_gateway_factory() as gw:
            assert await gw.runtime.watcher.wait_ready(10)
            assert await wait_for(lambda gw=gw: _balance_is(gw, created, 325))
            assert len(await payment_rows(gw)) == 2
            await gw.assert_ledger_consistent()


async def test_a_duplicated_arkoor_movement_with_the_same_vtxos_credits_once(paid_gateway, simulator):
    simulator.faults(duplicate_arkoor=1)
    created = await paid_gateway.create_session(100)
    simulator.send_ark(created["funding"]["ark_address"], 100)
    assert await wait_for(lambda: _balance_is(paid_gateway, created, 100))
    await paid_gateway.runtime.watcher.reconcile()
    assert await paid_gateway.balance(created["token"]) == 100
    await paid_gateway.assert_ledger_consistent()


async def test_a_canceled_receive_never_credits(paid_gateway, simulator):
    created = await paid_gateway.create_session(100)
    payment_hash = created["funding"]["payment_hash"]
    assert await paid_gateway.runtime.barkd.cancel_receive(payment_hash)
    status = await paid_gateway.runtime.barkd.receive_status(payment_hash)
    assert status.is_gone and not status.is_paid
    paid = _try_pay(simulator, created["funding"]["lightning_invoice"])
    assert not paid
    await paid_gateway.runtime.watcher.reconcile()
    assert await paid_gateway.balance(created["token"]) == 0
    await paid_gateway.assert_ledger_consistent()


async def test_an_expired_unpaid_invoice_never_credits(paid_gateway, simulator):
    created = await paid_gateway.create_session(100)
    simulator.advance_time(3600 * 3)
    await paid_gateway.runtime.barkd.sync()  # barkd reaps expired receives when something drives it
    assert not _try_pay(simulator, created["funding"]["lightning_invoice"])
    await paid_gateway.runtime.watcher.reconcile()
    assert await paid_gateway.balance(created["token"]) == 0


async def test_a_late_payment_after_expiry_reactivates_the_session(paid_gateway_factory, simulator):
    async with paid_gateway_factory(unpaid_session_ttl_s=60) as gw:
        assert await gw.runtime.watcher.wait_ready(10)
        created = await gw.create_session(100)
        async with gw.runtime.database.write() as conn:  # the session lapsed an hour ago
            await conn.execute(
                t.sessions.update().values(expires_at=func.datetime("now", "-1 hour"))
                if gw.runtime.database.is_sqlite
                else t.sessions.update()
            )
        expired = (await gw.client.get("/v1/balance", headers=_auth(created))).json()
        assert expired["status"] == "expired"
        simulator.send_ark(created["funding"]["ark_address"], 100)
        assert await wait_for(lambda: _balance_is(gw, created, 100))
        assert (await gw.client.get("/v1/balance", headers=_auth(created))).json()["status"] == "active"
        late = await payment_rows(gw)
        assert late[0]["is_late"] is True
        await gw.assert_ledger_consistent()


async def test_a_payment_to_an_unknown_address_is_kept_for_the_operator(paid_gateway, simulator):
    address = await paid_gateway.runtime.barkd.next_address()
    simulator.send_ark(address, 42)
    rows = await wait_for(lambda: payment_rows(paid_gateway))
    assert rows[0]["session_id"] is None and rows[0]["amount_sats"] == 42


async def _balance_is(gw: Any, created: dict[str, Any], sats: int) -> bool:
    return await gw.balance(created["token"]) == sats


def _auth(created: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {created['token']}"}


def _try_pay(simulator: Any, invoice: str) -> bool:
    try:
        simulator.pay_invoice(invoice)
    except RuntimeError:
        return False
    return True
