"""Admin auth: disabled without a token (404 everywhere), 401 for missing or wrong tokens, no secret leaks."""

from __future__ import annotations

from pathlib import Path

import pytest

import arkgate.admin
from tests.admin.conftest import ADMIN_TOKEN, admin_headers

ADMIN_PATHS = [
    ("GET", "/admin"),
    ("GET", "/admin/"),
    ("GET", "/admin/static/app.js"),
    ("GET", "/admin/static/vendor/chart-4.6.1.umd.min.js"),
    ("GET", "/admin/api/overview"),
    ("GET", "/admin/api/health"),
    ("GET", "/admin/api/exits"),
    ("POST", "/admin/api/sweep"),
    ("POST", "/admin/api/exits/start"),
    ("GET", "/admin/api/anything/else"),
]
API_PATHS = [(m, p) for m, p in ADMIN_PATHS if p.startswith("/admin/api/") and "anything" not in p]


@pytest.mark.parametrize("with_header", [False, True])
async def test_everything_under_admin_is_404_without_an_admin_token(gateway_factory, with_header):
    async with gateway_factory() as gw:  # admin_token unset
        for method, path in ADMIN_PATHS:
            headers = admin_headers() if with_header else {}
            response = await gw.client.request(method, path, headers=headers, json={} if method == "POST" else None)
            assert response.status_code == 404, (method, path, response.text)
            assert response.json()["success"] is False


async def test_missing_wrong_or_malformed_tokens_get_401_in_the_error_envelope(admin_gateway_factory):
    async with admin_gateway_factory() as gw:
        bad_headers = [
            {},
            {"Authorization": "Bearer wrong-token"},
            {"Authorization": f"Bearer {ADMIN_TOKEN}x"},
            {"Authorization": f"Bearer {ADMIN_TOKEN[:-1]}"},
            {"Authorization": f"Basic {ADMIN_TOKEN}"},
            {"Authorization": ADMIN_TOKEN},
            {"Authorization": "Bearer "},
        ]
        for method, path in API_PATHS:
            for headers in bad_headers:
                response = await gw.client.request(method, path, headers=headers, json={} if method == "POST" else None)
                assert response.status_code == 401, (method, path, headers, response.text)
                body = response.json()
                assert body["success"] is False
                assert body["code"] == 401
                assert body["cost_sats"] == 0
                assert response.headers["www-authenticate"].startswith("Bearer")
                assert ADMIN_TOKEN not in response.text
        # A session token is no admin token.
        session_token = await gw.new_session(100)
        response = await gw.client.get("/admin/api/overview", headers={"Authorization": f"Bearer {session_token}"})
        assert response.status_code == 401


async def test_the_right_token_opens_the_api_and_the_page_holds_no_data(admin_gateway_factory):
    async with admin_gateway_factory() as gw:
        ok = await gw.client.get("/admin/api/overview", headers=admin_headers())
        assert ok.status_code == 200
        assert ok.headers["cache-control"] == "no-store"
        page = await gw.client.get("/admin")
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert "default-src 'none'" in page.headers["content-security-policy"]
        assert page.headers["x-frame-options"] == "DENY"
        assert 'id="token"' in page.text
        assert ADMIN_TOKEN not in page.text
        script = await gw.client.get("/admin/static/app.js")
        assert script.status_code == 200
        assert script.headers["content-type"].startswith("text/javascript")
        for path in ("/admin/static/../routes.py", "/admin/static/%2e%2e/routes.py", "/admin/static/missing.js"):
            assert (await gw.client.get(path)).status_code == 404
        # Admin routes are not advertised in the public OpenAPI document.
        openapi = (await gw.client.get("/openapi.json")).json()
        assert not [p for p in openapi["paths"] if p.startswith("/admin")]


async def test_no_admin_response_contains_the_barkd_token(operator_gateway_factory, simulator):
    async with operator_gateway_factory() as gw:
        secret = simulator.token
        responses = []
        for path in ("overview", "health", "exits", "exits/estimate", "activity", "log", "alerts"):
            responses.append(await gw.client.get(f"/admin/api/{path}", headers=admin_headers()))
        responses.append(await gw.client.post("/admin/api/refresh", json={}, headers=admin_headers()))
        responses.append(await gw.client.post("/admin/api/sweep", json={"dry_run": True}, headers=admin_headers()))
        responses.append(
            await gw.client.post(
                "/admin/api/sweep", json={"destination": "not-an-address", "dry_run": True}, headers=admin_headers()
            )
        )
        responses.append(await gw.client.post("/admin/api/exits/claim", json={}, headers=admin_headers()))
        responses.append(await gw.client.get("/admin/api/exits/ab:0", headers=admin_headers()))
        simulator.stop()  # barkd unreachable: the errors must not leak it either
        try:
            responses.append(await gw.client.get("/admin/api/overview", headers=admin_headers()))
            responses.append(await gw.client.get("/admin/api/health", headers=admin_headers()))
            responses.append(await gw.client.post("/admin/api/refresh", json={}, headers=admin_headers()))
        finally:
            simulator.start()
        for response in responses:
            assert response.status_code != 500, response.text
            assert secret not in response.text
            assert "Authorization" not in response.text


def test_the_console_never_asks_barkd_for_the_seed():
    source = "".join(p.read_text() for p in Path(arkgate.admin.__file__).parent.rglob("*.py"))
    assert "mnemonic" not in source
