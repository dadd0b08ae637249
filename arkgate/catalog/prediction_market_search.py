"""prediction-market-search: open Polymarket markets matching a query.

Gamma's ``/markets`` listing has no text search, so the open markets (the
``polymarket_scan_limit`` busiest, by volume) are fetched once per
``polymarket_cache_ttl_s`` and matched locally: every query word must appear in
the market's question, its event's title or its slug; matches are ranked by
volume.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, Field, field_validator

from arkgate.catalog._lenient import clamp_limit, limit_description
from arkgate.catalog._upstream import RetryPolicy, cache_factory, get_json, parse_iso, upstream_errors
from arkgate.catalog.context import CallContext
from arkgate.catalog.registry import Endpoint

MAX_LIMIT = 20
PLATFORM = "Polymarket"
MARKET_URL = "https://polymarket.com/event/"
_WORD = re.compile(r"[a-z0-9$%.]+")


class MarketSearchRequest(BaseModel):
    query: str = Field(
        ..., min_length=2, max_length=200, description="Words to look for, e.g. 'bitcoin etf'.", examples=["bitcoin"]
    )
    limit: Annotated[int, clamp_limit(5, MAX_LIMIT)] = Field(
        5, ge=1, le=MAX_LIMIT, description=limit_description("markets", 5, MAX_LIMIT)
    )

    @field_validator("query")
    @classmethod
    def _query(cls, value: str) -> str:
        value = " ".join(value.split())
        if not _WORD.findall(value.lower()):
            raise ValueError("query must contain at least one letter or digit")
        return value


class Outcome(BaseModel):
    name: str
    price: float | None = Field(default=None, description="Last price, i.e. the implied probability (0-1).")


class Market(BaseModel):
    market_id: str
    event_id: str | None
    title: str = Field(..., description="The market's question.")
    event_title: str | None
    platform: str = PLATFORM
    status: str = "open"
    outcomes: list[Outcome]
    probability: float | None = Field(default=None, description="Price of 'Yes' (or of the first outcome).")
    volume_usd: float | None
    liquidity_usd: float | None
    close_time: datetime | None
    url: str


class MarketSearchResponse(BaseModel):
    query: str
    platform: str = PLATFORM
    results: list[Market]
    scanned: int = Field(..., description="Open markets searched.")


_cache = cache_factory(max_entries=2)


def _json_list(value: Any) -> list[Any]:
    # Gamma encodes outcomes and prices as JSON strings inside the JSON object.
    if isinstance(value, list):
        return value
    if isinstance(value, str) and value.strip():
        decoded = json.loads(value)
        return decoded if isinstance(decoded, list) else []
    return []


def _number(value: Any) -> float | None:
    try:
        return float(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def _normalise(raw: dict[str, Any]) -> Market | None:
    if raw.get("closed") or raw.get("active") is False or raw.get("archived"):
        return None
    question = str(raw.get("question") or "").strip()
    if not question or raw.get("id") is None:
        return None
    names = [str(n) for n in _json_list(raw.get("outcomes"))]
    prices = [_number(p) for p in _json_list(raw.get("outcomePrices"))]
    outcomes = [Outcome(name=n, price=prices[i] if i < len(prices) else None) for i, n in enumerate(names)]
    yes = next((o.price for o in outcomes if o.name.lower() == "yes"), None)
    events = raw.get("events") or []
    event = events[0] if events and isinstance(events[0], dict) else {}
    slug = event.get("slug") or raw.get("slug") or ""
    return Market(
        market_id=str(raw["id"]),
        event_id=str(event["id"]) if event.get("id") is not None else None,
        title=question,
        event_title=event.get("title"),
        outcomes=outcomes,
        probability=yes if yes is not None else (outcomes[0].price if outcomes else None),
        volume_usd=_number(raw.get("volumeNum", raw.get("volume"))),
        liquidity_usd=_number(raw.get("liquidityNum", raw.get("liquidity"))),
        close_time=parse_iso(raw.get("endDate") or raw.get("endDateIso")),
        url=MARKET_URL + str(slug),
    )


async def _open_markets(ctx: CallContext) -> list[tuple[str, Market]]:
    s = ctx.settings

    async def load() -> list[tuple[str, Market]]:
        _, body = await get_json(
            ctx.services.http,
            PLATFORM,
            f"{s.polymarket_gamma_url.rstrip('/')}/markets",
            params={
                "active": "true",
                "closed": "false",
                "limit": s.polymarket_scan_limit,
                "order": "volumeNum",
                "ascending": "false",
            },
            timeout_s=s.polymarket_timeout_s,
            retry=RetryPolicy.from_settings(s),
        )
        with upstream_errors(PLATFORM):
            if not isinstance(body, list):
                raise ValueError("expected a list of markets")
            found: list[tuple[str, Market]] = []
            for raw in body:
                market = _normalise(raw)
                if market is not None:
                    haystack = " ".join([market.title, market.event_title or "", str(raw.get("slug") or "")])
                    found.append((haystack.lower().replace("-", " "), market))
            return found

    markets: list[tuple[str, Market]] = await ctx.services.get(_cache).get_or_load(
        "open", load, s.polymarket_cache_ttl_s
    )
    return markets


async def prediction_market_search(request: MarketSearchRequest, ctx: CallContext) -> MarketSearchResponse:
    markets = await _open_markets(ctx)
    words = list(dict.fromkeys(_WORD.findall(request.query.lower())))
    hits = [m for text, m in markets if all(w in text for w in words)]
    hits.sort(key=lambda m: m.volume_usd or 0.0, reverse=True)
    return MarketSearchResponse(query=request.query, results=hits[: request.limit], scanned=len(markets))


ENDPOINT = Endpoint(
    id="prediction-market-search",
    price_sats=4,
    category="utility",
    summary="Search open prediction markets",
    description=(
        "Finds open Polymarket markets whose question or event mentions every word of the query, "
        "busiest first, each with its outcomes and prices (implied probabilities), volume, "
        "liquidity, close time and link. The market list is refreshed every few minutes."
    ),
    request_model=MarketSearchRequest,
    response_model=MarketSearchResponse,
    handler=prediction_market_search,
    timeout_s=25.0,
    example={"query": "bitcoin etf", "limit": 5},
)
