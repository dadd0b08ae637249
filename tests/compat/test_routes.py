"""ArkAPI's routes and headers: CORS, X-RateLimit-*, /v1/stats, old page paths, arkapi.json categories."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from arkgate.api.manifests import ARKAPI_CATEGORIES
from tests.compat.arkapi_contract import STATS, violations
from tests.upstreams.checks import assert_paid

ORIGIN = "http://127.0.0.1:5555"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/api/qr-generate"),
        ("POST", "/v1/sessions"),
        ("GET", "/v1/balance"),
        ("GET", "/openapi.json"),
        ("GET", "/.well-known/arkapi.json"),
        ("GET", "/llms.txt"),
    ],
)
async def test_preflight_is_answered_for_the_public_api(gateway, method: str, path: str) -> None:
    response = await gateway.client.options(
        path,
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )
    assert response.status_code == 200, response.text
    assert response.headers["access-control-allow-origin"] == "*"
    assert method in response.headers["access-control-allow-methods"]
    assert "authorization" in response.headers["access-control-allow-headers"].lower()
    assert "access-control-allow-credentials" not in response.headers  # never with "*"


async def test_cross_origin_responses_carry_the_origin_header_and_expose_rate_limits(gateway) -> None:
    created = await gateway.client.post("/v1/sessions", json={"amount_sats": 50}, headers={"Origin": ORIGIN})
    assert created.headers["access-control-allow-origin"] == "*"
    assert "access-control-allow-credentials" not in created.headers
    token = created.json()["token"]
    paid = await gateway.call("qr-generate", {"data": "x"}, token=token, headers={"Origin": ORIGIN})
    assert paid.headers["access-control-allow-origin"] == "*"
    assert "x-ratelimit-remaining" in paid.headers["access-control-expose-headers"].lower()


async def test_operator_pages_get_no_cors_headers(gateway) -> None:
    for path in ("/metrics", "/admin/", "/health"):
        response = await gateway.client.get(path, headers={"Origin": ORIGIN})
        assert "access-control-allow-origin" not in response.headers, path


async def test_the_allowed_origin_is_configurable_and_others_are_refused(gateway_factory) -> None:
    async with gateway_factory(cors_allow_origins="https://app.example, http://127.0.0.1:5555/") as gw:
        allowed = await gw.client.get("/v1/catalog", headers={"Origin": ORIGIN})
        assert allowed.headers["access-control-allow-origin"] == ORIGIN
        other = await gw.client.get("/v1/catalog", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in other.headers
        preflight = await gw.client.options(
            "/v1/sessions", headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}
        )
        assert preflight.status_code == 400
    async with gateway_factory(cors_allow_origins="") as gw:
        response = await gw.client.get("/v1/catalog", headers={"Origin": ORIGIN})
        assert "access-control-allow-origin" not in response.headers


async def test_rate_limited_routes_send_x_ratelimit_headers(gateway_factory) -> None:
    async with gateway_factory(rate_limits="on", rate_limit_sessions="3/minute", rate_limit_calls="5/minute") as gw:
        created = await gw.client.post("/v1/sessions", json={"amount_sats": 50})
        assert created.headers["x-ratelimit-limit"] == "3"
        assert created.headers["x-ratelimit-remaining"] == "2"
        datetime.fromisoformat(created.headers["x-ratelimit-reset"].replace("Z", "+00:00"))  # RFC 3339, as ArkAPI
        token = created.json()["token"]
        remaining = []
        for _ in range(5):
            paid = await gw.call("qr-generate", {"data": "x"}, token=token)
            assert_paid(paid, 2)
            assert paid.headers["x-ratelimit-limit"] == "5"
            remaining.append(int(paid.headers["x-ratelimit-remaining"]))
        assert remaining == [4, 3, 2, 1, 0]
        refused = await gw.call("qr-generate", {"data": "x"}, token=token)
        assert refused.status_code == 429
        assert refused.headers["x-ratelimit-remaining"] == "0" and refused.headers["retry-after"]
        unlimited = await gw.client.get("/v1/catalog")
        assert "x-ratelimit-limit" not in unlimited.headers


@pytest.mark.parametrize(
    ("old", "new"), [("/dashboard/", "/session"), ("/dashboard", "/session"), ("/topoff/", "/topup")]
)
async def test_arkapi_page_paths_redirect(gateway, old: str, new: str) -> None:
    response = await gateway.client.get(old + "?token=ak_x")
    assert response.status_code == 301
    assert response.headers["location"] == new + "?token=ak_x"


async def test_stats_have_arkapis_fields_and_count_todays_calls(gateway) -> None:
    empty = (await gateway.client.get("/v1/stats")).json()
    assert violations(empty, STATS) == []
    assert (empty["calls_today"], empty["sats_today"], empty["active_sessions"]) == (0, 0, 0)
    assert set(empty["endpoint_breakdown"]) == {e.id for e in gateway.runtime.catalog}
    assert len(empty["hour_labels"]) == len(empty["calls_24h"]) == len(empty["sats_24h"]) == 24
    token = await gateway.new_session(50)
    for _ in range(2):
        assert_paid(await gateway.call("qr-generate", {"data": "x"}, token=token), 2)
    bad = await gateway.call("qr-generate", {"data": ""}, token=token)
    assert bad.status_code == 400  # refused before any charge: not a call
    stats = (await gateway.client.get("/v1/stats")).json()
    assert violations(stats, STATS) == []
    assert (stats["calls_today"], stats["sats_today"], stats["active_sessions"]) == (2, 4, 1)
    assert stats["endpoint_breakdown"]["qr-generate"] == 2
    assert stats["calls_24h"][-1] == 2 and stats["sats_24h"][-1] == 4
    assert stats["hour_labels"][-1] == datetime.now(UTC).strftime("%H:00")


async def test_arkapi_manifest_uses_arkapis_categories_and_arkgates_keeps_its_own(gateway) -> None:
    arkapi = (await gateway.client.get("/.well-known/arkapi.json")).json()
    arkgate = (await gateway.client.get("/.well-known/arkgate.json")).json()
    by_id = {tool["id"]: tool["category"] for tool in arkapi["tools"]}
    for endpoint_id, category in ARKAPI_CATEGORIES.items():
        assert by_id[endpoint_id] == category
    assert by_id["btc-price"] == "bitcoin" and by_id["url-to-markdown"] == "content"
    own = {tool["id"]: tool["category"] for tool in arkgate["tools"]}
    assert own == {e.id: e.category for e in gateway.runtime.catalog}


async def test_a_request_without_origin_gets_vary_origin_on_public_paths_only(gateway) -> None:
    # As Starlette's CORSMiddleware answers it: caches must not serve this reply to a cross-origin page.
    token = await gateway.new_session(50)
    paid = await gateway.call("qr-generate", {"data": "x"}, token=token)
    assert paid.status_code == 200 and paid.headers.get_list("vary") == ["Origin"]
    assert "access-control-allow-origin" not in paid.headers
    assert (await gateway.client.get("/v1/catalog")).headers.get_list("vary") == ["Origin"]
    assert "vary" not in (await gateway.client.get("/health")).headers
