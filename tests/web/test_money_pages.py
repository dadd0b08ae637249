"""/fund and /topup in every state (before a session, awaiting payment, expired invoice, paid) at phone
and desktop widths, light and dark: which panels are visible, every button clicked, no page error.

The expired invoice is real: the simulator's clock and the page's clock both move past its expiry.
Each state is screenshotted under test-artifacts/web/ (``fund-<state>-<width>-<scheme>.png``).
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.live import live_gateway as live_gateway_server
from tests.web.conftest import DESKTOP, PHONE, LiveGateway, axe_violations, describe, save_screenshot

pytestmark = pytest.mark.timeout(180)

LIVE_TIMEOUT_MS = 10_000
PAST_EXPIRY = "01:00:05"  # the simulator's invoices live an hour
PAST_EXPIRY_S = 3605
A_FRESH_HOUR = re.compile(r"Invoice expires in (60|59|58):\d\d")  # a new invoice after the clocks moved on

# What each state shows. Elements are named by the selector the page uses.
PANELS = {
    "form": "form.card",
    "token": "#token-panel",
    "status": "#status-panel",
    "funding": "#funding",
    "qr": "#funding-qr",
    "qr-expired": "#qr-expired",
    "countdown": "#invoice-expiry",
    "bip321": "#bip321-field",
    "invoice": "#invoice-field",
    "ark-address": "#ark-field",
    "new-invoice": "#new-invoice",
    "demo-pay": "#demo-pay",
    "demo-ark": "#demo-ark",
    "first-call": "#first-call",
    "restart": "#topup-restart",
    "topup-done": "#topup-done",
}
NOTHING = dict.fromkeys(PANELS, False)
PAY_PANEL = {
    "funding": True, "qr": True, "countdown": True, "bip321": True, "invoice": True,
    "ark-address": True, "new-invoice": True, "demo-pay": True, "demo-ark": True,
}  # fmt: skip
EXPIRED_PANEL = {
    **PAY_PANEL, "qr": False, "qr-expired": True, "countdown": False, "bip321": False, "invoice": False, "demo-pay": False,
}  # fmt: skip

FUND = {
    "before": {**NOTHING, "form": True},
    "awaiting": {**NOTHING, "token": True, "status": True, **PAY_PANEL},
    "expired": {**NOTHING, "token": True, "status": True, **EXPIRED_PANEL},
    "paid": {**NOTHING, "token": True, "status": True, "first-call": True},
}
TOPUP = {
    "before": {**NOTHING, "form": True},
    "awaiting": {**NOTHING, "status": True, "restart": True, **PAY_PANEL},
    "expired": {**NOTHING, "status": True, "restart": True, **EXPIRED_PANEL},
    "paid": {**NOTHING, "status": True, "restart": True, "topup-done": True},
}
VIEWS = [
    pytest.param(size, viewport, scheme, id=f"{size}-{scheme}")
    for size, viewport in (("phone", PHONE), ("desktop", DESKTOP))
    for scheme in ("light", "dark")
]


class PageErrors:
    """Uncaught exceptions and console errors (failed loads included) of one page."""

    def __init__(self, page: Any) -> None:
        self.seen: list[str] = []
        page.on("pageerror", lambda error: self.seen.append(f"uncaught: {error}"))
        page.on("console", lambda message: self._console(message))

    def _console(self, message: Any) -> None:
        if message.type == "error":
            self.seen.append(f"console: {message.text}")


def visibility(page: Any) -> dict[str, bool]:
    return {name: page.locator(selector).is_visible() for name, selector in PANELS.items()}


def assert_state(
    page: Any, expected: dict[str, dict[str, bool]], state: str, shot: str, *, audit: bool = False
) -> None:
    """The page shows exactly the panels of ``state``; then a screenshot of it (and an axe audit)."""
    if expected[state]["funding"]:
        expect(page.locator("#funding")).to_be_visible()
    else:
        expect(page.locator("#funding")).to_be_hidden()
    assert visibility(page) == expected[state], f"{shot}: wrong panels for {state}"
    if expected[state]["qr"]:
        # A QR that really loaded, not a broken image.
        expect(page.locator("#funding-qr")).to_have_attribute(
            "src", re.compile(r"^/fund/qr\.svg\?payment_hash=[0-9a-f]{64}$")
        )
        page.wait_for_function("() => document.getElementById('funding-qr').naturalWidth > 0")
    else:
        # Stale state is gone: no QR source, no invoice, no countdown of a spent or lapsed invoice.
        assert page.locator("#funding-qr").get_attribute("src") is None
        assert page.locator("#invoice").input_value() == ""
        expect(page.locator("#invoice-expiry")).to_have_text("")
    save_screenshot(page, shot)
    if audit:
        violations = axe_violations(page)
        assert violations == [], f"{shot}: {describe(violations)}"


def click_buttons(page: Any, skip: tuple[str, ...] = ()) -> list[str]:
    """Click every visible button in <main> except those named in ``skip``; return their names.

    A copy button must say it copied."""
    clicked = []
    for button in page.locator("main button:visible").element_handles():
        name = button.evaluate("(b) => (b.dataset.label || b.textContent).trim()")  # a copy button's own name
        if name in skip:
            continue
        button.click()
        if name.startswith("Copy"):
            page.wait_for_function("(b) => b.textContent === 'Copied'", arg=button)
        clicked.append(name)
    return clicked


def click_hidden_handlers(page: Any) -> None:
    """Fire the payment panel's buttons while it is hidden: each handler must find nothing to do."""
    page.evaluate("document.querySelectorAll('#funding button').forEach((b) => b.click())")
    expect(page.locator("#demo-state")).to_have_text("There is nothing to pay yet.")
    expect(page.locator("#funding-error")).to_have_text("There is no invoice to replace.")
    expect(page.locator("#funding button.copy")).to_have_text(["Copy", "Copy", "Copy"])  # nothing to copy


def expire_invoice(page: Any, simulator: Any) -> None:
    simulator.advance_time(PAST_EXPIRY_S)
    page.clock.fast_forward(PAST_EXPIRY)
    expect(page.locator("#funding")).to_have_attribute("data-state", "expired")


def open_money_page(new_context: Any, gateway: LiveGateway, path: str, viewport: dict[str, int], scheme: str) -> Any:
    context = new_context(
        viewport=viewport,
        color_scheme=scheme,
        is_mobile=viewport is PHONE,
        permissions=["clipboard-read", "clipboard-write"],
    )
    page = context.new_page()
    page.clock.install()
    page.goto(f"{gateway.url}{path}")
    return page


@pytest.mark.parametrize(("size", "viewport", "scheme"), VIEWS)
def test_fund_page_states_show_the_right_panels_and_every_button_works(
    new_context, live_gateway, simulator, size, viewport, scheme
):
    page = open_money_page(new_context, live_gateway, "/fund", viewport, scheme)
    errors = PageErrors(page)
    shot = f"-{size}-{scheme}"
    audit = size == "desktop"  # axe in each state, both schemes (phone layouts share the markup)

    # Before a session: only the amount form; the payment panel's handlers do nothing.
    assert_state(page, FUND, "before", "fund-before" + shot, audit=audit)
    click_hidden_handlers(page)
    page.get_by_label("Other amount (sats)").fill("")
    page.get_by_label("Other", exact=True).check()
    page.get_by_role("button", name="Create session").click()
    expect(page.locator("#fund-error")).to_have_text("Enter a whole number of sats.")
    assert_state(page, FUND, "before", "fund-before" + shot)
    page.get_by_label("500 sats").check()
    page.get_by_role("button", name="Create session").click()

    # Awaiting payment: token, status, QR and countdown; copy buttons copy, "New invoice" replaces it.
    expect(page.locator("#session-status")).to_have_text("Waiting for payment…")
    expect(page.locator("#invoice-expiry")).to_contain_text("Invoice expires in")
    assert_state(page, FUND, "awaiting", "fund-awaiting" + shot, audit=audit)
    first_invoice = page.locator("#invoice").input_value()
    clicked = click_buttons(page, skip=("Pay with the simulator", "Send via Ark"))
    assert clicked == ["Copy token", "Copy", "Copy", "Copy", "New invoice"]
    expect(page.locator("#invoice")).not_to_have_value(first_invoice)
    page.locator("#invoice-field button.copy").click()
    assert page.evaluate("navigator.clipboard.readText()") == page.locator("#invoice").input_value()
    assert_state(page, FUND, "awaiting", "fund-awaiting" + shot)

    # The invoice expires: no QR, no invoice, no Lightning payer; the Ark address still works.
    expire_invoice(page, simulator)
    expect(page.locator("#qr-expired")).to_contain_text("Invoice expired")
    assert_state(page, FUND, "expired", "fund-expired" + shot, audit=audit)
    assert click_buttons(page, skip=("New invoice", "Send via Ark")) == ["Copy token", "Copy"]
    assert_state(page, FUND, "expired", "fund-expired" + shot)

    if size == "phone":  # pay the lapsed invoice's session over Ark
        page.get_by_role("button", name="Send via Ark").click()
        paid_sats = "500 sats"
    else:  # a new invoice, then pay it over Lightning
        page.get_by_role("button", name="New invoice").click()
        expect(page.locator("#funding")).to_have_attribute("data-state", "awaiting")
        expect(page.locator("#invoice-expiry")).to_contain_text(A_FRESH_HOUR)
        assert_state(page, FUND, "awaiting", "fund-awaiting" + shot)
        page.get_by_role("button", name="Pay with the simulator").click()
        paid_sats = "500 sats"

    # Paid: the session is live, the spent invoice and its countdown are gone.
    expect(page.locator("#session-status")).to_have_text("Session active", timeout=LIVE_TIMEOUT_MS)
    expect(page.locator("#session-balance")).to_have_text(f"Balance: {paid_sats}")
    assert_state(page, FUND, "paid", "fund-paid" + shot, audit=audit)
    assert click_buttons(page) == ["Copy token"]
    click_hidden_handlers(page)
    assert_state(page, FUND, "paid", "fund-paid" + shot)
    assert errors.seen == []


@pytest.mark.parametrize(("size", "viewport", "scheme"), VIEWS)
def test_topup_page_states_show_the_right_panels_and_every_button_works(
    new_context, live_gateway, simulator, size, viewport, scheme
):
    created = live_gateway.create_session(300)
    simulator.pay_invoice(created["funding"]["lightning_invoice"])
    live_gateway.wait_balance(created["token"], 300)
    page = open_money_page(new_context, live_gateway, "/topup", viewport, scheme)
    errors = PageErrors(page)
    shot = f"-{size}-{scheme}"
    audit = size == "desktop"  # axe in each state, both schemes (phone layouts share the markup)

    # Before: the form only; it refuses a missing token without asking the gateway.
    assert_state(page, TOPUP, "before", "topup-before" + shot, audit=audit)
    click_hidden_handlers(page)
    page.get_by_role("button", name="Get invoice").click()
    expect(page.locator("#topup-error")).to_have_text("Paste your session token (it starts with ak_).")
    page.get_by_label("Session token").fill(created["token"])
    page.get_by_role("button", name="Get invoice").click()

    # Awaiting: the current balance, the QR; "Change amount" goes back to a clean form.
    expect(page.locator("#session-balance")).to_have_text("Balance: 300 sats", timeout=LIVE_TIMEOUT_MS)
    assert_state(page, TOPUP, "awaiting", "topup-awaiting" + shot, audit=audit)
    clicked = click_buttons(page, skip=("Change amount", "Pay with the simulator", "Send via Ark"))
    assert clicked == ["Copy", "Copy", "Copy", "New invoice"]
    page.get_by_role("button", name="Change amount").click()
    assert_state(page, TOPUP, "before", "topup-before" + shot)
    page.get_by_role("button", name="Get invoice").click()
    expect(page.locator("#session-balance")).to_have_text("Balance: 300 sats", timeout=LIVE_TIMEOUT_MS)
    assert_state(page, TOPUP, "awaiting", "topup-awaiting" + shot)

    expire_invoice(page, simulator)
    assert_state(page, TOPUP, "expired", "topup-expired" + shot, audit=audit)
    assert click_buttons(page, skip=("Change amount", "New invoice", "Send via Ark")) == ["Copy"]
    assert_state(page, TOPUP, "expired", "topup-expired" + shot)

    if size == "phone":
        page.get_by_role("button", name="Send via Ark").click()
    else:
        page.get_by_role("button", name="New invoice").click()
        expect(page.locator("#invoice-expiry")).to_contain_text(A_FRESH_HOUR)
        assert_state(page, TOPUP, "awaiting", "topup-awaiting" + shot)
        page.get_by_role("button", name="Pay with the simulator").click()

    expect(page.locator("#session-status")).to_have_text("Payment received: +1,000 sats", timeout=LIVE_TIMEOUT_MS)
    expect(page.locator("#session-balance")).to_have_text("Balance: 1,300 sats")
    expect(page.locator("#topup-restart")).to_have_text("Top up again")
    assert_state(page, TOPUP, "paid", "topup-paid" + shot, audit=audit)
    assert live_gateway.balance(created["token"]) == 1300
    page.get_by_role("button", name="Top up again").click()
    assert_state(page, TOPUP, "before", "topup-before" + shot)
    click_hidden_handlers(page)
    assert errors.seen == []


@pytest.mark.parametrize(
    ("network", "shows"),
    [("mainnet", "Mainnet Payments here are real bitcoin."), ("regtest", "Regtest A test network")],
)
def test_network_banner_is_loud_on_test_networks_and_quiet_on_mainnet(browser, make_settings, network, shows):
    settings = make_settings(network=network, payment_mode="barkd", barkd_url="http://127.0.0.1:9")
    with live_gateway_server(settings) as gateway:
        context = browser.new_context(viewport=DESKTOP)
        try:
            page = context.new_page()
            errors = PageErrors(page)
            page.goto(f"{gateway.url}/fund")
            banner = page.locator("#network-banner")
            expect(banner).to_be_visible()
            expect(banner).to_contain_text(shows)
            expect(banner).to_have_class(re.compile("mainnet" if network == "mainnet" else "testnet"))
            assert ("test network" in banner.inner_text()) is (network != "mainnet")
            assert_state(page, FUND, "before", f"fund-before-desktop-light-{network}")
            assert errors.seen == []
        finally:
            context.close()


SESSION_PANELS = {"form": "#session-form", "error": "#session-error", "view": "#session-view"}


@pytest.mark.parametrize(("size", "viewport", "scheme"), VIEWS)
def test_session_page_states_show_the_right_panels(new_context, live_gateway, simulator, size, viewport, scheme):
    created = live_gateway.create_session(200)
    simulator.pay_invoice(created["funding"]["lightning_invoice"])
    live_gateway.wait_balance(created["token"], 200)
    page = open_money_page(new_context, live_gateway, "/session", viewport, scheme)
    errors = PageErrors(page)
    shot = f"-{size}-{scheme}"

    def shows(**expected: bool) -> None:
        assert {name: page.locator(sel).is_visible() for name, sel in SESSION_PANELS.items()} == expected

    shows(form=True, error=False, view=False)
    page.get_by_role("button", name="Show").click()  # no token yet
    expect(page.locator("#session-error")).to_have_text("Paste your session token (it starts with ak_).")
    page.get_by_label("Session token").fill("ak_not-a-real-token")
    page.get_by_role("button", name="Show").click()
    expect(page.locator("#session-error")).to_contain_text("invalid")
    shows(form=True, error=True, view=False)
    save_screenshot(page, "session-refused" + shot)
    # The browser logs the three refused requests (401) itself; nothing else may have gone wrong.
    assert {e for e in errors.seen if "status of 401" not in e} == set()
    errors.seen.clear()

    page.get_by_label("Session token").fill(created["token"])
    page.get_by_role("button", name="Show").click()
    expect(page.locator("#view-balance")).to_have_text("200 sats")
    shows(form=True, error=False, view=True)
    expect(page.locator("#payments-empty")).to_be_hidden()
    expect(page.locator("#calls-empty")).to_be_visible()
    save_screenshot(page, "session-loaded" + shot)

    page.get_by_role("button", name="Forget token").click()
    shows(form=True, error=False, view=False)
    assert page.evaluate("sessionStorage.getItem('arkgate.token')") is None
    assert errors.seen == [], errors.seen


def test_free_mode_pages_skip_the_payment_panel(browser, make_settings):
    settings = make_settings(payment_mode="free", network="regtest")
    with live_gateway_server(settings) as gateway:
        context = browser.new_context(viewport=DESKTOP)
        try:
            page = context.new_page()
            errors = PageErrors(page)
            page.goto(f"{gateway.url}/fund")
            expect(page.locator("#network-banner")).to_contain_text("Free mode")
            page.get_by_role("button", name="Create session").click()
            expect(page.locator("#session-status")).to_have_text("Session active")
            expect(page.locator("#session-balance")).to_have_text("Balance: 500 sats")
            assert_state(page, FUND, "paid", "fund-paid-desktop-light-free")
            token = page.locator("#token").input_value()

            page.goto(f"{gateway.url}/topup")  # the token carries over in session storage
            expect(page.locator("#topup-token")).to_have_value(token)
            page.get_by_role("button", name="Get invoice").click()
            expect(page.locator("#session-status")).to_have_text("Payment received: +1,000 sats")
            expect(page.locator("#session-balance")).to_have_text("Balance: 1,500 sats")
            assert_state(page, TOPUP, "paid", "topup-paid-desktop-light-free")
            assert gateway.balance(token) == 1500
            assert errors.seen == []
        finally:
            context.close()
