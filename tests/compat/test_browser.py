"""A page on another loopback origin uses arkgate the way ArkAPI's own pages use ArkAPI (headless Chromium).

``pages/fund.html`` is this project's own page. It makes the calls ArkAPI's ``site/fund/`` page
makes (read there, not copied): ``POST /v1/sessions`` with a JSON ``amount_sats``, then
``GET /v1/balance`` with the bearer token, polled until the status is ``active``. Both need
a CORS preflight from another origin (a JSON body; an Authorization header).
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import pytest
from playwright.sync_api import expect

from tests.web.conftest import LiveGateway, save_screenshot

PAGES = Path(__file__).parent / "pages"


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def page_origin() -> Iterator[str]:
    """A second loopback origin (its own port) serving tests/compat/pages/."""
    handler = functools.partial(_QuietHandler, directory=str(PAGES))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def gateway_calls(requests: list[Any], gateway: LiveGateway) -> list[tuple[str, str]]:
    """(method, path) of every request the page sent to the gateway."""
    origin = urlsplit(gateway.url).netloc
    return [(r.method, urlsplit(r.url).path) for r in requests if urlsplit(r.url).netloc == origin]


def test_a_page_on_another_origin_funds_a_session_with_arkapis_calls(
    new_context, live_gateway: LiveGateway, simulator, page_origin: str
) -> None:
    page = new_context().new_page()
    requests: list[Any] = []
    page.on("request", lambda request: requests.append(request))
    failed: list[str] = []
    page.on("requestfailed", lambda r: failed.append(r.url))
    page.goto(f"{page_origin}/fund.html?gateway={quote(live_gateway.url)}")

    page.fill("#amount", "700")
    page.click("#create")
    expect(page.locator("#state")).to_contain_text("Waiting for payment (awaiting_payment)")
    invoice = page.locator("#invoice").inner_text()
    assert invoice.startswith("ln") and page.locator("#token").inner_text().startswith("ak_")
    assert page.locator("#address").inner_text()

    simulator.pay_invoice(invoice)  # an outside payer settles the invoice at the simulator

    expect(page.locator("#state")).to_have_text("Session active")
    expect(page.locator("#balance")).to_have_text("700 sats")
    save_screenshot(page, "arkapi-compat-cross-origin-fund")

    calls = gateway_calls(requests, live_gateway)
    assert calls[0] == ("POST", "/v1/sessions")
    assert len(calls) >= 2 and set(calls[1:]) == {("GET", "/v1/balance")}  # polled until active
    assert failed == []
    posted = next(r for r in requests if r.method == "POST")
    assert posted.post_data_json == {"amount_sats": 700}
    assert posted.headers["origin"] == page_origin


def test_cross_origin_fetch_after_preflight_reads_a_paid_answer_and_its_headers(
    new_context, live_gateway: LiveGateway, page_origin: str
) -> None:
    page = new_context().new_page()
    page.goto(f"{page_origin}/fund.html?gateway={quote(live_gateway.url)}")
    result = page.evaluate(
        """async (gateway) => {
            const created = await (await fetch(gateway + "/v1/sessions", {
                method: "POST", headers: {"Content-Type": "application/json"}, body: '{"amount_sats": 100}'
            })).json();
            const paid = await fetch(gateway + "/api/qr-generate", {
                method: "POST",
                headers: {"Content-Type": "application/json", "Authorization": "Bearer " + created.token},
                body: '{"data": "hello"}',
            });
            let admin;
            try { await fetch(gateway + "/admin/api/overview"); admin = "readable"; }
            catch (error) { admin = "blocked"; }
            return {
                created_status: created.status,
                paid_status: paid.status,
                body: await paid.json(),
                admin,
            };
        }""",
        live_gateway.url,
    )
    # an unpaid session cannot call: the cross-origin POST went through and its 402 is readable
    assert result["created_status"] == "awaiting_payment"
    assert result["paid_status"] == 402 and result["body"]["success"] is False
    assert result["admin"] == "blocked"  # operator routes send no CORS headers


def test_cross_origin_paid_call_with_a_funded_session(
    new_context, live_gateway: LiveGateway, simulator, page_origin: str
) -> None:
    created = live_gateway_post_session(live_gateway, 300)
    simulator.pay_invoice(created["funding"]["lightning_invoice"])
    page = new_context().new_page()
    page.goto(f"{page_origin}/fund.html?gateway={quote(live_gateway.url)}")
    result = page.evaluate(
        """async ([gateway, token]) => {
            for (let i = 0; i < 200; i++) {
                const balance = await (await fetch(gateway + "/v1/balance", {
                    headers: {"Authorization": "Bearer " + token}})).json();
                if (balance.status === "active") break;
                await new Promise(r => setTimeout(r, 25));
            }
            const paid = await fetch(gateway + "/api/qr-generate", {
                method: "POST",
                headers: {"Content-Type": "application/json", "Authorization": "Bearer " + token},
                body: '{"data": "hello", "size": 128}',
            });
            return {status: paid.status, body: await paid.json()};
        }""",
        [live_gateway.url, created["token"]],
    )
    assert result["status"] == 200, result
    assert result["body"]["data"]["size"] == 128 and result["body"]["data"]["data"] == "hello"
    assert result["body"]["cost_sats"] == 2


def live_gateway_post_session(gateway: LiveGateway, sats: int) -> dict[str, Any]:
    import httpx

    response = httpx.post(f"{gateway.url}/v1/sessions", json={"amount_sats": sats}, timeout=30)
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]
