"""Machine-readable discovery: the ArkAPI manifest (two names) and price quotes, from the registry."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from arkgate.api.availability import availability_fields
from arkgate.catalog.registry import Endpoint
from arkgate.errors import NotFoundError
from arkgate.runtime import Runtime, runtime
from arkgate.services.envelope import json_response

router = APIRouter(tags=["public"])

MANIFEST_VERSION = "2026-11-01"
MAX_QUOTE_CALLS = 1_000_000


def price_text(endpoint: Endpoint, rt: Runtime) -> str:
    """One phrase for a price, the same wherever a person reads it."""
    settings = rt.settings
    price = endpoint.listed_price_sats(settings)
    if endpoint.metered is not None:
        return (
            f"up to {price} sats per call, at least {endpoint.min_price_sats(settings)}. "
            f"Metered: {endpoint.metered.rate(settings)}"
        )
    return f"{price} sat{'' if price == 1 else 's'} per call"


def sample_intent(endpoint: Endpoint) -> str:
    if endpoint.example:
        return f"{endpoint.summary}: {json.dumps(endpoint.example, ensure_ascii=False)}"
    return endpoint.summary


# The category ArkAPI's own /.well-known/arkapi.json gives each of its tools; arkgate's
# catalog groups some differently (its manifest at /.well-known/arkgate.json keeps those).
ARKAPI_CATEGORIES = {
    "dns-lookup": "security",
    "whois": "security",
    "ssl-check": "security",
    "headers": "security",
    "weather": "utility",
    "ip-lookup": "osint",
    "email-auth-check": "security",
    "axfr-check": "security",
    "domain-intel": "security",
    "bitcoin-news": "utility",
    "btc-price": "bitcoin",
    "ai-chat": "ai",
    "ai-translate": "ai",
    "translate": "ai",
    "image-generate": "visual",
    "screenshot": "visual",
    "qr-generate": "utility",
    "bitcoin-address": "bitcoin",
    "cve-search": "security",
    "prediction-market-search": "utility",
    "cve-lookup": "security",
    "domain-check": "osint",
    "url-to-markdown": "content",
}


def manifest(rt: Runtime, base: str, *, arkapi_categories: bool = False) -> dict[str, Any]:
    """The agent manifest; ``arkapi_categories`` labels ArkAPI's tools with ArkAPI's categories."""
    settings = rt.settings
    barkd = settings.payment_mode == "barkd"
    tools = []
    for endpoint in rt.catalog:
        tool: dict[str, Any] = {
            "id": endpoint.id,
            "path": endpoint.path,
            "method": endpoint.method,
            "cost_sats": endpoint.listed_price_sats(settings),
            "min_cost_sats": endpoint.min_price_sats(settings),
            "max_cost_sats": endpoint.max_price_sats(settings),
            "category": ARKAPI_CATEGORIES.get(endpoint.id, endpoint.category)
            if arkapi_categories
            else endpoint.category,
            "summary": endpoint.summary,
            "description": endpoint.description,
            "sample_intent": sample_intent(endpoint),
            "mcp_tool": endpoint.module_name if rt.catalog.is_available(endpoint.id) else None,
            **availability_fields(endpoint, rt),
        }
        if endpoint.metered is not None:
            tool["pricing"] = {
                "type": "metered",
                "minimum_sats": endpoint.min_price_sats(settings),
                "max_cost_sats": endpoint.max_price_sats(settings),
                "rate": endpoint.metered.rate(settings),
            }
        if endpoint.example is not None:
            tool["example"] = endpoint.example
        tools.append(tool)
    return {
        "name": "arkgate",
        "description": "Pay-per-call APIs for agents and developers, paid in sats over Lightning or Ark; "
        f"this gateway runs on {settings.network}.",
        "homepage": f"{base}/",
        "openapi_url": f"{base}/openapi.json",
        "llms_url": f"{base}/llms.txt",
        "llms_full_url": f"{base}/llms-full.txt",
        "catalog_url": f"{base}/v1/catalog",
        "quote_url": f"{base}/v1/quote",
        "mcp_url": f"{base}/mcp/" if settings.mcp_enabled else None,
        "version": MANIFEST_VERSION,
        "auth": {
            "type": "bearer",
            "format": "Authorization: Bearer ak_xxx",
            "session_create_url": f"{base}/v1/sessions",
            "session_balance_url": f"{base}/v1/balance",
            "session_topup_url": f"{base}/v1/sessions/topup",
            "session_keys_url": f"{base}/v1/sessions/me/keys",
            "l402": settings.l402_enabled and barkd,
            "l402_format": "Authorization: L402 <macaroon>:<preimage>",
        },
        "funding": {
            "network": settings.network,
            "methods": ["lightning", "ark"] if barkd else ["free"],
            "min_session_sats": settings.min_session_sats,
            "max_session_sats": settings.max_session_sats,
            "default_session_sats": settings.default_session_sats,
            "note": "A call without a usable token answers 402 with a new session's invoice and Ark address."
            if barkd
            else "Free mode: sessions are funded at once with test sats.",
        },
        "pricing_model": {"type": "pay_per_call", "unit": "sats", "cost_field": "x-cost-sats"},
        "discovery": {"machine_readable": True, "agent_friendly": True, "openclaw_compatible": True, "mcp": True},
        # What can be called here; unavailable endpoints stay in ``tools`` with their reason.
        "capabilities": [endpoint.id for endpoint in rt.catalog.available()],
        "tools": tools,
    }


@router.get("/.well-known/arkapi.json", summary="Agent manifest (ArkAPI's format)")
async def arkapi_manifest(request: Request) -> Response:
    rt = runtime(request)
    return json_response(manifest(rt, rt.base_url(request), arkapi_categories=True))


@router.get("/.well-known/arkgate.json", summary="Agent manifest (arkapi.json's content, with arkgate's categories)")
async def arkgate_manifest(request: Request) -> Response:
    rt = runtime(request)
    return json_response(manifest(rt, rt.base_url(request)))


class QuoteLine(BaseModel):
    endpoint: str
    path: str
    method: str
    price_sats: int = Field(..., description="The listed price of one call (cost_sats: the most it can cost).")
    min_price_sats: int = Field(..., description="Least one call costs (equals price_sats unless metered).")
    max_price_sats: int = Field(..., description="Most one call can cost.")
    calls: int
    min_total_sats: int = Field(..., description="min_price_sats x calls.")
    max_total_sats: int = Field(..., description="max_price_sats x calls: a session this size always suffices.")
    session_sats: int = Field(..., description="The session to buy for these calls (respecting the minimum).")
    pricing: dict[str, Any] | None = None
    available: bool = Field(True, description="False when this gateway cannot serve the endpoint.")
    unavailable_reason: str | None = None


class Quote(BaseModel):
    calls: int
    quotes: list[QuoteLine]
    min_session_sats: int
    max_session_sats: int


def quote_line(endpoint: Endpoint, rt: Runtime, calls: int) -> QuoteLine:
    settings = rt.settings
    max_price = endpoint.max_price_sats(settings)
    pricing = None
    if endpoint.metered is not None:
        pricing = {"type": "metered", "rate": endpoint.metered.rate(settings)}
    return QuoteLine(
        endpoint=endpoint.id,
        path=endpoint.path,
        method=endpoint.method,
        price_sats=endpoint.listed_price_sats(settings),
        min_price_sats=endpoint.min_price_sats(settings),
        max_price_sats=max_price,
        calls=calls,
        min_total_sats=endpoint.min_price_sats(settings) * calls,
        max_total_sats=max_price * calls,
        session_sats=max(settings.min_session_sats, max_price * calls),
        pricing=pricing,
        **availability_fields(endpoint, rt),
    )


@router.get("/v1/quote", response_model=Quote, summary="Price of N calls of one endpoint (or of each)")
async def quote(
    request: Request,
    endpoint: str | None = Query(None, max_length=64, description="Endpoint id, e.g. qr-generate; omit for all."),
    calls: int = Query(1, ge=1, le=MAX_QUOTE_CALLS, description="How many calls the session should cover."),
) -> Response:
    rt = runtime(request)
    if endpoint is not None:
        found = rt.catalog.get(endpoint)
        if found is None:
            raise NotFoundError(f"no endpoint {endpoint!r}; GET /v1/catalog lists them")
        endpoints = [found]
    else:
        endpoints = list(rt.catalog)
    body = Quote(
        calls=calls,
        quotes=[quote_line(e, rt, calls) for e in endpoints],
        min_session_sats=rt.settings.min_session_sats,
        max_session_sats=rt.settings.max_session_sats,
    )
    return json_response(body.model_dump())
