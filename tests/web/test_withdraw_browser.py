"""The session page's withdraw, close and refund_to actions in headless Chromium against the simulator."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.web.conftest import axe_violations, describe, save_screenshot

pytestmark = pytest.mark.timeout(180)


def test_session_page_shows_the_fee_withdraws_sets_refund_to_and_closes(new_context, live_gateway, simulator):
    created = live_gateway.create_session(1000)
    simulator.pay_invoice(created["funding"]["lightning_invoice"])
    live_gateway.wait_balance(created["token"], 1000)
    address = simulator.payee_address()
    refund_address = simulator.payee_address()

    page = new_context().new_page()
    page.goto(f"{live_gateway.url}/session")
    page.get_by_label("Session token").fill(created["token"])
    page.get_by_role("button", name="Show").click()
    expect(page.locator("#view-balance")).to_have_text("1,000 sats")

    page.get_by_label("Destination").fill(address)
    page.get_by_label("Amount in sats, fee included (empty: everything)").fill("400")
    page.get_by_role("button", name="Show fee").click()
    expect(page.locator("#withdraw-status")).to_have_text(
        "Fee 0 sats: the destination receives 400 sats and 400 sats leave your balance."
    )
    page.get_by_role("button", name="Withdraw", exact=True).click()
    expect(page.locator("#withdraw-status")).to_have_text("Sent 400 sats (fee 0 sats). Balance left: 600 sats.")
    expect(page.locator("#view-balance")).to_have_text("600 sats")
    assert simulator.payee_received(address)["received_sat"] == 400

    page.get_by_label("Refund to (Ark address)").fill("lnbc-not-an-address")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#refund-error")).to_contain_text("Ark address")
    page.get_by_label("Refund to (Ark address)").fill(refund_address)
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#refund-status")).to_have_text("Saved: the remainder goes there when the session expires.")
    page.wait_for_load_state("networkidle")
    save_screenshot(page, "session-withdraw")
    violations = axe_violations(page)
    assert violations == [], describe(violations)

    page.get_by_label("Destination").fill("nonsense")
    page.get_by_role("button", name="Withdraw", exact=True).click()
    expect(page.locator("#withdraw-error")).to_contain_text("BOLT11")
    assert live_gateway.balance(created["token"]) == 600

    page.get_by_label("Destination").fill(address)
    page.get_by_role("button", name="Withdraw all and close").click()
    expect(page.locator("#withdraw-status")).to_have_text(
        "Sent 600 sats (fee 0 sats). The session is closed; its token no longer works."
    )
    assert simulator.payee_received(address) == {"destination": address, "received_sat": 1000, "payments": 2}
    assert page.evaluate("sessionStorage.getItem('arkgate.token')") is None
