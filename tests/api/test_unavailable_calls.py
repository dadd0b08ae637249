"""A call to an endpoint the gateway cannot serve is a 503 that costs nothing and asks for nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.ai_backends.fixtures import calls_of

UNCONFIGURED = [
    ("ai-chat", {"prompt": "hi"}, "ARKGATE_AI_BASE_URL"),
    ("ai-translate", {"text": "hello", "target_language": "de"}, "ARKGATE_AI_BASE_URL"),
    ("translate", {"text": "hello", "target_language": "de"}, "ARKGATE_TRANSLATE_BASE_URL"),
    ("image-generate", {"prompt": "a cat"}, "ARKGATE_IMAGE_BASE_URL"),
    ("screenshot", {"url": "https://example.com"}, "ARKGATE_CHROMIUM_PATH"),
]


@pytest.mark.parametrize(("endpoint_id", "payload", "setting"), UNCONFIGURED)
async def test_an_unconfigured_endpoint_answers_503_without_touching_the_balance(
    gateway_factory, tmp_path: Path, endpoint_id, payload, setting
) -> None:
    async with gateway_factory(chromium_path=tmp_path / "no-chromium") as gw:
        token = await gw.new_session(500)
        for body in (payload, {"nonsense": True}):  # checked before the input, too
            response = await gw.call(endpoint_id, body, token=token)
            assert response.status_code == 503, response.text
            answer = response.json()
            assert answer["success"] is False
            assert answer["error_code"] == "endpoint_unavailable"
            assert answer["code"] == 503
            assert answer["cost_sats"] == 0
            assert answer["endpoint"] == f"/api/{endpoint_id}"
            assert "not available on this gateway" in answer["error"] and setting in answer["error"]
        assert await gw.balance(token) == 500
        assert await calls_of(gw.client, token) == []  # no debit at all, not a debit and a refund
        await gw.assert_ledger_consistent()


async def test_no_payment_is_asked_for_an_unavailable_endpoint(gateway_factory) -> None:
    async with gateway_factory() as gw:
        response = await gw.call("ai-chat", {"prompt": "hi"})
        assert response.status_code == 503
        assert response.json()["error_code"] == "endpoint_unavailable"
        assert "www-authenticate" not in response.headers
        assert "payment" not in response.json()


async def test_configured_endpoints_are_still_charged(gateway_factory) -> None:
    async with gateway_factory() as gw:
        token = await gw.new_session(100)
        response = await gw.call("qr-generate", {"data": "hello"}, token=token)
        assert response.status_code == 200
        assert await gw.balance(token) == 98
