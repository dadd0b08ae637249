"""barkd down or the Ark server unreachable: funded sessions keep working, creation says 503, recovery is automatic."""

from __future__ import annotations

from tests.conftest import wait_for


async def test_barkd_down_keeps_funded_sessions_serving_and_refuses_creation(paid_gateway, simulator):
    created = await paid_gateway.create_session(100)
    simulator.pay_invoice(created["funding"]["lightning_invoice"])
    token = created["token"]
    assert await wait_for(lambda: _balance_is(paid_gateway, token, 100))

    simulator.stop()
    try:
        response = await paid_gateway.call("qr-generate", {"data": "still works"}, token=token)
        assert response.status_code == 200
        refused = await paid_gateway.client.post("/v1/sessions", json={"amount_sats": 100})
        assert refused.status_code == 503
        assert refused.json()["success"] is False
        assert "unreachable" in refused.json()["error"]
        health = (await paid_gateway.client.get("/health")).json()
        assert health["barkd"]["reachable"] is False
    finally:
        simulator.start()

    # No restart of the gateway: the watcher reconnects by itself and payments flow again.
    again = await paid_gateway.client.post("/v1/sessions", json={"amount_sats": 50})
    assert again.status_code == 201
    simulator.send_ark(again.json()["funding"]["ark_address"], 50)
    assert await wait_for(lambda: _balance_is(paid_gateway, again.json()["token"], 50), timeout_s=20)
    await paid_gateway.assert_ledger_consistent()


async def test_ark_server_offline_makes_creation_503_with_a_clear_message(paid_gateway, simulator):
    simulator.set_online(False)
    try:
        refused = await paid_gateway.client.post("/v1/sessions", json={"amount_sats": 100})
        assert refused.status_code == 503
        assert "try again" in refused.json()["error"]
    finally:
        simulator.set_online(True)
    assert (await paid_gateway.client.post("/v1/sessions", json={"amount_sats": 100})).status_code == 201


async def _balance_is(gw, token, sats):
    return await gw.balance(token) == sats
