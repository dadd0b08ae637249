"""translate through the gateway against a local LibreTranslate-compatible server."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from arkgate.catalog import translate
from arkgate.catalog._ai.libretranslate import Language, resolve
from tests.ai_backends.fixtures import ai_overrides, calls_of, ledger_kinds, running_backend
from tests.ai_backends.server import AiBackend
from tests.compat.arkapi_contract import assert_arkapi_contract

TEXT = "Hola, me llamo ArkAPI."


@pytest.fixture
def ai_backend() -> Iterator[AiBackend]:
    yield from running_backend()


def lt_requests(backend: AiBackend, path: str) -> list[Any]:
    return [r for r in backend.requests if r.path == f"/libretranslate/{path}"]


async def test_translation_with_offline_detection_costs_the_flat_rate(
    gateway_factory: Callable[..., Any], ai_backend: AiBackend
) -> None:
    async with gateway_factory(**ai_overrides(ai_backend, translate_api_key="lt-key-789")) as gw:
        token = await gw.new_session(sats=100)
        response = await gw.call("translate", {"text": TEXT, "target_language": "en"}, token=token)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["cost_sats"] == 3
        assert_arkapi_contract("translate", body["data"])
        assert body["data"] == {
            "text": TEXT,
            "translated_text": "Hello, my name is ArkAPI.",
            "target_language": "en",
            "source_language": "es",
            "detected_language": "es",
            "detected_confidence": body["data"]["detected_confidence"],
            "characters": len(TEXT),
        }
        [seen] = lt_requests(ai_backend, "translate")
        assert seen.body == {"q": TEXT, "source": "es", "target": "en", "format": "text", "api_key": "lt-key-789"}
        assert "lt-key-789" not in response.text
        [call] = await calls_of(gw.client, token)
        assert ledger_kinds(call) == [("debit", 3)]
        assert await gw.balance(token) == 97
        await gw.assert_ledger_consistent()


async def test_price_scales_with_started_thousands_of_characters(
    gateway_factory: Callable[..., Any], ai_backend: AiBackend
) -> None:
    async with gateway_factory(**ai_overrides(ai_backend)) as gw:
        token = await gw.new_session(sats=100)
        text = ("Hola amigo, " * 200)[:2001]  # 2,001 characters: three started thousands
        response = await gw.call(
            "translate", {"text": text, "target_language": "en", "source_language": "es"}, token=token
        )
        assert response.status_code == 200, response.text
        assert response.json()["cost_sats"] == 9
        assert await gw.balance(token) == 91


async def test_language_list_is_fetched_once_and_regional_codes_resolve(
    gateway_factory: Callable[..., Any], ai_backend: AiBackend
) -> None:
    async with gateway_factory(**ai_overrides(ai_backend)) as gw:
        token = await gw.new_session(sats=100)
        for target in ("pt-br", "zh"):
            response = await gw.call(
                "translate", {"text": "Good morning", "target_language": target, "source_language": "en"}, token=token
            )
            assert response.status_code == 200, response.text
        assert [r.body["target"] for r in lt_requests(ai_backend, "translate")] == ["pt-BR", "zh-Hans"]
        assert len(lt_requests(ai_backend, "languages")) == 1


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"text": "", "target_language": "en"}, "must not be empty"),
        ({"text": TEXT, "target_language": "xx"}, "unknown language code"),
        ({"text": TEXT, "target_language": "en", "source_language": "klingon"}, "unknown language code"),
        ({"text": "x" * (translate.MAX_TEXT_CHARS + 1), "target_language": "en"}, "at most"),
        # Valid codes the backend does not offer: refused before translating, refunded.
        ({"text": TEXT, "target_language": "sw"}, "not offered"),
        ({"text": "Guten Morgen", "target_language": "ja", "source_language": "de"}, "cannot translate from"),
    ],
)
async def test_rejected_input_costs_nothing(
    gateway_factory: Callable[..., Any], ai_backend: AiBackend, payload: dict[str, Any], message: str
) -> None:
    async with gateway_factory(**ai_overrides(ai_backend)) as gw:
        token = await gw.new_session(sats=100)
        response = await gw.call("translate", payload, token=token)
        assert response.status_code == 400, response.text
        assert response.json()["cost_sats"] == 0
        assert message in response.json()["error"]
        assert await gw.balance(token) == 100
        assert lt_requests(ai_backend, "translate") == []
        await gw.assert_ledger_consistent()


@pytest.mark.parametrize(
    ("route", "mode", "status"),
    [
        ("translate", "error", 502),
        ("translate", "malformed", 502),
        ("translate", "hang", 504),
        ("languages", "error", 502),
        ("languages", "malformed", 502),
    ],
)
async def test_backend_failure_refunds_everything(
    gateway_factory: Callable[..., Any], ai_backend: AiBackend, route: str, mode: str, status: int
) -> None:
    setattr(ai_backend, f"{route}_mode", mode)
    async with gateway_factory(**ai_overrides(ai_backend, translate_timeout_s=0.5)) as gw:
        token = await gw.new_session(sats=100)
        response = await gw.call("translate", {"text": TEXT, "target_language": "en"}, token=token)
        assert response.status_code == status, response.text
        assert response.json()["cost_sats"] == 0
        assert "translation backend" in response.json()["error"]
        assert ai_backend.url not in response.text
        assert await gw.balance(token) == 100
        [call] = await calls_of(gw.client, token)
        assert ledger_kinds(call) == [("debit", 3), ("refund", 3)]
        await gw.assert_ledger_consistent()


def test_resolve_prefers_exact_then_primary_subtag() -> None:
    langs = {code: Language(code=code, name=code, targets=None) for code in ("en", "pt", "pt-BR", "zh-Hans")}
    assert resolve("pt-BR", langs) == "pt-BR"
    assert resolve("pt-PT", langs) == "pt"
    assert resolve("zh", langs) == "zh-Hans"
    assert resolve("de", langs) is None


def test_rate_text_states_the_rate_and_maximum() -> None:
    from arkgate.settings import Settings

    settings = Settings()
    assert translate.rate_text(settings).startswith("3 sats per started 1,000 characters")
    assert translate.ENDPOINT.max_price_sats(settings) == 15
