"""prediction-market-search against a recorded Polymarket Gamma /markets answer on loopback."""

from __future__ import annotations

import pytest

from tests.upstreams import UpstreamServer, upstream_server_fixture  # noqa: F401
from tests.upstreams.checks import assert_not_charged, assert_paid

MARKETS = "/markets"


@pytest.fixture
def gamma(upstream_server: UpstreamServer) -> UpstreamServer:
    upstream_server.serve_file(MARKETS, "polymarket/markets.json")
    return upstream_server


def overrides(server: UpstreamServer, timeout_s: float = 5.0) -> dict[str, object]:
    return {"polymarket_gamma_url": server.url, "upstream_retry_backoff_s": 0, "polymarket_timeout_s": timeout_s}


async def test_open_markets_matching_every_word_busiest_first(gateway_factory, gamma: UpstreamServer) -> None:
    async with gateway_factory(**overrides(gamma)) as gw:
        token = await gw.new_session(sats=50)
        data = assert_paid(await gw.call("prediction-market-search", {"query": "Bitcoin", "limit": 5}, token=token), 4)
    assert data["platform"] == "Polymarket"
    # the closed 2025 market is left out even though it has the most volume
    assert [m["market_id"] for m in data["results"]] == ["1652063", "1652088"]
    first = data["results"][0]
    assert first == {
        "market_id": "1652063",
        "event_id": "286722",
        "title": "Will the price of Bitcoin be above $60,000 on March 26?",
        "event_title": "Bitcoin above ___ on March 26?",
        "platform": "Polymarket",
        "status": "open",
        "outcomes": [{"name": "Yes", "price": 0.63}, {"name": "No", "price": 0.37}],
        "probability": 0.63,
        "volume_usd": 485549.81,
        "liquidity_usd": 48123.55,
        "close_time": "2026-03-26T16:00:00Z",
        "url": "https://polymarket.com/event/bitcoin-above-on-march-26",
    }
    assert data["scanned"] == 4
    sent = gamma.requests_to(MARKETS)[0].query
    assert (sent["active"], sent["closed"]) == ("true", "false")


async def test_multi_word_query_and_multi_outcome_market(gateway_factory, gamma: UpstreamServer) -> None:
    async with gateway_factory(**overrides(gamma)) as gw:
        token = await gw.new_session(sats=50)
        etf = assert_paid(await gw.call("prediction-market-search", {"query": "bitcoin etf"}, token=token), 4)
        ai = assert_paid(await gw.call("prediction-market-search", {"query": "AI model"}, token=token), 4)
        none = assert_paid(await gw.call("prediction-market-search", {"query": "dogecoin"}, token=token), 4)
    assert [m["market_id"] for m in etf["results"]] == ["1652088"]
    assert ai["results"][0]["probability"] == 0.45  # no "Yes": the first outcome's price
    assert len(ai["results"][0]["outcomes"]) == 3
    assert none["results"] == []
    assert gamma.hits(MARKETS) == 1  # one market list serves every query until it expires


@pytest.mark.parametrize("payload", [{}, {"query": "x"}, {"query": "!!"}, {"query": "bitcoin", "limit": "all"}])
async def test_bad_input_is_a_free_400(gateway_factory, gamma: UpstreamServer, payload: dict) -> None:
    async with gateway_factory(**overrides(gamma)) as gw:
        token = await gw.new_session(sats=50)
        await assert_not_charged(gw, await gw.call("prediction-market-search", payload, token=token), token, 50, 400)


@pytest.mark.parametrize(("mode", "status"), [("fail", 502), ("hang", 504)])
async def test_gamma_failure_is_refunded(gateway_factory, gamma: UpstreamServer, mode: str, status: int) -> None:
    gamma.fail(MARKETS, 500) if mode == "fail" else gamma.hang(MARKETS)
    async with gateway_factory(**overrides(gamma, 0.3)) as gw:
        token = await gw.new_session(sats=50)
        resp = await gw.call("prediction-market-search", {"query": "bitcoin"}, token=token)
        body = await assert_not_charged(gw, resp, token, 50, status, hidden=(gamma.url,))
    assert "Polymarket" in body["error"]
