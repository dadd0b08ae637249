"""url-to-markdown on a local article page, through the outbound guard's explicit loopback allowance."""

from __future__ import annotations

import pytest

from tests.upstreams import Reply, UpstreamServer, upstream_server_fixture  # noqa: F401
from tests.upstreams.checks import assert_not_charged, assert_paid

ARTICLE = "/blog/lightning-node-at-home"


@pytest.fixture
def site(upstream_server: UpstreamServer) -> UpstreamServer:
    upstream_server.serve_file(ARTICLE, "pages/article.html")
    upstream_server.route("/old-link", Reply(status=301, headers={"Location": ARTICLE}))
    upstream_server.route("/logo.png", Reply(body=b"\x89PNG\r\n\x1a\n", content_type="image/png"))
    return upstream_server


def allow_loopback(server: UpstreamServer, **extra: object) -> dict[str, object]:
    return {
        "unsafe_allow_private_targets": ["127.0.0.0/8"],
        "outbound_allowed_ports": [server.port],
        "outbound_timeout_s": 5.0,
        **extra,
    }


async def test_article_keeps_headings_and_table_and_drops_nav_and_footer(gateway_factory, site: UpstreamServer) -> None:
    async with gateway_factory(**allow_loopback(site)) as gw:
        token = await gw.new_session(sats=50)
        data = assert_paid(await gw.call("url-to-markdown", {"url": f"{site.url}{ARTICLE}"}, token=token), 5)
    markdown = data["markdown"]
    assert data["excerpt"] and len(data["excerpt"]) <= 301  # ArkAPI's short summary
    assert markdown.startswith("# Running a Lightning Node at Home\n")
    assert "\n## Choosing the hardware\n" in markdown
    assert "\n## Opening the first channels\n" in markdown
    assert "\n### Keeping it running\n" in markdown
    assert "| Part | Minimum | Recommended |" in markdown
    assert "| Storage | 1 TB SSD | 2 TB NVMe |" in markdown
    assert "- Pick peers with good uptime." in markdown
    for boilerplate in (
        "NAVIGATION-ARCHIVE-LINK",
        "FOOTER-COPYRIGHT",
        "SIDEBAR-POPULAR-POST",
        "Privacy policy",
        "analytics",
    ):
        assert boilerplate not in markdown
    assert data["title"] == "Running a Lightning Node at Home"
    assert data["author"] == "Ada Satoshi"
    assert data["published"] == "2024-03-20"
    assert data["site_name"] == "Example Sats Blog"
    assert data["description"].startswith("A practical guide")
    assert data["status_code"] == 200
    assert data["word_count"] > 100
    assert data["truncated"] is False


async def test_redirects_are_followed(gateway_factory, site: UpstreamServer) -> None:
    async with gateway_factory(**allow_loopback(site)) as gw:
        token = await gw.new_session(sats=50)
        data = assert_paid(await gw.call("url-to-markdown", {"url": f"{site.url}/old-link"}, token=token), 5)
    assert data["final_url"].endswith(ARTICLE)
    assert data["url"].endswith("/old-link")


async def test_private_address_is_refused_for_free(gateway_factory, site: UpstreamServer) -> None:
    # Same server, but without the test allowance: loopback is not a public address.
    async with gateway_factory(outbound_allowed_ports=[site.port]) as gw:
        token = await gw.new_session(sats=50)
        resp = await gw.call("url-to-markdown", {"url": f"{site.url}{ARTICLE}"}, token=token)
        body = await assert_not_charged(gw, resp, token, 50, 400)
    assert body["error_code"] == "target_refused"
    assert site.hits(ARTICLE) == 0


@pytest.mark.parametrize(
    "url", ["", "ftp://example.com/file", "javascript:alert(1)", "http://exa mple.com/", "x" * 2049]
)
async def test_bad_urls_are_a_free_400(gateway_factory, site: UpstreamServer, url: str) -> None:
    async with gateway_factory(**allow_loopback(site)) as gw:
        token = await gw.new_session(sats=50)
        await assert_not_charged(gw, await gw.call("url-to-markdown", {"url": url}, token=token), token, 50, 400)


async def test_non_html_target_is_a_free_400(gateway_factory, site: UpstreamServer) -> None:
    async with gateway_factory(**allow_loopback(site)) as gw:
        token = await gw.new_session(sats=50)
        resp = await gw.call("url-to-markdown", {"url": f"{site.url}/logo.png"}, token=token)
        body = await assert_not_charged(gw, resp, token, 50, 400)
    assert "image/png" in body["error"]


@pytest.mark.parametrize(("mode", "status"), [("fail", 502), ("hang", 504)])
async def test_failing_page_is_refunded(gateway_factory, site: UpstreamServer, mode: str, status: int) -> None:
    site.fail(ARTICLE, 500) if mode == "fail" else site.hang(ARTICLE)
    async with gateway_factory(**allow_loopback(site, outbound_timeout_s=0.3)) as gw:
        token = await gw.new_session(sats=50)
        resp = await gw.call("url-to-markdown", {"url": f"{site.url}{ARTICLE}"}, token=token)
        await assert_not_charged(gw, resp, token, 50, status)
