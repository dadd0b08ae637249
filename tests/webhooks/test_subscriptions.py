"""Registering a session's webhook: the outbound guard vets callback_url; the secret is shown once."""

from __future__ import annotations

from sqlalchemy import func, select

from arkgate.db import tables as t
from tests.webhooks.conftest import auth, session_with_webhook


async def _sessions(gw) -> int:
    async with gw.runtime.database.read() as conn:
        return int((await conn.execute(select(func.count()).select_from(t.sessions))).scalar_one())


async def test_loopback_and_private_callback_urls_are_refused_by_default(gateway_factory, receiver_factory):
    receiver = receiver_factory()
    async with gateway_factory(outbound_allowed_ports=[80, 443, receiver.port]) as gw:
        for url in (receiver.url, "http://10.1.2.3/hook", "http://[::1]/hook", "http://169.254.169.254/latest"):
            response = await gw.client.post("/v1/sessions", json={"amount_sats": 100, "callback_url": url})
            assert response.status_code == 400, response.text
            body = response.json()
            assert body["success"] is False
            assert "target refused" in body["error"]
        assert await _sessions(gw) == 0  # refused before anything was created
        token = await gw.new_session(100)
        response = await gw.client.post(
            "/v1/sessions/me/webhook", json={"callback_url": receiver.url}, headers=auth(token)
        )
        assert response.status_code == 400
        for bad in ("ftp://example.com/x", "", 42, "http://example.com:22/x"):
            response = await gw.client.post("/v1/sessions/me/webhook", json={"callback_url": bad}, headers=auth(token))
            assert response.status_code == 400, (bad, response.text)
            assert response.json()["success"] is False


async def test_the_operators_allow_list_lets_loopback_through(hook_gateway_factory, receiver_factory):
    receiver = receiver_factory()
    async with hook_gateway_factory(receiver) as gw:
        token, secret = await session_with_webhook(gw, receiver.url, low_balance_sats=10)
        assert secret.startswith("whsec_")
        shown = (await gw.client.get("/v1/sessions/me/webhook", headers=auth(token))).json()
        assert shown["callback_url"] == receiver.url
        assert shown["low_balance_sats"] == 10
        assert "secret" not in shown and secret not in str(shown)
        assert "payment.credited" in shown["events"]

        changed = await gw.client.patch("/v1/sessions/me/webhook", json={"low_balance_sats": 5}, headers=auth(token))
        assert changed.json() == {"low_balance_sats": 5}
        bad = await gw.client.patch("/v1/sessions/me/webhook", json={"low_balance_sats": -1}, headers=auth(token))
        assert bad.status_code == 400

        again = await gw.client.post(
            "/v1/sessions/me/webhook", json={"callback_url": receiver.url}, headers=auth(token)
        )
        assert again.status_code == 201
        assert again.json()["secret"] != secret  # registering again rotates the secret

        assert (await gw.client.delete("/v1/sessions/me/webhook", headers=auth(token))).json() == {"removed": True}
        assert (await gw.client.get("/v1/sessions/me/webhook", headers=auth(token))).status_code == 404
        assert (await gw.client.delete("/v1/sessions/me/webhook", headers=auth(token))).status_code == 404


async def test_webhook_routes_need_a_session(hook_gateway_factory, receiver_factory):
    receiver = receiver_factory()
    async with hook_gateway_factory(receiver) as gw:
        assert (await gw.client.get("/v1/sessions/me/webhook")).status_code == 401
        assert (await gw.client.get("/v1/sessions/me/webhook/deliveries", headers=auth("ak_nope"))).status_code == 401
