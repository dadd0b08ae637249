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


async def test_paid_calls_are_served_by_plain_routes_with_the_same_answers(gateway):
    scope = {"type": "http", "method": "POST", "path": "/api/qr-generate", "root_path": ""}
    first = next(r for r in gateway.app.router.routes if r.matches(scope)[0] is Match.FULL)
    assert isinstance(first, Route) and not isinstance(first, APIRoute)
    assert "/api/qr-generate" in (await gateway.client.get("/openapi.json")).json()["paths"]
    token = await gateway.new_session(100)
    paid = await gateway.call("qr-generate", {"data": "x"}, token=token)
    assert paid.status_code == 200 and paid.json()["success"] is True and paid.json()["cost_sats"] == 2
    # FastAPI's route for a GET endpoint never answered HEAD; the plain route must not charge one either.
    head = await gateway.client.head("/api/btc-price", headers={"Authorization": f"Bearer {token}"})
    assert head.status_code == 405
    wrong = await gateway.client.get("/api/qr-generate", headers={"Authorization": f"Bearer {token}"})
    assert wrong.status_code == 405
    assert await gateway.balance(token) == 98
