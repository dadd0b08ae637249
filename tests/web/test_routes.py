"""The web front's routes without a browser: pages, QR images, stream tickets and events, the demo proxy."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import zxingcpp
from PIL import Image

from arkgate.settings import Settings
from arkgate.web import routes
from tests.conftest import running_gateway
from tests.web.conftest import LiveGateway

PAGES = ["/", "/docs", "/fund", "/topup", "/session"]
WEB_DIR = Path(routes.__file__).parent
# Absolute URLs allowed in our own pages and assets: XML namespaces are names, never fetched.
ALLOWED_ABSOLUTE = re.compile(r"https?://(www\.w3\.org/|127\.0\.0\.1|gateway\b)")


def paid_settings(make_settings: Callable[..., Settings], simulator: Any, **overrides: Any) -> Settings:
    values = {
        "payment_mode": "barkd",
        "barkd_url": simulator.url,
        "barkd_token": simulator.token,
        "reconcile_interval_s": 3600,
    }
    values.update(overrides)
    return make_settings(**values)


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize("path", PAGES)
async def test_each_page_is_served_with_a_strict_content_security_policy(gateway, path):
    response = await gateway.client.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    policy = response.headers["content-security-policy"]
    assert "default-src 'self'" in policy and "script-src 'self'" in policy
    assert '<main id="main"' in response.text
    assert 'id="network-banner"' in response.text
    # Every link, script, stylesheet, image and form target is on this gateway (text such as an
    # endpoint's example URL is data, not something the page loads).
    targets = re.findall(r'(?:src|href|action|data-spec)="([^"]*)"', response.text)
    assert targets
    assert [t for t in targets if not t.startswith(("/", "#"))] == []


def test_our_own_static_files_name_no_outside_url():
    own = [p for p in (WEB_DIR / "static").rglob("*") if p.is_file() and "vendor" not in p.parts]
    own += list((WEB_DIR / "templates").rglob("*.html"))
    assert own
    for path in own:
        found = [u for u in re.findall(r"https?://[^\s\"'<>)]+", path.read_text()) if not ALLOWED_ABSOLUTE.match(u)]
        assert found == [], f"{path.name} names {found}"


def test_vendored_assets_carry_their_licences():
    vendor = WEB_DIR / "static" / "vendor" / "swagger-ui"
    for name in ("swagger-ui-bundle.js", "swagger-ui.css", "LICENSE", "NOTICE"):
        assert (vendor / name).is_file(), name
    axe = Path(__file__).parent / "vendor"
    assert (axe / "axe.min.js").is_file() and (axe / "LICENSE").is_file()


async def test_static_files_are_served(gateway):
    for path in ("/static/app.css", "/static/common.js", "/static/vendor/swagger-ui/swagger-ui-bundle.js"):
        response = await gateway.client.get(path)
        assert response.status_code == 200, path


async def test_landing_page_lists_every_endpoint_with_its_price_and_example(gateway):
    page = (await gateway.client.get("/")).text
    for endpoint in gateway.runtime.catalog:
        assert f'id="ep-{endpoint.id}"' in page
        if endpoint.metered is None:
            assert f"{endpoint.price_sats} sats" in page
    data = re.search(r'<script type="application/json" id="tryit-data">(.*?)</script>', page, re.S)
    assert data is not None
    tryit = json.loads(data.group(1))
    assert tryit["qr-generate"]["example"] == {"data": "https://example.com"}
    assert tryit["qr-generate"]["schema"]["properties"]["data"]["type"] == "string"


async def test_network_banner_says_mainnet_or_test_network(gateway_factory):
    async with gateway_factory(network="signet") as gw:
        assert "A test network: its coins have no value" in (await gw.client.get("/")).text
    async with gateway_factory(network="mainnet", payment_mode="barkd") as gw:
        assert "Payments here are real bitcoin" in (await gw.client.get("/fund")).text


async def test_funding_qr_is_a_bip321_uri_of_a_known_invoice(make_settings, simulator):
    async with running_gateway(paid_settings(make_settings, simulator)) as gw:
        created = await gw.create_session(700)
        funding = created["funding"]
        response = await gw.client.get("/fund/qr.svg", params={"payment_hash": funding["payment_hash"]})
        assert response.status_code == 200
        assert response.headers["content-type"] == "image/svg+xml"
        text = _decode_svg(response.content)
        assert text == funding["bip321"]
        assert f"lightning={funding['lightning_invoice']}" in text and f"ark={funding['ark_address']}" in text

        bad = await gw.client.get("/fund/qr.svg", params={"payment_hash": "nothex"})
        assert bad.status_code == 400
        unknown = await gw.client.get("/fund/qr.svg", params={"payment_hash": "ab" * 32})
        assert unknown.status_code == 404


def _decode_svg(svg: bytes) -> str:
    """Rasterise the one-path SVG by hand (no SVG renderer needed) and decode it with zxing-cpp."""
    size = int(re.search(rb'viewBox="0 0 (\d+) ', svg).group(1))  # type: ignore[union-attr]
    image = Image.new("L", (size, size), 255)
    for x, y in re.findall(rb"M(\d+) (\d+)h1v1h-1z", svg):
        image.putpixel((int(x), int(y)), 0)
    codes = zxingcpp.read_barcodes(image.resize((size * 4, size * 4), Image.Resampling.NEAREST))
    assert len(codes) == 1
    return str(codes[0].text)


async def test_stream_ticket_needs_a_token_and_works_once(gateway):
    assert (await gateway.client.post("/v1/sessions/stream-ticket")).status_code == 401
    bad = await gateway.client.post("/v1/sessions/stream-ticket", headers=auth("ak_unknown"))
    assert bad.status_code == 401
    token = await gateway.new_session(100)
    issued = await gateway.client.post("/v1/sessions/stream-ticket", headers=auth(token))
    assert issued.status_code == 200
    ticket = issued.json()["ticket"]
    assert token not in json.dumps(issued.json())
    rt = gateway.runtime
    from arkgate.web.live import tickets_of

    assert await tickets_of(rt).redeem(ticket) is not None
    assert await tickets_of(rt).redeem(ticket) is None  # single use
    refused = await gateway.client.get("/v1/sessions/events", params={"ticket": ticket})
    assert refused.status_code == 401
    assert (await gateway.client.get("/v1/sessions/events")).status_code == 401


async def test_expired_tickets_are_refused(gateway):
    from arkgate.payments.ledger import hash_token
    from arkgate.web.live import StreamTickets

    token = await gateway.new_session(100)
    session = await gateway.runtime.ledger.session_by_token(hash_token(token))
    tickets = StreamTickets(gateway.runtime.database, ttl_s=-1)
    assert await tickets.redeem(await tickets.issue(session.id)) is None


def test_event_stream_sends_the_status_then_each_payment(live_gateway: LiveGateway, simulator):
    created = live_gateway.create_session(300)
    token = created["token"]
    ticket = httpx.post(f"{live_gateway.url}/v1/sessions/stream-ticket", headers=auth(token)).json()["ticket"]
    events: list[tuple[str, dict[str, Any]]] = []
    with httpx.stream("GET", f"{live_gateway.url}/v1/sessions/events", params={"ticket": ticket}, timeout=30) as resp:
        assert resp.status_code == 200
        assert resp.headers["content-type"].startswith("text/event-stream")
        name = ""
        for line in resp.iter_lines():
            if line.startswith("event: "):
                name = line.removeprefix("event: ")
            elif line.startswith("data: "):
                events.append((name, json.loads(line.removeprefix("data: "))))
                if len(events) == 1:
                    simulator.pay_invoice(created["funding"]["lightning_invoice"])
                else:
                    break
    assert events[0][0] == "status"
    assert events[0][1]["status"] == "awaiting_payment" and events[0][1]["balance_sats"] == 0
    assert events[1][0] == "payment"
    assert events[1][1] == {
        "type": "payment",
        "rail": "lightning",
        "amount_sats": 300,
        "balance_sats": 300,
        "status": "active",
    }


async def test_demo_routes_exist_only_in_demo_mode(make_settings, simulator):
    async with running_gateway(paid_settings(make_settings, simulator)) as gw:
        response = await gw.client.post("/demo/pay-invoice", json={"invoice": "x"})
        assert response.status_code in (404, 405)
        assert "Pay with the simulator" not in (await gw.client.get("/fund")).text
    async with running_gateway(paid_settings(make_settings, simulator, demo=True)) as gw:
        # demo without a simulator URL: still absent
        assert (await gw.client.post("/demo/pay-invoice", json={"invoice": "x"})).status_code in (404, 405)


async def test_demo_proxy_pays_only_this_gateways_invoices_and_addresses(make_settings, simulator):
    settings = paid_settings(make_settings, simulator, demo=True, simulator_url=simulator.url)
    async with running_gateway(settings) as gw:
        assert "Pay with the simulator" in (await gw.client.get("/fund")).text
        missing = await gw.client.post("/demo/pay-invoice", json={})
        assert missing.status_code == 400
        garbage = await gw.client.post("/demo/pay-invoice", json={"invoice": "lnbc-not-an-invoice"})
        assert garbage.status_code == 400
        assert (
            await gw.client.post("/demo/send-ark", json={"address": "tark1nobody", "amount_sats": 5})
        ).status_code == 404
        assert (await gw.client.post("/demo/send-ark", json={"address": "x", "amount_sats": 0})).status_code == 400

        other = await gw.runtime.barkd.create_invoice(50, "not a session invoice")  # barkd's, never recorded here
        assert (await gw.client.post("/demo/pay-invoice", json={"invoice": other.bolt11})).status_code == 404

        created = await gw.create_session(120)
        paid = await gw.client.post("/demo/pay-invoice", json={"invoice": created["funding"]["lightning_invoice"]})
        assert paid.status_code == 200, paid.text
        sent = await gw.client.post(
            "/demo/send-ark", json={"address": created["funding"]["ark_address"], "amount_sats": 30}
        )
        assert sent.status_code == 200, sent.text
        from tests.conftest import wait_for

        await wait_for(lambda: _balance_is(gw, created["token"], 150), timeout_s=15)
        await gw.assert_ledger_consistent()


async def _balance_is(gw: Any, token: str, sats: int) -> bool:
    return await gw.balance(token) == sats


async def test_demo_proxy_reports_an_unreachable_simulator_as_502(make_settings, simulator):
    settings = paid_settings(make_settings, simulator, demo=True, simulator_url="http://127.0.0.1:9")
    async with running_gateway(settings) as gw:
        created = await gw.create_session(10)
        response = await gw.client.post("/demo/pay-invoice", json={"invoice": created["funding"]["lightning_invoice"]})
        assert response.status_code == 502
        assert "127.0.0.1:9" not in response.text
