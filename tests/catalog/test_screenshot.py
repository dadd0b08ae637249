"""screenshot: Debian's Chromium renders a loopback page; the guard vets every request the page makes.

Needs /usr/bin/chromium (``apt-get install -y chromium fonts-dejavu-core``); skipped without it.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from tests.upstreams import Reply, UpstreamServer, upstream_server_fixture  # noqa: F401
from tests.upstreams.checks import assert_not_charged, assert_paid

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path("/usr/bin/chromium").exists(), reason="Debian chromium is not installed"),
]

PAGE = """<!DOCTYPE html>
<html><head><title>Loopback test page</title>
<style>
  body { margin: 0; background: #1f6feb; font-family: 'DejaVu Sans', sans-serif; }
  h1 { color: #fff; padding: 24px; margin: 0; }
  .tall { height: 1500px; background: linear-gradient(#1f6feb, #f0b429); }
</style></head>
<body>
  <h1>Hello from loopback</h1>
  <img src="/pixel.png" width="10" height="10">
  <img src="http://10.1.2.3/private.png" width="10" height="10">
  <img src="http://169.254.169.254/latest/meta-data/" width="10" height="10">
  <script>fetch('http://192.168.1.1/router').catch(() => {});</script>
  <div class="tall"></div>
</body></html>
"""


def _pixel_png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (1, 1), (255, 0, 0)).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
def site(upstream_server: UpstreamServer) -> UpstreamServer:
    upstream_server.serve_text("/page", PAGE)
    upstream_server.route("/pixel.png", Reply(body=_pixel_png(), content_type="image/png"))
    upstream_server.route("/moved", Reply(status=302, headers={"Location": "/page"}))
    return upstream_server


def allow_loopback(server: UpstreamServer, **extra: object) -> dict[str, object]:
    # Port 80 is allowed too, so the private-address subresources are refused for their address.
    return {
        "unsafe_allow_private_targets": ["127.0.0.0/8"],
        "outbound_allowed_ports": [server.port, 80],
        "outbound_timeout_s": 5.0,
        "screenshot_timeout_s": 20.0,
        **extra,
    }


def _not_blank(png: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(png)).convert("RGB")
    colours = image.getcolors(maxcolors=1_000_000)
    assert colours is not None and len(colours) > 2, "the screenshot is a single colour"
    return image


async def test_loopback_page_is_captured_and_hosted(gateway_factory, site: UpstreamServer) -> None:
    async with gateway_factory(**allow_loopback(site)) as gw:
        token = await gw.new_session(sats=100)
        resp = await gw.call("screenshot", {"url": f"{site.url}/page", "width": 640, "height": 400}, token=token)
        data = assert_paid(resp, 15)
        download = await gw.client.get(data["download_url"].removeprefix("http://gateway"))
        assert download.status_code == 200
        assert download.headers["content-type"] == "image/png"
    assert (data["width"], data["height"]) == (640, 400)
    assert data["title"] == "Loopback test page"
    assert data["status_code"] == 200
    assert data["mime_type"] == "image/png"
    assert "/v1/downloads/" in data["download_url"]
    image = _not_blank(download.content)
    assert image.size == (640, 400)
    assert image.getpixel((600, 380)) != (255, 255, 255)  # the page's background, not an empty canvas


async def test_private_subresources_are_blocked_and_allowed_ones_served(gateway_factory, site: UpstreamServer) -> None:
    async with gateway_factory(**allow_loopback(site)) as gw:
        token = await gw.new_session(sats=100)
        data = assert_paid(await gw.call("screenshot", {"url": f"{site.url}/page"}, token=token), 15)
    blocked = {item["url"]: item["reason"] for item in data["blocked"]}
    assert "http://10.1.2.3/private.png" in blocked
    assert "private" in blocked["http://10.1.2.3/private.png"]
    assert "metadata" in blocked["http://169.254.169.254/latest/meta-data/"]
    assert "http://192.168.1.1/router" in blocked
    assert data["requests_blocked"] >= 3
    assert site.hits("/pixel.png") == 1  # the page's allowed image came through the guard


async def test_full_page_and_redirect(gateway_factory, site: UpstreamServer) -> None:
    async with gateway_factory(**allow_loopback(site)) as gw:
        token = await gw.new_session(sats=100)
        payload = {"url": f"{site.url}/moved", "full_page": True, "width": 400, "height": 300, "include_base64": True}
        data = assert_paid(await gw.call("screenshot", payload, token=token), 15)
    assert data["final_url"].endswith("/page")
    assert data["width"] == 400
    assert data["height"] > 1500  # the whole page, not the 300 px viewport
    assert data["image_base64"]


async def test_private_page_is_refused_for_free(gateway_factory, site: UpstreamServer) -> None:
    async with gateway_factory(outbound_allowed_ports=[site.port]) as gw:
        token = await gw.new_session(sats=100)
        resp = await gw.call("screenshot", {"url": f"{site.url}/page"}, token=token)
        body = await assert_not_charged(gw, resp, token, 100, 400)
    assert body["error_code"] == "target_refused"
    assert site.hits("/page") == 0


@pytest.mark.parametrize(
    "payload",
    [
        {"url": "ftp://example.com/"},
        {"url": ""},
        {"url": "https://example.com", "width": 100},
        {"url": "https://example.com", "height": 5000},
    ],
)
async def test_bad_input_is_a_free_400(gateway_factory, site: UpstreamServer, payload: dict) -> None:
    async with gateway_factory(**allow_loopback(site)) as gw:
        token = await gw.new_session(sats=100)
        await assert_not_charged(gw, await gw.call("screenshot", payload, token=token), token, 100, 400)


async def test_page_that_never_answers_is_a_refunded_504(gateway_factory, site: UpstreamServer) -> None:
    site.hang("/page")
    async with gateway_factory(**allow_loopback(site, outbound_timeout_s=1.0, screenshot_timeout_s=3.0)) as gw:
        token = await gw.new_session(sats=100)
        resp = await gw.call("screenshot", {"url": f"{site.url}/page"}, token=token)
        await assert_not_charged(gw, resp, token, 100, 504)
