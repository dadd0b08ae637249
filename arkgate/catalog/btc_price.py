"""btc-price: Bitcoin spot price in ten major fiat currencies.

Providers are tried in the order of ``btc_price_providers`` (CoinGecko, Kraken,
mempool.space); the first that answers wins and its quote is cached for
``btc_price_cache_ttl_s``. Fallback providers may cover fewer currencies
(Kraken and mempool.space have no CNY, HKD or SGD); those are listed as missing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from arkgate.catalog._upstream import RetryPolicy, cache_factory, get_json, now_utc, upstream_errors, utc_from_ts
from arkgate.catalog.context import CallContext
from arkgate.catalog.registry import Endpoint
from arkgate.errors import ArkgateError, UpstreamError, UpstreamTimeoutError

CURRENCIES = ("USD", "EUR", "GBP", "CAD", "JPY", "AUD", "CHF", "CNY", "HKD", "SGD")
SATS_PER_BTC = 100_000_000


def _parse_codes(value: str, field_name: str) -> list[str]:
    codes = [part.strip().upper() for part in value.split(",") if part.strip()]
    if not codes:
        raise ValueError(f"{field_name} must name at least one currency code")
    unknown = [c for c in codes if c not in CURRENCIES]
    if unknown:
        raise ValueError(f"unsupported currency {', '.join(unknown)}; supported: {', '.join(CURRENCIES)}")
    return list(dict.fromkeys(codes))


class BtcPriceRequest(BaseModel):
    currency: str | None = Field(default=None, max_length=8, description="One fiat currency code, e.g. CAD.")
    currencies: str | None = Field(
        None, max_length=64, description="Comma-separated fiat currency codes, e.g. USD,EUR,CAD."
    )

    @field_validator("currency")
    @classmethod
    def _one_code(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        codes = _parse_codes(value, "currency")
        if len(codes) != 1:
            raise ValueError("currency takes one code; use currencies for a list")
        return codes[0]

    @field_validator("currencies")
    @classmethod
    def _codes(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        return ",".join(_parse_codes(value, "currencies"))

    def wanted(self) -> list[str]:
        codes: list[str] = []
        if self.currency:
            codes.append(self.currency)
        if self.currencies:
            codes.extend(self.currencies.split(","))
        return list(dict.fromkeys(codes)) or list(CURRENCIES)


class BtcPriceResponse(BaseModel):
    """ArkAPI's flat ``btc_<code>`` strings, plus the same rates as a map and in sats per unit."""

    model_config = ConfigDict(extra="allow")

    rates: dict[str, str] = Field(..., description="Price of 1 BTC per currency code, as a decimal string.")
    sats_per_unit: dict[str, int] = Field(..., description="Satoshis bought by one unit of each currency.")
    currencies: list[str]
    missing: list[str] = Field(default_factory=list, description="Asked-for currencies the source lacks.")
    source: str = Field(..., description="Provider that supplied the quote.")
    updated_at: datetime = Field(..., description="When the provider last updated the quote (UTC).")
    fetched_at: datetime = Field(..., description="When arkgate fetched it (UTC).")
    cached: bool = Field(..., description="True when served from arkgate's cache.")


@dataclass(frozen=True, kw_only=True)
class Quote:
    source: str
    prices: dict[str, Decimal]
    updated_at: datetime
    fetched_at: datetime


Fetcher = Callable[[CallContext], Awaitable[Quote]]


def _decimal(value: Any) -> Decimal:
    try:
        number = Decimal(str(value))
    except InvalidOperation as exc:
        raise ValueError("price is not a number") from exc
    if not number.is_finite() or number <= 0:
        raise ValueError("price is not positive")
    return number


async def _coingecko(ctx: CallContext) -> Quote:
    s = ctx.settings
    headers = {}
    if s.coingecko_api_key is not None:
        headers["x-cg-demo-api-key"] = s.coingecko_api_key.get_secret_value()
    _, body = await get_json(
        ctx.services.http,
        "CoinGecko",
        f"{s.coingecko_url.rstrip('/')}/simple/price",
        params={
            "ids": "bitcoin",
            "vs_currencies": ",".join(c.lower() for c in CURRENCIES),
            "include_last_updated_at": "true",
        },
        headers=headers,
        timeout_s=s.btc_price_timeout_s,
        retry=RetryPolicy.from_settings(s),
    )
    with upstream_errors("CoinGecko"):
        data = body["bitcoin"]
        prices = {c: _decimal(data[c.lower()]) for c in CURRENCIES if data.get(c.lower()) is not None}
        if not prices:
            raise ValueError("no prices")
        fetched = now_utc()
        return Quote(
            source="CoinGecko",
            prices=prices,
            updated_at=utc_from_ts(data.get("last_updated_at")) or fetched,
            fetched_at=fetched,
        )


# Kraken names pairs with legacy asset codes (XXBTZUSD); match on the quote currency suffix.
_KRAKEN_CURRENCIES = ("USD", "EUR", "GBP", "CAD", "JPY", "AUD", "CHF")


async def _kraken(ctx: CallContext) -> Quote:
    s = ctx.settings
    _, body = await get_json(
        ctx.services.http,
        "Kraken",
        f"{s.kraken_url.rstrip('/')}/0/public/Ticker",
        params={"pair": ",".join(f"XBT{c}" for c in _KRAKEN_CURRENCIES)},
        timeout_s=s.btc_price_timeout_s,
        retry=RetryPolicy.from_settings(s),
    )
    with upstream_errors("Kraken"):
        if body.get("error"):
            raise UpstreamError("Kraken reported an error", details={"upstream": "Kraken"})
        prices: dict[str, Decimal] = {}
        for pair, ticker in body["result"].items():
            for code in _KRAKEN_CURRENCIES:
                if pair.endswith(code):
                    prices[code] = _decimal(ticker["c"][0])  # "c" = last trade [price, volume]
        if not prices:
            raise ValueError("no prices")
        fetched = now_utc()
        return Quote(source="Kraken", prices=prices, updated_at=fetched, fetched_at=fetched)


async def _mempool(ctx: CallContext) -> Quote:
    s = ctx.settings
    _, body = await get_json(
        ctx.services.http,
        "mempool.space",
        f"{s.mempool_url.rstrip('/')}/api/v1/prices",
        timeout_s=s.btc_price_timeout_s,
        retry=RetryPolicy.from_settings(s),
    )
    with upstream_errors("mempool.space"):
        prices = {c: _decimal(body[c]) for c in CURRENCIES if body.get(c) not in (None, -1)}
        if not prices:
            raise ValueError("no prices")
        fetched = now_utc()
        return Quote(
            source="mempool.space",
            prices=prices,
            updated_at=utc_from_ts(body.get("time")) or fetched,
            fetched_at=fetched,
        )


PROVIDERS: dict[str, Fetcher] = {"coingecko": _coingecko, "kraken": _kraken, "mempool": _mempool}

_cache = cache_factory(max_entries=4)


async def _first_quote(ctx: CallContext) -> Quote:
    failures: list[ArkgateError] = []
    names = [n.strip().lower() for n in ctx.settings.btc_price_providers if n.strip().lower() in PROVIDERS]
    if not names:
        raise UpstreamError("no BTC price provider is configured")
    for name in names:
        try:
            quote = await PROVIDERS[name](ctx)
        except (UpstreamError, UpstreamTimeoutError) as exc:
            failures.append(exc)
            continue
        if failures:
            ctx.notes.append(
                "primary price provider failed (" + "; ".join(f.message for f in failures) + f"); used {quote.source}"
            )
        return quote
    summary = "; ".join(f.message for f in failures)
    if all(isinstance(f, UpstreamTimeoutError) for f in failures):
        raise UpstreamTimeoutError(f"every BTC price provider timed out ({summary})")
    raise UpstreamError(f"every BTC price provider failed ({summary})")


def _fmt(price: Decimal) -> str:
    return str(price.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


async def btc_price(request: BtcPriceRequest, ctx: CallContext) -> BtcPriceResponse:
    loaded = False

    async def load() -> Quote:
        nonlocal loaded
        loaded = True
        return await _first_quote(ctx)

    quote: Quote = await ctx.services.get(_cache).get_or_load("spot", load, ctx.settings.btc_price_cache_ttl_s)
    wanted = request.wanted()
    present = [c for c in wanted if c in quote.prices]
    missing = [c for c in wanted if c not in quote.prices]
    if not present:
        raise UpstreamError(
            f"{quote.source} has no price for {', '.join(missing)} right now", details={"upstream": quote.source}
        )
    rates = {c: _fmt(quote.prices[c]) for c in present}
    flat = {f"btc_{c.lower()}": rates[c] for c in present}
    return BtcPriceResponse(
        **flat,
        rates=rates,
        sats_per_unit={c: int((SATS_PER_BTC / quote.prices[c]).to_integral_value(ROUND_HALF_UP)) for c in present},
        currencies=present,
        missing=missing,
        source=quote.source,
        updated_at=quote.updated_at,
        fetched_at=quote.fetched_at,
        cached=not loaded,
    )


ENDPOINT = Endpoint(
    id="btc-price",
    price_sats=1,
    category="utility",
    summary="Bitcoin spot price",
    description=(
        "Spot price of one bitcoin in USD, EUR, GBP, CAD, JPY, AUD, CHF, CNY, HKD and SGD. "
        "Pick one code with ?currency=CAD or several with ?currencies=USD,EUR. The quote comes from "
        "a primary provider with automatic fallback, is cached for a few seconds, and names its source "
        "and update time. Also gives satoshis per unit of each currency."
    ),
    request_model=BtcPriceRequest,
    response_model=BtcPriceResponse,
    handler=btc_price,
    method="GET",
    timeout_s=20.0,
    example={"currencies": "USD,EUR"},
)
