"""weather against recorded Open-Meteo geocoding and forecast answers on loopback."""

from __future__ import annotations

import pytest

from tests.upstreams import UpstreamServer, upstream_server_fixture  # noqa: F401
from tests.upstreams.checks import assert_not_charged, assert_paid

GEO = "/v1/search"
FORECAST = "/v1/forecast"


@pytest.fixture
def meteo(upstream_server: UpstreamServer) -> UpstreamServer:
    upstream_server.serve_file(GEO, "open_meteo/search_none.json")
    upstream_server.serve_file(GEO, "open_meteo/search_berlin.json", query={"name": "Berlin"})
    upstream_server.serve_file(FORECAST, "open_meteo/forecast.json")
    return upstream_server


def overrides(server: UpstreamServer, timeout_s: float = 5.0) -> dict[str, object]:
    return {
        "open_meteo_geocoding_url": f"{server.url}/v1",
        "open_meteo_forecast_url": f"{server.url}/v1",
        "upstream_retry_backoff_s": 0,
        "weather_timeout_s": timeout_s,
    }


async def test_city_gives_current_conditions_and_seven_days(gateway_factory, meteo: UpstreamServer) -> None:
    async with gateway_factory(**overrides(meteo)) as gw:
        token = await gw.new_session(sats=50)
        data = assert_paid(await gw.call("weather", {"city": "Berlin"}, token=token), 3)
    assert data["location_name"] == "Berlin, DE"
    assert data["latitude"] == 52.5244
    assert data["timezone"] == "Europe/Berlin"
    current = data["current"]
    assert current["temperature_c"] == 2.4
    assert current["feels_like_c"] == -1.6
    assert current["condition"] == "Overcast"
    assert current["is_day"] is True
    assert len(data["daily_forecast"]) == 7
    assert data["daily_forecast"][1] == {
        "date": "2024-01-16",
        "condition": "Slight snowfall",
        "weather_code": 71,
        "temp_max_c": 1.2,
        "temp_min_c": -2.1,
        "precipitation_mm": 2.3,
        "precipitation_probability_pct": 65,
        "wind_speed_max_kmh": 22.3,
        "uv_index_max": 0.5,
        "sunrise": "2024-01-16T08:10",
        "sunset": "2024-01-16T16:24",
    }
    # the geocoded coordinates were passed on, rounded, with the documented variables
    sent = meteo.requests_to(FORECAST)[0].query
    assert (sent["latitude"], sent["longitude"], sent["timezone"]) == ("52.52", "13.41", "auto")
    assert "weather_code" in sent["current"] and "temperature_2m_max" in sent["daily"]


async def test_coordinates_skip_geocoding(gateway_factory, meteo: UpstreamServer) -> None:
    async with gateway_factory(**overrides(meteo)) as gw:
        token = await gw.new_session(sats=50)
        data = assert_paid(await gw.call("weather", {"lat": 52.52, "lon": 13.41, "days": 3}, token=token), 3)
    assert data["location_name"] == "52.5200, 13.4100"
    assert len(data["daily_forecast"]) == 3
    assert meteo.hits(GEO) == 0
    assert meteo.requests_to(FORECAST)[0].query["forecast_days"] == "3"


async def test_second_call_is_cached(gateway_factory, meteo: UpstreamServer) -> None:
    async with gateway_factory(**overrides(meteo)) as gw:
        token = await gw.new_session(sats=50)
        assert_paid(await gw.call("weather", {"city": "Berlin"}, token=token), 3)
        assert_paid(await gw.call("weather", {"city": "  berlin "}, token=token), 3)
    assert meteo.hits(GEO) == 1
    assert meteo.hits(FORECAST) == 1


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"lat": 10},
        {"lon": 10},
        {"lat": 91, "lon": 0},
        {"lat": 0, "lon": 181},
        {"city": "   "},
        {"city": "x" * 101},
        {"city": "Berlin", "days": 0},
        {"city": "Berlin", "days": 17},
    ],
)
async def test_bad_input_is_free(gateway_factory, meteo: UpstreamServer, payload: dict) -> None:
    async with gateway_factory(**overrides(meteo)) as gw:
        token = await gw.new_session(sats=50)
        await assert_not_charged(gw, await gw.call("weather", payload, token=token), token, 50, 400)
    assert meteo.hits(GEO) == meteo.hits(FORECAST) == 0


async def test_unknown_city_is_a_free_400(gateway_factory, meteo: UpstreamServer) -> None:
    async with gateway_factory(**overrides(meteo)) as gw:
        token = await gw.new_session(sats=50)
        body = await assert_not_charged(gw, await gw.call("weather", {"city": "Atlantis"}, token=token), token, 50, 400)
    assert "Atlantis" in body["error"]


@pytest.mark.parametrize(
    ("path", "mode", "status"), [(GEO, "fail", 502), (FORECAST, "fail", 502), (FORECAST, "hang", 504)]
)
async def test_upstream_failure_is_refunded(
    gateway_factory, meteo: UpstreamServer, path: str, mode: str, status: int
) -> None:
    meteo.fail(path, 500) if mode == "fail" else meteo.hang(path)
    async with gateway_factory(**overrides(meteo, 0.3)) as gw:
        token = await gw.new_session(sats=50)
        resp = await gw.call("weather", {"city": "Berlin"}, token=token)
        body = await assert_not_charged(gw, resp, token, 50, status, hidden=(meteo.url, "127.0.0.1"))
    assert "Open-Meteo" in body["error"]


async def test_transient_500_is_retried(gateway_factory, meteo: UpstreamServer) -> None:
    meteo.fail(FORECAST, 503, times=2)
    async with gateway_factory(**overrides(meteo)) as gw:
        token = await gw.new_session(sats=50)
        assert_paid(await gw.call("weather", {"lat": 1, "lon": 2}, token=token), 3)
    assert meteo.hits(FORECAST) == 3
