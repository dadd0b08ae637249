"""Assertions shared by endpoint tests that go through the gateway."""

from __future__ import annotations

from typing import Any

import httpx

from tests.compat.arkapi_contract import assert_arkapi_contract


def assert_paid(resp: httpx.Response, price_sats: int) -> dict[str, Any]:
    """A successful paid call: ArkAPI's envelope with the price charged; returns ``data``."""
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["success"] is True
    assert body["cost_sats"] == price_sats
    assert isinstance(body["balance_remaining"], int)
    assert_arkapi_contract(body["endpoint"].removeprefix("/api/"), body["data"])
    return body["data"]  # type: ignore[no-any-return]


async def assert_not_charged(
    gw: Any, resp: httpx.Response, token: str, balance_before: int, status: int, *, hidden: tuple[str, ...] = ()
) -> dict[str, Any]:
    """A failed call: ``status``, ``success: false``, nothing charged, nothing in ``hidden`` leaked."""
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert body["success"] is False
    assert body["cost_sats"] == 0
    assert body["error"]
    for secret in hidden:
        assert secret not in resp.text
    assert await gw.balance(token) == balance_before
    await gw.assert_ledger_consistent()
    return body  # type: ignore[no-any-return]
