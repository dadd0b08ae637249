"""Withdraw to a Lightning address: LNURL-pay served over TLS on loopback, reached through the outbound guard."""

from __future__ import annotations

import json

import pytest

from tests.payments.test_payouts import bearer, funded
from tests.peers.dns import nsd_fixture  # noqa: F401
from tests.peers.web import cert_factory_fixture, http_peer_factory_fixture  # noqa: F401

pytestmark = pytest.mark.dns


def _lnurl_service(http_peer_factory, cert_factory, invoice: str, *, min_sats: int = 1):  # type: ignore[no-untyped-def]
    peer = http_peer_factory(ssl_context=cert_factory.valid("good.targets.test").server_context())
    host = f"good.targets.test:{peer.port}"
    offer = {
        "tag": "payRequest",
        "callback": f"https://{host}/lnurlp/alice/callback",
        "minSendable": min_sats * 1000,
        "maxSendable": 100_000_000,
        "metadata": json.dumps([["text/plain", "alice"]]),
    }
    peer.route("/.well-known/lnurlp/alice", headers=[("Content-Type", "application/json")], body=json.dumps(offer))
    peer.route(
        "/lnurlp/alice/callback", headers=[("Content-Type", "application/json")], body=json.dumps({"pr": invoice})
    )
    return peer, f"alice@{host}"


def _settings(nsd, cert_factory, port: int) -> dict[str, object]:  # type: ignore[no-untyped-def]
    return {
        "dns_nameservers": [nsd.nameserver],
        "unsafe_allow_private_targets": ["127.0.0.1/32"],
        "outbound_allowed_ports": [443, port],
        "outbound_ca_file": cert_factory.ca_file,
        "payout_fee_base_sats": 4,
    }


async def test_withdraw_to_a_lightning_address_pays_the_invoice_its_service_returns(
    paid_gateway_factory, simulator, nsd, cert_factory, http_peer_factory
):
    payee = simulator.payee_invoice(496)  # 500 withdrawn - 4 sat fee
    peer, address = _lnurl_service(http_peer_factory, cert_factory, payee["invoice"])
    async with paid_gateway_factory(**_settings(nsd, cert_factory, peer.port)) as gw:
        token = await funded(gw, simulator, 800)
        quote = await gw.client.post(
            "/v1/sessions/withdraw",
            json={"destination": address, "amount_sats": 500, "quote_only": True},
            headers=bearer(token),
        )
        assert quote.json()["fee_sats"] == 4 and quote.json()["net_sats"] == 496
        response = await gw.client.post(
            "/v1/sessions/withdraw", json={"destination": address, "amount_sats": 500}, headers=bearer(token)
        )
        assert response.status_code == 200, response.text
        assert (response.json()["status"], response.json()["net_sats"]) == ("completed", 496)
        assert simulator.payee_received(payee["invoice"])["received_sat"] == 496
        assert [h.path.split("?")[0] for h in peer.hits] == ["/.well-known/lnurlp/alice", "/lnurlp/alice/callback"]
        assert "amount=496000" in peer.hits[1].path
        assert await gw.balance(token) == 300
        await gw.assert_ledger_consistent()


async def test_a_lightning_address_returning_the_wrong_amount_costs_nothing(
    paid_gateway_factory, simulator, nsd, cert_factory, http_peer_factory
):
    wrong = simulator.payee_invoice(900)
    peer, address = _lnurl_service(http_peer_factory, cert_factory, wrong["invoice"])
    async with paid_gateway_factory(**_settings(nsd, cert_factory, peer.port)) as gw:
        token = await funded(gw, simulator, 800)
        response = await gw.client.post(
            "/v1/sessions/withdraw", json={"destination": address, "amount_sats": 500}, headers=bearer(token)
        )
        assert response.status_code == 502, response.text
        assert "another amount" in response.json()["error"]
        assert simulator.payee_received(wrong["invoice"])["payments"] == 0
        assert await gw.balance(token) == 800


async def test_a_lightning_address_on_a_private_address_is_refused_by_the_guard(paid_gateway, simulator):
    token = await funded(paid_gateway, simulator, 800)
    response = await paid_gateway.client.post(
        "/v1/sessions/withdraw", json={"destination": "alice@127.0.0.1", "amount_sats": 500}, headers=bearer(token)
    )
    assert response.status_code == 400, response.text
    assert await paid_gateway.balance(token) == 800
