"""An arkgate plugin: one paid endpoint, registered through the ``register_endpoints`` hook."""

from __future__ import annotations

from pydantic import BaseModel, Field

from arkgate.catalog.context import CallContext
from arkgate.catalog.registry import Endpoint
from arkgate.hookspecs import hookimpl


class WordCountRequest(BaseModel):
    text: str = Field(..., min_length=1, max_length=10_000, description="Text whose words are counted.")


class WordCountResponse(BaseModel):
    words: int


async def count_words(request: WordCountRequest, ctx: CallContext) -> WordCountResponse:
    return WordCountResponse(words=len(request.text.split()))


WORD_COUNT = Endpoint(
    id="word-count",  # served at /api/word-count
    price_sats=2,
    category="utility",
    summary="Count the words of a text",
    description="Splits the text on whitespace and counts the parts.",
    request_model=WordCountRequest,
    response_model=WordCountResponse,
    handler=count_words,
    example={"text": "pay per call"},
)


@hookimpl
def register_endpoints() -> list[Endpoint]:
    return [WORD_COUNT]
