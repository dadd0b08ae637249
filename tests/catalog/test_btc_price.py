"""btc-price against recorded CoinGecko / Kraken / mempool.space answers on loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from arkgate.catalog.btc_price import CURRENCIES, ENDPOINT
from arkgate.catalog.context import Services
from arkgate.errors import InputError, UpstreamError, UpstreamTimeoutError
from arkgate.settings import Settings
from tests.compat.arkapi_contract import assert_arkapi_contract
from tests.upstreams import UpstreamServer, upstream_server_fixture  # noqa: F401
from tests.upstreams.direct import call_direct

CG = "/api/v3/simple/price"
KRAKEN = "/0/public/Ticker"
MEMPOOL = "/api/v1/prices"


def price_settings(tmp_path: Path, server: UpstreamServer, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "data_dir": tmp_path,
        "payment_mode": "free",
        "coingecko_url": f"{server.url}/api/v3",
        "kraken_url": server.url,
        "mempool_url": server.url,
        "upstream_retry_backoff_s": 0,
        "btc_price_timeout_s": 5.0,
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def prices(upstream_server: UpstreamServer) -> UpstreamServer:
    upstream_server.serve_file(CG, "coingecko/simple_price.json")
    upstream_server.serve_file(KRAKEN, "kraken/ticker.json")
    upstream_server.serve_file(MEMPOOL, "mempool/prices.json")
    return upstream_server


@pytest.fixture
async def services(tmp_path: Path, prices: UpstreamServer) -> AsyncIterator[Services]:
    svc = Services(price_settings(tmp_path, prices))
    yield svc
    await svc.aclose()


async def test_all_ten_currencies_from_the_primary_provider(services: Services) -> None:
    data, _ = await call_direct(ENDPOINT, services.settings, services, {})
    assert_arkapi_contract("btc-price", data)
    assert data["currencies"] == list(CURRENCIES)
    assert data["btc_usd"] == "67187.34"
    assert data["btc_jpy"] == "10174563.12"
    assert data["rates"]["EUR"] == "62049.13"
    assert data["sats_per_unit"]["USD"] == 1488  # 1e8 / 67187.34
    assert data["source"] == "CoinGecko"
    assert data["updated_at"] == "2024-03-25T08:45:00Z"
    assert data["missing"] == []
    assert data["cached"] is False


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"currency": "cad"}, ["CAD"]),
        ({"currencies": "USD, eur,CAD"}, ["USD", "EUR", "CAD"]),
        ({"currency": "GBP", "currencies": "USD,GBP"}, ["GBP", "USD"]),
    ],
)
async def test_currency_selection(services: Services, query: dict[str, str], expected: list[str]) -> None:
    data, _ = await call_direct(ENDPOINT, services.settings, services, query)
    assert data["currencies"] == expected
    assert sorted(k for k in data if k.startswith("btc_")) == sorted(f"btc_{c.lower()}" for c in expected)


@pytest.mark.parametrize(
    "query", [{"currency": "XYZ"}, {"currencies": "USD,BTC"}, {"currency": "USD,EUR"}, {"currencies": " , "}]
)
async def test_unknown_currency_is_refused(services: Services, query: dict[str, str]) -> None:
    with pytest.raises(InputError, match="currenc"):
        await call_direct(ENDPOINT, services.settings, services, query)


async def test_second_call_is_served_from_cache(services: Services, prices: UpstreamServer) -> None:
    await call_direct(ENDPOINT, services.settings, services, {})
    data, _ = await call_direct(ENDPOINT, services.settings, services, {"currency": "EUR"})
    assert data["cached"] is True
    assert prices.hits(CG) == 1


async def test_fallback_provider_when_the_primary_fails(services: Services, prices: UpstreamServer) -> None:
    prices.fail(CG, 500)
    data, ctx = await call_direct(ENDPOINT, services.settings, services, {})
    assert data["source"] == "Kraken"
    assert data["btc_usd"] == "67191.20"
    assert data["missing"] == ["CNY", "HKD", "SGD"]
    assert "CoinGecko answered with HTTP 500" in ctx.notes[0]
    assert prices.hits(KRAKEN) == 1


async def test_kraken_error_envelope_falls_through_to_mempool(tmp_path: Path, prices: UpstreamServer) -> None:
    prices.fail(CG, 503)
    prices.serve_file(KRAKEN, "kraken/error.json")
    settings = price_settings(tmp_path, prices, btc_price_providers=["coingecko", "kraken", "mempool"])
    svc = Services(settings)
    data, _ = await call_direct(ENDPOINT, settings, svc, {"currency": "CHF"})
    await svc.aclose()
    assert data["source"] == "mempool.space"
    assert data["btc_chf"] == "37602.00"
    assert data["updated_at"] == "2023-12-22T13:40:11Z"


async def test_currency_the_fallback_lacks_is_an_upstream_error(services: Services, prices: UpstreamServer) -> None:
    prices.fail(CG, 500)
    with pytest.raises(UpstreamError, match="Kraken has no price for HKD"):
        await call_direct(ENDPOINT, services.settings, services, {"currency": "HKD"})


async def test_transient_failure_is_retried(services: Services, prices: UpstreamServer) -> None:
    prices.fail(CG, 502, times=1)
    data, _ = await call_direct(ENDPOINT, services.settings, services, {})
    assert data["source"] == "CoinGecko"
    assert prices.hits(CG) == 2
    assert prices.hits(KRAKEN) == 0


async def test_every_provider_failing_is_a_502_naming_them(services: Services, prices: UpstreamServer) -> None:
    prices.fail(CG, 500)
    prices.fail(KRAKEN, 500)
    with pytest.raises(UpstreamError) as info:
        await call_direct(ENDPOINT, services.settings, services, {})
    assert "CoinGecko" in info.value.message and "Kraken" in info.value.message
    assert "127.0.0.1" not in info.value.message


async def test_every_provider_hanging_is_a_504(tmp_path: Path, prices: UpstreamServer) -> None:
    prices.hang(CG)
    prices.hang(KRAKEN)
    settings = price_settings(tmp_path, prices, btc_price_timeout_s=0.3)
    svc = Services(settings)
    with pytest.raises(UpstreamTimeoutError):
        await call_direct(ENDPOINT, settings, svc, {})
    await svc.aclose()


async def test_api_key_is_sent_upstream_and_never_returned(tmp_path: Path, prices: UpstreamServer) -> None:
    settings = price_settings(tmp_path, prices, coingecko_api_key="CG-secret-key")
    svc = Services(settings)
    data, _ = await call_direct(ENDPOINT, settings, svc, {})
    await svc.aclose()
    assert prices.requests_to(CG)[0].headers["x-cg-demo-api-key"] == "CG-secret-key"
    assert "CG-secret-key" not in str(data)


# --- through the gateway ------------------------------------------------------------------
def gateway_overrides(server: UpstreamServer, timeout_s: float = 5.0) -> dict[str, object]:
    return {
        "coingecko_url": f"{server.url}/api/v3",
        "kraken_url": server.url,
        "mempool_url": server.url,
        "upstream_retry_backoff_s": 0,
        "btc_price_timeout_s": timeout_s,
    }


async def test_gateway_success_shape_and_cache(gateway_factory, prices: UpstreamServer) -> None:
    async with gateway_factory(**gateway_overrides(prices)) as gw:
        token = await gw.new_session(sats=100)
        first = await gw.call("btc-price", {"currencies": "USD,EUR"}, token=token)
        second = await gw.call("btc-price", {"currency": "USD"}, token=token)
        assert first.status_code == 200, first.text
        body = first.json()
        assert body["success"] is True
        assert body["cost_sats"] == 1
        assert body["endpoint"] == "/api/btc-price"
        assert body["data"]["btc_usd"] == "67187.34"
        assert body["data"]["btc_eur"] == "62049.13"
        assert second.json()["data"]["cached"] is True
        assert prices.hits(CG) == 1
        assert await gw.balance(token) == 98
        await gw.assert_ledger_consistent()


async def test_gateway_fallback_provider(gateway_factory, prices: UpstreamServer) -> None:
    prices.fail(CG, 500)
    async with gateway_factory(**gateway_overrides(prices)) as gw:
        token = await gw.new_session(sats=100)
        resp = await gw.call("btc-price", {}, token=token)
        assert resp.status_code == 200, resp.text
        assert resp.json()["data"]["source"] == "Kraken"


async def test_gateway_bad_currency_is_free(gateway_factory, prices: UpstreamServer) -> None:
    async with gateway_factory(**gateway_overrides(prices)) as gw:
        token = await gw.new_session(sats=100)
        resp = await gw.call("btc-price", {"currency": "DOGE"}, token=token)
        assert resp.status_code == 400
        assert resp.json()["cost_sats"] == 0
        assert "DOGE" in resp.json()["error"]
        assert await gw.balance(token) == 100
        assert prices.hits(CG) == 0


@pytest.mark.parametrize(("mode", "status"), [("fail", 502), ("hang", 504)])
async def test_gateway_upstream_failure_is_refunded(
    gateway_factory, prices: UpstreamServer, mode: str, status: int
) -> None:
    for path in (CG, KRAKEN):
        prices.fail(path, 500) if mode == "fail" else prices.hang(path)
    async with gateway_factory(**gateway_overrides(prices, 0.3 if mode == "hang" else 5.0)) as gw:
        token = await gw.new_session(sats=100)
        resp = await gw.call("btc-price", {}, token=token)
        assert resp.status_code == status, resp.text
        body = resp.json()
        assert body["success"] is False
        assert body["cost_sats"] == 0
        assert prices.url not in resp.text
        assert await gw.balance(token) == 100
        await gw.assert_ledger_consistent()
