"""GET /v1/balance is served by a plain Starlette route; the documented FastAPI route stays in the schema."""

from __future__ import annotations

from fastapi.routing import APIRoute
from starlette.routing import Match, Route


async def test_balance_is_served_without_fastapi_dependency_resolution(gateway):
    scope = {"type": "http", "method": "GET", "path": "/v1/balance", "root_path": ""}
    first = next(r for r in gateway.app.router.routes if r.matches(scope)[0] is Match.FULL)
    assert isinstance(first, Route) and not isinstance(first, APIRoute)
    assert "/v1/balance" in (await gateway.client.get("/openapi.json")).json()["paths"]


async def test_balance_answers_as_before(gateway):
    token = (await gateway.client.post("/v1/sessions", json={"amount_sats": 1000})).json()["token"]
    response = await gateway.client.get("/v1/balance", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["balance_sats"] == 1000 and body["funded"] is True
    assert set(body) >= {"balance_sats", "status", "expires_at", "expires_in", "ark_address", "funded"}
    missing = await gateway.client.get("/v1/balance")
    assert missing.status_code == 401 and missing.json()["success"] is False
    unknown = await gateway.client.get("/v1/balance", headers={"Authorization": "Bearer ak_nope"})
    assert unknown.status_code == 401 and unknown.json()["success"] is False
