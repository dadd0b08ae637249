"""The payable 402 and L402, end to end against the real barkd simulator."""

from __future__ import annotations

import base64
import hashlib
import re
from typing import Any

import bolt11
import pytest

from tests.agents.conftest import offline_catalog
from tests.conftest import running_gateway, wait_for


def l402_challenge(response: Any) -> tuple[str, str]:
    challenges = response.headers.get_list("www-authenticate")
    assert 'Bearer realm="arkgate"' in challenges
    l402 = next(c for c in challenges if c.startswith("L402 "))
    macaroon = re.search(r'macaroon="([^"]+)"', l402)
    invoice = re.search(r'invoice="([^"]+)"', l402)
    assert macaroon and invoice, l402
    return macaroon.group(1), invoice.group(1)


@pytest.fixture
async def gw(paid_settings: Any) -> Any:
    async with running_gateway(paid_settings(), catalog=offline_catalog("qr-generate")) as gateway:
        assert await gateway.runtime.watcher.wait_ready(10)
        yield gateway


async def test_tokenless_call_is_paid_with_l402_and_the_token_is_reusable(gw, simulator):
    response = await gw.client.post("/api/qr-generate", json={"data": "hello"})
    assert response.status_code == 402
    body = response.json()
    assert body["success"] is False and body["cost_sats"] == 0
    assert body["price_sats"] == 2
    payment = body["payment"]
    assert payment["amount_sats"] == gw.settings.default_session_sats == 500
    assert payment["token"].startswith("ak_")
    assert payment["ark_address"].startswith("tark1")
    macaroon, invoice = l402_challenge(response)
    assert macaroon == payment["macaroon"] and invoice == payment["lightning_invoice"]
    decoded = bolt11.decode(invoice)  # a real BOLT11 invoice for the offered amount
    assert decoded.amount_msat == 500_000
    assert decoded.payment_hash == payment["payment_hash"]

    paid = simulator.pay_invoice(invoice)
    preimage = paid["preimage"]
    assert hashlib.sha256(bytes.fromhex(preimage)).hexdigest() == payment["payment_hash"]

    auth = {"Authorization": f"L402 {macaroon}:{preimage}"}
    first = await gw.client.post("/api/qr-generate", json={"data": "hello"}, headers=auth)
    assert first.status_code == 200, first.text
    assert first.json()["cost_sats"] == 2
    assert first.json()["balance_remaining"] == 498
    # Reusable until spent, also under the legacy LSAT scheme; the bearer token is the same session.
    second = await gw.client.post(
        "/api/qr-generate", json={"data": "again"}, headers={"Authorization": f"LSAT {macaroon}:{preimage}"}
    )
    assert second.status_code == 200 and second.json()["balance_remaining"] == 496
    assert await gw.balance(payment["token"]) == 496
    await gw.assert_ledger_consistent()


async def test_wrong_preimage_and_tampered_macaroon_are_401(gw, simulator):
    response = await gw.client.post("/api/qr-generate", json={"data": "x"})
    macaroon, invoice = l402_challenge(response)
    preimage = simulator.pay_invoice(invoice)["preimage"]
    token = response.json()["payment"]["token"]
    await wait_for(lambda: gw.balance(token))

    wrong = "00" * 32
    bad = await gw.client.post(
        "/api/qr-generate", json={"data": "x"}, headers={"Authorization": f"L402 {macaroon}:{wrong}"}
    )
    assert bad.status_code == 401
    assert bad.json()["success"] is False and bad.json()["error_code"] == "invalid_token"
    assert "preimage" in bad.json()["error"]

    raw = bytearray(base64.b64decode(macaroon))
    raw[-1] ^= 0x01  # flip one bit of the signature
    tampered = base64.b64encode(bytes(raw)).decode()
    bad = await gw.client.post(
        "/api/qr-generate", json={"data": "x"}, headers={"Authorization": f"L402 {tampered}:{preimage}"}
    )
    assert bad.status_code == 401 and bad.json()["cost_sats"] == 0

    # A caveat edited by hand (a longer expiry) breaks the signature too.
    text = raw.replace(b"_valid_until=", b"_valid_until=9")
    forged = base64.b64encode(bytes(text)).decode()
    bad = await gw.client.post(
        "/api/qr-generate", json={"data": "x"}, headers={"Authorization": f"L402 {forged}:{preimage}"}
    )
    assert bad.status_code == 401

    garbage = await gw.client.post("/api/qr-generate", json={"data": "x"}, headers={"Authorization": "L402 !!!:zz"})
    assert garbage.status_code == 401
    assert await gw.balance(token) == 500  # nothing was charged by any rejected attempt


async def test_expired_macaroon_is_401(gw, simulator):
    response = await gw.client.post("/api/qr-generate", json={"data": "x"})
    payment = response.json()["payment"]
    preimage = simulator.pay_invoice(payment["lightning_invoice"])["preimage"]
    l402 = gw.runtime.l402
    old = l402.mint(payment["payment_hash"], now=0)  # minted long ago: its validity has ended
    bad = await gw.client.post(
        "/api/qr-generate", json={"data": "x"}, headers={"Authorization": f"L402 {old}:{preimage}"}
    )
    assert bad.status_code == 401


async def test_unfunded_and_short_sessions_get_invoices_and_the_ark_address(gw, simulator):
    created = await gw.create_session(1)
    auth = {"Authorization": f"Bearer {created['token']}"}
    unfunded = await gw.client.post("/api/qr-generate", json={"data": "x"}, headers=auth)
    assert unfunded.status_code == 402
    body = unfunded.json()
    assert body["error_code"] == "payment_required"
    # The session's own pending invoice is offered again, with its Ark address.
    assert body["payment"]["lightning_invoice"] == created["funding"]["lightning_invoice"]
    assert body["payment"]["ark_address"] == created["funding"]["ark_address"]

    simulator.pay_invoice(created["funding"]["lightning_invoice"])
    await wait_for(lambda: gw.balance(created["token"]))
    short = await gw.client.post("/api/qr-generate", json={"data": "x"}, headers=auth)
    assert short.status_code == 402
    body = short.json()
    assert body["error_code"] == "insufficient_balance"
    assert body["balance_sats"] == 1 and body["shortfall_sats"] == 1
    topup = body["payment"]["lightning_invoice"]
    assert topup and topup != created["funding"]["lightning_invoice"]
    assert bolt11.decode(topup).amount_msat == 500_000
    assert body["payment"]["ark_address"] == created["funding"]["ark_address"]
    macaroon, invoice = l402_challenge(short)
    assert invoice == topup

    # Paying the top-up credits the same session, whichever header the retry uses.
    preimage = simulator.pay_invoice(topup)["preimage"]
    retry = await gw.client.post(
        "/api/qr-generate", json={"data": "x"}, headers={"Authorization": f"L402 {macaroon}:{preimage}"}
    )
    assert retry.status_code == 200, retry.text
    assert retry.json()["balance_remaining"] == 499
    assert await gw.balance(created["token"]) == 499
    await gw.assert_ledger_consistent()


async def test_barkd_unreachable_still_answers_402_with_instructions(paid_settings, simulator):
    async with running_gateway(paid_settings(), catalog=offline_catalog("qr-generate")) as gw:
        simulator.stop()
        try:
            response = await gw.client.post("/api/qr-generate", json={"data": "x"})
        finally:
            simulator.start()
    assert response.status_code == 402
    body = response.json()
    assert body["payment"] is None
    assert "invoice" in body["error"] and body["price_sats"] == 2
    assert response.headers.get_list("www-authenticate") == ['Bearer realm="arkgate"']


async def test_free_mode_says_how_to_create_a_session(gateway_factory):
    async with gateway_factory() as gw:
        response = await gw.call("qr-generate", {"data": "x"})
    assert response.status_code == 402
    body = response.json()
    assert body["payment"] is None
    assert "POST" in body["error"] and "/v1/sessions" in body["error"]
    assert body["price_sats"] == 2


async def test_tokenless_challenges_are_rate_limited(paid_settings, simulator):
    settings = paid_settings(rate_limits="on", rate_limit_sessions="2/minute")
    async with running_gateway(settings, catalog=offline_catalog("qr-generate")) as gw:
        answers = [await gw.client.post("/api/qr-generate", json={"data": "x"}) for _ in range(3)]
    assert [a.status_code for a in answers] == [402, 402, 429]
    assert answers[2].headers["retry-after"]
    assert answers[2].json()["error_code"] == "rate_limited"


async def test_l402_header_on_a_free_route_is_ignored_but_bad_tokens_never_charge(gw):
    bad = await gw.client.post("/api/qr-generate", json={"data": "x"}, headers={"Authorization": "L402 onlyonepart"})
    assert bad.status_code == 401
    assert "L402" in bad.json()["error"]
