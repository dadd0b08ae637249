"""Gateway-level assertions shared by the security endpoints' tests."""

from __future__ import annotations

from typing import Any

from tests.compat.arkapi_contract import assert_arkapi_contract

# Bad domains every domain-taking endpoint must refuse with 400 at no cost.
BAD_DOMAINS: list[Any] = [
    "",
    "   ",
    "a" * 64 + ".test",  # label too long
    ("abcdefghi." * 26) + "test",  # name too long (> 253)
    "bücher.de",  # IDN must be sent as punycode
    "example.com.",  # trailing dot
    "192.0.2.1",  # IP where a domain is expected
    "[2001:db8::1]",
    "2130706433",
    "not a domain!",
    "https://example.com/",
    "-bad-.test",
    "localhost",
    12345,
    None,
]


async def assert_paid(gw: Any, token: str, endpoint_id: str, payload: dict[str, Any], price: int) -> dict[str, Any]:
    """Call, expect 200 and the price charged; return ``data``."""
    before = await gw.balance(token)
    response = await gw.call(endpoint_id, payload, token=token)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["success"] is True
    assert body["cost_sats"] == price
    assert await gw.balance(token) == before - price
    assert_arkapi_contract(endpoint_id, body["data"])
    return body["data"]  # type: ignore[no-any-return]


async def assert_free_failure(
    gw: Any, token: str, endpoint_id: str, payload: dict[str, Any], status: int, match: str | None = None
) -> dict[str, Any]:
    """Call, expect ``status`` with cost 0 and the balance unchanged; return the error body."""
    before = await gw.balance(token)
    response = await gw.call(endpoint_id, payload, token=token)
    assert response.status_code == status, response.text
    body = response.json()
    assert body["success"] is False
    assert body["cost_sats"] == 0
    if match is not None:
        assert match.lower() in body["error"].lower(), body
    assert await gw.balance(token) == before
    assert "Traceback" not in response.text
    return body  # type: ignore[no-any-return]


async def assert_rejects_all(
    gw: Any, token: str, endpoint_id: str, field: str, values: list[Any], extra: dict[str, Any] | None = None
) -> None:
    """Every value of ``field`` is a 400 at no cost (one gateway for the whole table keeps tests fast)."""
    for value in values:
        payload = {**(extra or {}), field: value}
        try:
            await assert_free_failure(gw, token, endpoint_id, payload, 400)
        except AssertionError as exc:
            raise AssertionError(f"{endpoint_id} accepted or mishandled {field}={value!r}: {exc}") from exc
