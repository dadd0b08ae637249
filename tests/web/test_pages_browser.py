"""The web pages driven in headless Chromium against a real gateway (barkd mode) and the simulator."""

from __future__ import annotations

import io
import re
import time
from typing import TYPE_CHECKING, Any

import pytest
import zxingcpp
from PIL import Image
from playwright.sync_api import expect

from tests.web.conftest import DESKTOP, PHONE, LiveGateway, axe_violations, describe, save_screenshot

if TYPE_CHECKING:
    from arkgate.payments.ledger import PaymentRecord

pytestmark = pytest.mark.timeout(180)

LIVE_TIMEOUT_MS = 10_000


def open_page(new_context: Any, gateway: LiveGateway, path: str, **options: Any) -> Any:
    page = new_context(**options).new_page()
    page.goto(f"{gateway.url}{path}")
    return page


def create_on_fund_page(page: Any, sats: int) -> dict[str, str]:
    """Pick an amount on /fund, create the session, return what the page shows."""
    if sats in (100, 500, 1000, 5000):
        page.get_by_label(f"{sats:,} sats").check()
    else:
        page.get_by_label("Other amount (sats)").fill(str(sats))
    page.get_by_role("button", name="Create session").click()
    expect(page.locator("#token-panel")).to_be_visible()
    expect(page.locator("#funding-qr")).to_have_attribute("src", re.compile(r"payment_hash="))
    return {
        "token": page.locator("#token").input_value(),
        "invoice": page.locator("#invoice").input_value(),
        "ark_address": page.locator("#ark-address").input_value(),
        "bip321": page.locator("#bip321").input_value(),
    }


def count_navigations(page: Any) -> list[str]:
    navigations: list[str] = []
    page.on("framenavigated", lambda frame: navigations.append(frame.url) if frame == page.main_frame else None)
    return navigations


def record_requests(page: Any) -> list[str]:
    seen: list[str] = []
    page.on("request", lambda request: seen.append(request.url))
    return seen


def test_lightning_payment_turns_the_fund_page_live_without_reload(new_context, live_gateway, simulator):
    page = open_page(new_context, live_gateway, "/fund")
    navigations = count_navigations(page)
    shown = create_on_fund_page(page, 500)
    assert shown["token"].startswith("ak_")
    assert shown["invoice"].startswith("lntbs")
    assert shown["ark_address"].startswith("tark1")
    expect(page.locator(".warning")).to_contain_text("Save this token")
    expect(page.locator("#invoice-expiry")).to_contain_text("Invoice expires in")
    expect(page.locator("#session-status")).to_have_text("Waiting for payment…")

    # The QR is one BIP-321 URI carrying both the invoice and the Ark address.
    qr = Image.open(io.BytesIO(page.locator("#funding-qr").screenshot()))
    codes = zxingcpp.read_barcodes(qr)
    assert len(codes) == 1, "the QR code did not decode"
    uri = codes[0].text
    assert uri.startswith("bitcoin:?")
    assert f"lightning={shown['invoice']}" in uri
    assert f"ark={shown['ark_address']}" in uri
    assert "amount=0.000005" in uri
    assert uri == shown["bip321"]

    requests_after_payment = record_requests(page)
    started = time.monotonic()
    simulator.pay_invoice(shown["invoice"])
    expect(page.locator("#session-status")).to_have_text("Session active", timeout=LIVE_TIMEOUT_MS)
    print(f"page live {time.monotonic() - started:.3f} s after the payment")  # informative, not asserted
    expect(page.locator("#session-balance")).to_have_text("Balance: 500 sats")
    expect(page.locator("#first-call")).to_be_visible()
    expect(page.locator("#first-call-snippet")).to_contain_text(shown["token"])
    # Pushed, not polled: the page asked nothing of the gateway while it waited, and never reloaded.
    assert [u for u in requests_after_payment if "/v1/" in u] == []
    assert navigations == []
    assert live_gateway.balance(shown["token"]) == 500
    # The token is kept in this tab's session storage, never put in a URL.
    assert page.evaluate("sessionStorage.getItem('arkgate.token')") == shown["token"]
    save_screenshot(page, "fund-active-desktop-light")


def test_ark_payment_from_the_demo_button_turns_the_page_live(new_context, live_gateway):
    page = open_page(new_context, live_gateway, "/fund")
    navigations = count_navigations(page)
    all_requests = record_requests(page)
    shown = create_on_fund_page(page, 1234)
    page.get_by_role("button", name="Send via Ark").click()
    expect(page.locator("#session-status")).to_have_text("Session active", timeout=LIVE_TIMEOUT_MS)
    expect(page.locator("#session-balance")).to_have_text("Balance: 1,234 sats")
    expect(page.locator("#funding")).to_be_hidden()  # paid: the spent invoice and its QR are gone
    assert navigations == []
    assert not any(shown["token"] in url for url in all_requests), "the token appeared in a URL"
    payments = live_gateway.run(_payments(live_gateway, shown["token"]))
    assert [(p.rail, p.amount_sats) for p in payments] == [("ark", 1234)]


async def _payments(gateway: LiveGateway, token: str) -> list[PaymentRecord]:
    from arkgate.payments.ledger import hash_token

    rt = gateway.runtime
    session = await rt.ledger.session_by_token(hash_token(token))
    return await rt.ledger.payments_of(session.id)


def test_new_invoice_button_and_demo_lightning_payment(new_context, live_gateway):
    page = open_page(new_context, live_gateway, "/fund")
    shown = create_on_fund_page(page, 100)
    page.get_by_role("button", name="New invoice").click()
    expect(page.locator("#invoice")).not_to_have_value(shown["invoice"])
    fresh = page.locator("#invoice").input_value()
    assert fresh.startswith("lntbs")
    expect(page.locator("#ark-address")).to_have_value(shown["ark_address"])  # same session, same address
    page.get_by_role("button", name="Pay with the simulator").click()
    expect(page.locator("#session-status")).to_have_text("Session active", timeout=LIVE_TIMEOUT_MS)
    expect(page.locator("#session-balance")).to_have_text("Balance: 100 sats")


def test_topup_on_the_same_token_raises_the_balance(new_context, live_gateway, simulator):
    created = live_gateway.create_session(300)
    simulator.pay_invoice(created["funding"]["lightning_invoice"])
    live_gateway.wait_balance(created["token"], 300)

    page = open_page(new_context, live_gateway, "/topup")
    page.get_by_label("Session token").fill(created["token"])
    page.get_by_label("1,000 sats").check()
    page.get_by_role("button", name="Get invoice").click()
    expect(page.locator("#funding")).to_be_visible()
    expect(page.locator("#session-balance")).to_have_text("Balance: 300 sats", timeout=LIVE_TIMEOUT_MS)
    expect(page.locator("#ark-address")).to_have_value(created["funding"]["ark_address"])
    invoice = page.locator("#invoice").input_value()
    assert invoice != created["funding"]["lightning_invoice"]

    simulator.pay_invoice(invoice)
    expect(page.locator("#session-balance")).to_have_text("Balance: 1,300 sats", timeout=LIVE_TIMEOUT_MS)
    expect(page.locator("#session-status")).to_have_text("Payment received: +1,000 sats")
    assert live_gateway.balance(created["token"]) == 1300


def test_tryit_spends_sats_and_the_session_page_lists_payments_and_the_call(new_context, live_gateway, simulator):
    created = live_gateway.create_session(400)
    simulator.pay_invoice(created["funding"]["lightning_invoice"])
    simulator.send_ark(created["funding"]["ark_address"], 250)
    live_gateway.wait_balance(created["token"], 650)

    page = open_page(new_context, live_gateway, "/")
    page.get_by_label("Token", exact=True).fill(created["token"])
    page.get_by_label("Token", exact=True).dispatch_event("change")
    card = page.locator("#ep-qr-generate")
    card.get_by_text("Try it").click()
    card.get_by_label("data (required)").fill("hello from the browser")
    body = card.locator("textarea").input_value()
    assert '"data": "hello from the browser"' in body  # the schema form writes the JSON
    card.get_by_role("button", name=re.compile("^Call for")).click()
    expect(card.locator("[data-status]")).to_have_text(
        "Done: cost 2 sats, balance left 648 sats.", timeout=LIVE_TIMEOUT_MS
    )
    expect(card.locator("img.result-image")).to_be_visible()
    assert live_gateway.balance(created["token"]) == 648

    page.goto(f"{live_gateway.url}/session")  # the token carries over in session storage
    expect(page.locator("#view-balance")).to_have_text("648 sats")
    expect(page.locator("#view-status")).to_have_text("active")
    rows = page.locator("#payments-table tbody tr")
    expect(rows).to_have_count(2)
    rails = sorted(rows.nth(i).locator("td").nth(1).inner_text() for i in range(2))
    amounts = sorted(int(rows.nth(i).locator("td").nth(2).inner_text()) for i in range(2))
    assert rails == ["ark", "lightning"] and amounts == [250, 400]
    calls = page.locator("#calls-table tbody tr")
    expect(calls).to_have_count(1)
    expect(calls.first.locator("td").nth(1)).to_have_text("qr-generate")
    expect(calls.first.locator("td").nth(2)).to_have_text("2")

    page.get_by_role("button", name="Forget token").click()
    assert page.evaluate("sessionStorage.getItem('arkgate.token')") is None


def test_session_page_refuses_an_unknown_token(new_context, live_gateway):
    page = open_page(new_context, live_gateway, "/session")
    page.get_by_label("Session token").fill("ak_not-a-real-token")
    page.get_by_role("button", name="Show").click()
    expect(page.locator("#session-error")).to_contain_text("invalid")
    expect(page.locator("#session-view")).to_be_hidden()


PAGES = ["/", "/docs", "/fund", "/topup", "/session"]


def _prepare(page: Any, gateway: LiveGateway, path: str, token: str) -> None:
    """Bring each page to its most telling state before the screenshot and the audit."""
    if path == "/fund":
        create_on_fund_page(page, 500)
    elif path == "/topup":
        page.get_by_label("Session token").fill(token)
        page.get_by_role("button", name="Get invoice").click()
        expect(page.locator("#funding")).to_be_visible()
    elif path == "/session":
        page.get_by_label("Session token").fill(token)
        page.get_by_role("button", name="Show").click()
        expect(page.locator("#session-view")).to_be_visible()
    elif path == "/docs":
        expect(page.locator("#swagger-ui .opblock-tag").first).to_be_attached(timeout=LIVE_TIMEOUT_MS)
    page.wait_for_load_state("networkidle")


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_every_page_renders_on_phone_and_desktop_and_passes_axe(new_context, live_gateway, simulator, scheme):
    created = live_gateway.create_session(200)
    simulator.pay_invoice(created["funding"]["lightning_invoice"])
    live_gateway.wait_balance(created["token"], 200)
    for size_name, viewport in (("phone", PHONE), ("desktop", DESKTOP)):
        context = new_context(viewport=viewport, color_scheme=scheme, is_mobile=size_name == "phone")
        for path in PAGES:
            page = context.new_page()
            response = page.goto(f"{live_gateway.url}{path}")
            assert response is not None and response.status == 200
            assert "default-src 'self'" in response.headers["content-security-policy"]
            _prepare(page, live_gateway, path, created["token"])
            name = (path.strip("/") or "index") + f"-{size_name}-{scheme}"
            save_screenshot(page, name)
            # /docs is audited with Swagger UI's operations folded: unfolded, its own markup nests
            # buttons (axe "nested-interactive"), which only an upstream fix can change.
            violations = axe_violations(page)
            assert violations == [], f"{path} ({size_name}, {scheme}): {describe(violations)}"
            page.close()
