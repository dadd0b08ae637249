"""ai-translate through the gateway: metered like ai-chat, over the same chat backend."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from arkgate.catalog import ai_translate
from tests.ai_backends.fixtures import ai_overrides, calls_of, ledger_kinds, running_backend
from tests.ai_backends.server import AiBackend
from tests.compat.arkapi_contract import assert_arkapi_contract

TEXT = "Sous les etoiles, la riviere chante doucement."
# Usage of the recorded translation (tests/fixtures/ai/translate_completion.json).
PROMPT_TOKENS, COMPLETION_TOKENS = 87, 11


@pytest.fixture
def ai_backend() -> Iterator[AiBackend]:
    yield from running_backend()


def reservation(settings: Any, payload: dict[str, Any]) -> int:
    return ai_translate.ENDPOINT.price_for(ai_translate.AiTranslateRequest.model_validate(payload), settings)


async def test_translation_detects_the_source_and_charges_the_usage(
    gateway_factory: Callable[..., Any], ai_backend: AiBackend
) -> None:
    async with gateway_factory(**ai_overrides(ai_backend)) as gw:
        token = await gw.new_session(sats=500)
        payload = {"text": TEXT, "target_language": "en", "source_language": "auto", "style": "polished"}
        reserved = reservation(gw.settings, payload)
        expected = ai_translate.translate_rates(gw.settings).cost_sats(PROMPT_TOKENS, COMPLETION_TOKENS)
        assert expected == 10  # 87 x 50/1k + 11 x 500/1k = 9.85, rounded up

        response = await gw.call("ai-translate", payload, token=token)

        assert response.status_code == 200, response.text
        body = response.json()
        data = body["data"]
        assert_arkapi_contract("ai-translate", data)
        assert data["translated_text"] == "Under the stars, the river sings softly."
        assert data["source_language"] == data["detected_language"] == "fr"
        assert 0 < data["detected_confidence"] <= 100
        assert data["style"] == "polished"
        assert data["usage"]["total_tokens"] == 98
        assert body["cost_sats"] == expected
        assert data["billing"]["refunded_sats"] == reserved - expected
        [seen] = ai_backend.chat_requests()
        system, user = seen.body["messages"]
        assert user == {"role": "user", "content": TEXT}
        assert "'fr'" in system["content"] and "'en'" in system["content"]
        assert "publication-ready" in system["content"]
        assert seen.body["max_tokens"] == ai_translate.output_tokens(TEXT)
        [call] = await calls_of(gw.client, token)
        assert ledger_kinds(call) == [("debit", reserved), ("refund", reserved - expected)]
        assert await gw.balance(token) == 500 - expected
        await gw.assert_ledger_consistent()


async def test_given_source_language_is_used_without_detection(
    gateway_factory: Callable[..., Any], ai_backend: AiBackend
) -> None:
    async with gateway_factory(**ai_overrides(ai_backend, ai_translate_model="translator-7b")) as gw:
        token = await gw.new_session(sats=500)
        response = await gw.call(
            "ai-translate", {"text": TEXT, "target_language": "EN", "source_language": "fr"}, token=token
        )
        assert response.status_code == 200, response.text
        data = response.json()["data"]
        assert_arkapi_contract("ai-translate", data)
        assert data["source_language"] == "fr" and data["detected_language"] is None
        assert data["target_language"] == "en"
        assert ai_backend.chat_requests()[0].body["model"] == "translator-7b"


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"text": "", "target_language": "en"}, "must not be empty"),
        ({"text": TEXT, "target_language": "xx"}, "unknown language code"),
        ({"text": TEXT, "target_language": "english"}, "unknown language code"),
        ({"text": TEXT, "target_language": "en", "source_language": "zz"}, "unknown language code"),
        ({"text": TEXT, "target_language": "en", "style": "poetic"}, "style"),
        ({"text": "x" * (ai_translate.MAX_TEXT_CHARS + 1), "target_language": "en"}, "at most"),
        ({"target_language": "en"}, "text"),
        ({"text": TEXT, "target_language": "fr", "source_language": "fr"}, "same language"),
    ],
)
async def test_rejected_input_costs_nothing(
    gateway_factory: Callable[..., Any], ai_backend: AiBackend, payload: dict[str, Any], message: str
) -> None:
    async with gateway_factory(**ai_overrides(ai_backend)) as gw:
        token = await gw.new_session(sats=500)
        response = await gw.call("ai-translate", payload, token=token)
        assert response.status_code == 400, response.text
        assert response.json()["cost_sats"] == 0
        assert message in response.json()["error"]
        assert await gw.balance(token) == 500
        assert ai_backend.chat_requests() == []
        await gw.assert_ledger_consistent()


@pytest.mark.parametrize(("mode", "status"), [("error", 502), ("malformed", 502), ("hang", 504)])
async def test_backend_failure_refunds_everything(
    gateway_factory: Callable[..., Any], ai_backend: AiBackend, mode: str, status: int
) -> None:
    ai_backend.chat_mode = mode
    async with gateway_factory(**ai_overrides(ai_backend, ai_timeout_s=0.5)) as gw:
        token = await gw.new_session(sats=500)
        payload = {"text": TEXT, "target_language": "en"}
        response = await gw.call("ai-translate", payload, token=token)
        assert response.status_code == status, response.text
        assert response.json()["cost_sats"] == 0
        assert await gw.balance(token) == 500
        [call] = await calls_of(gw.client, token)
        reserved = reservation(gw.settings, payload)
        assert ledger_kinds(call) == [("debit", reserved), ("refund", reserved)]
        await gw.assert_ledger_consistent()


def test_default_maximum_covers_arkapis_5000_characters() -> None:
    from arkgate.settings import Settings

    settings = Settings()
    assert ai_translate.MAX_TEXT_CHARS == 5000  # ArkAPI's limit
    assert ai_translate.ENDPOINT.max_price_sats(settings) == 61
    assert "Up to 61 sats are reserved" in ai_translate.rate_text(settings)
