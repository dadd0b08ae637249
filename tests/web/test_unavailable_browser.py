"""The catalog page in Chromium: an endpoint without a backend is labelled, not sold."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.web.conftest import DESKTOP, PHONE, axe_violations, describe, save_screenshot

pytestmark = pytest.mark.timeout(180)


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize(("size_name", "viewport"), [("phone", PHONE), ("desktop", DESKTOP)])
def test_an_unavailable_endpoint_has_a_label_and_no_call_button(
    new_context: Any, live_gateway: Any, size_name: str, viewport: dict[str, int], scheme: str
) -> None:
    # The test gateway configures no AI backend: ai-chat is unavailable, qr-generate is not.
    page = new_context(viewport=viewport, color_scheme=scheme).new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{live_gateway.url}/")

    unavailable = page.locator("#ep-ai-chat")
    expect(unavailable.locator(".badge-unavailable")).to_have_text("Not available on this gateway")
    expect(unavailable.locator(".badge-unavailable")).to_be_visible()
    expect(unavailable.locator(".unavailable-reason")).to_contain_text("ARKGATE_AI_BASE_URL")
    expect(unavailable.locator(".unavailable-reason")).to_be_visible()
    expect(unavailable.get_by_role("button")).to_have_count(0)
    expect(unavailable.locator("details.tryit")).to_have_count(0)
    expect(unavailable.locator(".price")).to_have_count(0)

    available = page.locator("#ep-qr-generate")
    available.locator("summary").click()
    expect(available.get_by_role("button", name=re.compile("^Call for 2 sats"))).to_be_visible()
    expect(available.locator(".badge-unavailable")).to_have_count(0)

    unavailable.scroll_into_view_if_needed()
    save_screenshot(page, f"index-unavailable-{size_name}-{scheme}")
    violations = axe_violations(page)
    assert violations == [], describe(violations)
    assert errors == []
