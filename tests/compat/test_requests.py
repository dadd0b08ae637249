"""Requests ArkAPI's server accepts are accepted here too (issue 19), each with its own case."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.ai_backends.fixtures import ai_overrides, running_backend
from tests.ai_backends.server import AiBackend
from tests.catalog.test_cve_search import NVD, QUERY, nvd, overrides  # noqa: F401  (fixture reused)
from tests.upstreams import UpstreamServer, upstream_server_fixture  # noqa: F401
from tests.upstreams.checks import assert_not_charged, assert_paid

TEXT = "Sous les etoiles, la riviere chante doucement."


@pytest.fixture
def ai_backend() -> Iterator[AiBackend]:
    yield from running_backend()


def sent_target(backend: AiBackend) -> str:
    """The target language the gateway asked the AI backend for, from its system prompt."""
    prompt = json.dumps(backend.chat_requests()[-1].body["messages"])
    return prompt.split("with code '")[-1].split("'")[0]


@pytest.mark.parametrize("payload", [{}, {"target_language": ""}, {"target_language": None}])
async def test_ai_translate_target_language_defaults_to_en(gateway_factory, ai_backend: AiBackend, payload) -> None:
    async with gateway_factory(**ai_overrides(ai_backend)) as gw:
        token = await gw.new_session(sats=500)
        body = {"text": TEXT, **{k: v for k, v in payload.items() if v is not None}}
        response = await gw.call("ai-translate", body, token=token)
    assert response.status_code == 200, response.text
    assert response.json()["data"]["target_language"] == "en"
    assert sent_target(ai_backend) == "en"


async def test_translate_target_language_defaults_to_en(gateway_factory, ai_backend: AiBackend) -> None:
    async with gateway_factory(**ai_overrides(ai_backend)) as gw:
        token = await gw.new_session(sats=500)
        response = await gw.call("translate", {"text": TEXT}, token=token)
    assert response.status_code == 200, response.text
    assert response.json()["data"]["target_language"] == "en"
    [sent] = [r for r in ai_backend.requests if r.path.endswith("/translate")]
    assert sent.body["target"] == "en"


@pytest.mark.parametrize("style", ["POLISHED", " Literal ", "natural", ""])
async def test_ai_translate_style_is_case_insensitive(gateway_factory, ai_backend: AiBackend, style: str) -> None:
    async with gateway_factory(**ai_overrides(ai_backend)) as gw:
        token = await gw.new_session(sats=500)
        response = await gw.call("ai-translate", {"text": TEXT, "style": style}, token=token)
    assert response.status_code == 200, response.text
    assert response.json()["data"]["style"] == (style.strip().lower() or "natural")


async def test_ai_translate_takes_5000_characters_and_refuses_5001_for_free(
    gateway_factory, ai_backend: AiBackend
) -> None:
    async with gateway_factory(**ai_overrides(ai_backend)) as gw:
        token = await gw.new_session(sats=9000)  # the test backend's prices are high on purpose
        accepted = await gw.call("ai-translate", {"text": "mot " * 1250}, token=token)
        assert accepted.status_code == 200, accepted.text
        before = await gw.balance(token)
        refused = await gw.call("ai-translate", {"text": "x" * 5001}, token=token)
        await assert_not_charged(gw, refused, token, before, 400)
        assert "5000" in refused.json()["error"]


@pytest.mark.parametrize(("limit", "sent"), [(0, "5"), (-1, "5"), (None, "5"), (3, "3"), (21, "20"), (1000, "20")])
async def test_limit_out_of_range_is_clamped_as_arkapi_does(gateway_factory, nvd: UpstreamServer, limit, sent) -> None:  # noqa: F811
    async with gateway_factory(**overrides(nvd)) as gw:
        token = await gw.new_session(sats=50)
        assert_paid(await gw.call("cve-search", {"query": QUERY, "limit": limit}, token=token), 4)
    assert nvd.requests_to(NVD)[0].query["resultsPerPage"] == sent


@pytest.mark.parametrize("content_type", [None, "application/x-www-form-urlencoded", "text/plain"])
async def test_a_json_body_without_the_json_content_type_is_accepted(gateway, content_type: str | None) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    created = await gateway.client.post("/v1/sessions", content=b'{"amount_sats": 300}', headers=headers)
    assert created.status_code == 201, created.text
    token = created.json()["token"]
    assert created.json()["balance_sats"] == 300
    topped = await gateway.client.post(
        "/v1/sessions/topup",
        content=b'{"amount_sats": 200}',
        headers={**headers, "Authorization": f"Bearer {token}"},
    )
    assert topped.status_code == 200, topped.text
    paid = await gateway.client.post(
        "/api/qr-generate", content=b'{"data": "hi"}', headers={**headers, "Authorization": f"Bearer {token}"}
    )
    assert assert_paid(paid, 2)["data"] == "hi"


async def test_free_mode_session_without_a_body_gets_the_free_balance(gateway_factory) -> None:
    async with gateway_factory(free_balance_sats=777) as gw:
        response = await gw.client.post("/v1/sessions")
        assert response.status_code == 201, response.text
        assert response.json()["balance_sats"] == 777
        assert await gw.balance(response.json()["token"]) == 777
        await gw.assert_ledger_consistent()


async def test_barkd_mode_session_without_a_body_is_a_400_naming_amount_sats(gateway_factory, simulator) -> None:
    async with gateway_factory(payment_mode="barkd", barkd_url=simulator.url, barkd_token=simulator.token) as gw:
        for request in ({}, {"content": b""}, {"content": b"{}"}):
            response = await gw.client.post("/v1/sessions", **request)
            assert response.status_code == 400, response.text
            body = response.json()
            assert body["success"] is False and "amount_sats" in body["error"]


@pytest.mark.parametrize("body", [b"nope", b"[1, 2]", b'"500"'])
async def test_a_body_that_is_not_a_json_object_is_a_clear_400(gateway, body: bytes) -> None:
    response = await gateway.client.post("/v1/sessions", content=body)
    assert response.status_code == 400
    assert "JSON" in response.json()["error"]
