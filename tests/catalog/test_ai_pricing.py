"""Properties of the token pricing: integer sats, never under the minimum, and reservations that cover usage."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from arkgate.catalog import ai_chat, ai_translate
from arkgate.catalog._ai.pricing import TokenRates, max_input_tokens
from arkgate.settings import Settings

rates_strategy = st.builds(
    TokenRates,
    input_per_1k=st.integers(0, 10_000),
    output_per_1k=st.integers(0, 10_000),
    min_sats=st.integers(1, 1000),
)
tokens = st.integers(0, 200_000)


@given(rates_strategy, tokens, tokens)
def test_cost_is_an_integer_at_least_the_minimum_and_never_rounds_down(
    rates: TokenRates, prompt_tokens: int, completion_tokens: int
) -> None:
    cost = rates.cost_sats(prompt_tokens, completion_tokens)
    assert isinstance(cost, int)
    assert cost >= rates.min_sats
    assert cost * 1000 >= prompt_tokens * rates.input_per_1k + completion_tokens * rates.output_per_1k


@given(rates_strategy, tokens, tokens, st.integers(0, 1000), st.integers(0, 1000))
def test_cost_grows_with_usage(rates: TokenRates, p: int, c: int, more_p: int, more_c: int) -> None:
    assert rates.cost_sats(p + more_p, c + more_c) >= rates.cost_sats(p, c)


@given(st.text(min_size=1, max_size=3000))
def test_input_ceiling_covers_one_token_per_two_utf8_bytes(text: str) -> None:
    assert max_input_tokens([text]) * 2 >= len(text.encode())


chat_messages = st.lists(
    st.builds(
        lambda role, content: {"role": role, "content": content},
        st.sampled_from(["user", "assistant"]),
        st.text(min_size=1, max_size=300).filter(lambda s: s.strip()),
    ),
    min_size=1,
    max_size=ai_chat.MAX_MESSAGES,
).map(lambda msgs: [*msgs[:-1], {"role": "user", "content": msgs[-1]["content"]}])


@given(chat_messages, st.one_of(st.none(), st.integers(1, 100_000)))
def test_no_valid_chat_reserves_more_than_the_advertised_maximum(
    messages: list[dict[str, str]], max_tokens: int | None
) -> None:
    settings = Settings()
    request = ai_chat.ChatRequest.model_validate({"messages": messages, "max_tokens": max_tokens})
    assert ai_chat.ENDPOINT.price_for(request, settings) <= ai_chat.ENDPOINT.max_price_sats(settings)


@given(st.text(min_size=1, max_size=ai_translate.MAX_TEXT_CHARS).filter(lambda s: s.strip()))
def test_no_valid_translation_reserves_more_than_the_advertised_maximum(text: str) -> None:
    settings = Settings()
    request = ai_translate.AiTranslateRequest(text=text, target_language="en", style="polished")
    assert ai_translate.ENDPOINT.price_for(request, settings) <= ai_translate.ENDPOINT.max_price_sats(settings)


async def test_catalog_and_llms_txt_show_rate_maximum_and_refund(gateway_factory: Any) -> None:
    async with gateway_factory() as gateway:
        response = await gateway.client.get("/v1/catalog")
        entries = {e["id"]: e for e in response.json()["endpoints"]}
        settings = gateway.settings
        for endpoint_id, maximum in [("ai-chat", 98), ("ai-translate", 61), ("translate", 15), ("image-generate", 25)]:
            pricing = entries[endpoint_id]["pricing"]
            assert pricing["max_cost_sats"] == maximum
            assert "refunded" in pricing["rate"]
        assert entries["ai-chat"]["pricing"]["rate"] == ai_chat.rate_text(settings)
        llms = (await gateway.client.get("/llms.txt")).text
        assert ai_chat.rate_text(settings) in llms
