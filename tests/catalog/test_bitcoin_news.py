"""bitcoin-news: recorded RSS and Atom feeds merged, de-duplicated, cached; failures refunded."""

from __future__ import annotations

import pytest

from tests.upstreams import UpstreamServer, upstream_server_fixture  # noqa: F401
from tests.upstreams.checks import assert_not_charged, assert_paid

RSS = "/feeds/coindesk.rss"
ATOM = "/feeds/magazine.atom"


@pytest.fixture
def feeds(upstream_server: UpstreamServer) -> UpstreamServer:
    upstream_server.serve_file(RSS, "feeds/coindesk.rss")
    upstream_server.serve_file(ATOM, "feeds/magazine.atom")
    return upstream_server


def overrides(server: UpstreamServer, timeout_s: float = 5.0) -> dict[str, object]:
    return {
        "news_feeds": f"{server.url}{RSS},{server.url}{ATOM}",
        "upstream_retry_backoff_s": 0,
        "news_timeout_s": timeout_s,
    }


async def test_headlines_are_merged_deduplicated_and_newest_first(gateway_factory, feeds: UpstreamServer) -> None:
    async with gateway_factory(**overrides(feeds)) as gw:
        token = await gw.new_session(sats=50)
        data = assert_paid(await gw.call("bitcoin-news", {"limit": 10}, token=token), 2)
    titles = [item["title"] for item in data["items"]]
    assert titles == [
        "Bitcoin Miners Adjust to New Hashprice Reality",
        "Ark Protocol Brings Cheap Off-Chain Payments to Bitcoin",
        # the Atom copy of this story (same link without tracking, later date) is the one kept
        "Spot Bitcoin ETFs record fifth day of outflows",
        "Lightning Network Capacity Hits New High",
        "The Halving, Explained",
    ]
    first = data["items"][0]
    assert first["source"] == "CoinDesk: Bitcoin, Ethereum, Crypto News and Price Data"
    assert first["published_at"] == "2024-03-26T11:30:00Z"
    assert first["summary"] == "Miners are cutting costs ahead of the halving as hashprice & fees fall."
    assert data["items"][1]["summary"] == "Ark lets users share UTXOs."
    assert data["items"][4]["published_at"] == "2024-03-23T15:00:00Z"  # Atom <updated> when no <published>
    assert data["sources"] == ["CoinDesk: Bitcoin, Ethereum, Crypto News and Price Data", "Bitcoin Magazine"]
    assert data["count"] == 5


async def test_limit_and_cache(gateway_factory, feeds: UpstreamServer) -> None:
    async with gateway_factory(**overrides(feeds)) as gw:
        token = await gw.new_session(sats=50)
        data = assert_paid(await gw.call("bitcoin-news", {"limit": 2}, token=token), 2)
        again = assert_paid(await gw.call("bitcoin-news", {}, token=token), 2)
    assert data["count"] == 2
    assert again["count"] == 5
    assert feeds.hits(RSS) == feeds.hits(ATOM) == 1


async def test_one_failing_feed_is_skipped(gateway_factory, feeds: UpstreamServer) -> None:
    feeds.fail(ATOM, 500)
    async with gateway_factory(**overrides(feeds)) as gw:
        token = await gw.new_session(sats=50)
        data = assert_paid(await gw.call("bitcoin-news", {}, token=token), 2)
    assert data["failed_sources"] == 1
    assert {item["source"] for item in data["items"]} == {data["sources"][0]}


async def test_a_page_that_is_not_a_feed_counts_as_failed(gateway_factory, feeds: UpstreamServer) -> None:
    feeds.serve_text(ATOM, "<html><body>maintenance</body></html>")
    async with gateway_factory(**overrides(feeds)) as gw:
        token = await gw.new_session(sats=50)
        data = assert_paid(await gw.call("bitcoin-news", {}, token=token), 2)
    assert data["failed_sources"] == 1


@pytest.mark.parametrize("payload", [{"limit": "many"}, {"limit": 2.5}])
async def test_bad_limit_is_a_free_400(gateway_factory, feeds: UpstreamServer, payload: dict) -> None:
    async with gateway_factory(**overrides(feeds)) as gw:
        token = await gw.new_session(sats=50)
        await assert_not_charged(gw, await gw.call("bitcoin-news", payload, token=token), token, 50, 400)


@pytest.mark.parametrize(("mode", "status"), [("fail", 502), ("hang", 504)])
async def test_every_feed_failing_is_refunded(gateway_factory, feeds: UpstreamServer, mode: str, status: int) -> None:
    for path in (RSS, ATOM):
        feeds.fail(path, 500) if mode == "fail" else feeds.hang(path)
    async with gateway_factory(**overrides(feeds, 0.3)) as gw:
        token = await gw.new_session(sats=50)
        resp = await gw.call("bitcoin-news", {}, token=token)
        body = await assert_not_charged(gw, resp, token, 50, status, hidden=(feeds.url, RSS, ATOM))
    assert "news feed #1" in body["error"]
