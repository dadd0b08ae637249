"""The web front: ``install(app, rt)`` adds the pages, their static files, the QR images,
the live-status stream and, in demo mode, the simulator payer proxy.

Pages are server-rendered Jinja2 with small scripts of our own; every asset is served
from ``/static/`` (nothing from a CDN), and a Content-Security-Policy keeps it that way.
"""

from __future__ import annotations

import base64
import re
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, select_autoescape

from arkgate.catalog.qr_generate import render_qr
from arkgate.catalog.registry import UNAVAILABLE_LABEL, Endpoint
from arkgate.errors import InputError, NotFoundError
from arkgate.runtime import Part, Runtime, runtime
from arkgate.services.sessions import build_bip321
from arkgate.web import demo, live

WEB_DIR = Path(__file__).parent
STATIC_DIR = WEB_DIR / "static"
PRESETS_SATS = (100, 500, 1000, 5000)
TOKEN_STORAGE_KEY = "arkgate.token"  # noqa: S105 (a sessionStorage key name, not a secret)

# Swagger UI sets inline styles; everything else is same-origin only.
CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; script-src 'self'; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
_HASH = re.compile(r"^[0-9a-f]{64}$")

templates = Environment(
    loader=FileSystemLoader(WEB_DIR / "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)

router = APIRouter(include_in_schema=False)


def network_view(rt: Runtime) -> dict[str, Any]:
    settings = rt.settings
    name = "mainnet" if settings.is_mainnet else settings.network
    return {
        "name": name,
        "is_mainnet": settings.is_mainnet,
        "demo": bool(settings.demo and settings.simulator_url),
        "free": settings.payment_mode == "free",
    }


def price_view(endpoint: Endpoint, rt: Runtime) -> dict[str, Any]:
    if endpoint.metered is None:
        return {"text": f"{endpoint.price_sats} sats", "metered": False}
    maximum = endpoint.max_price_sats(rt.settings)
    return {
        "text": f"{endpoint.price_sats}–{maximum} sats",
        "metered": True,
        "rate": endpoint.metered.rate(rt.settings),
        "detail": f"Metered: {endpoint.metered.rate(rt.settings).rstrip('.')}; at most {maximum} sats, "
        "unused sats refunded.",
    }


def endpoint_view(endpoint: Endpoint, rt: Runtime) -> dict[str, Any]:
    return {
        "id": endpoint.id,
        "method": endpoint.method,
        "path": endpoint.path,
        "summary": endpoint.summary,
        "description": endpoint.description,
        "price": price_view(endpoint, rt),
        "example": endpoint.example or {},
        "schema": endpoint.request_model.model_json_schema(),
        "unavailable_reason": rt.catalog.unavailable_reason(endpoint.id),
    }


def first_call(rt: Runtime) -> dict[str, Any] | None:
    """The cheapest flat-priced endpoint with an example: what a new session should try first."""
    candidates = [e for e in rt.catalog.available() if e.metered is None and e.example is not None]
    if not candidates:
        return None
    preferred = [e for e in candidates if e.id == "qr-generate"]
    endpoint = (preferred or sorted(candidates, key=lambda e: (e.price_sats, e.id)))[0]
    return {
        "id": endpoint.id,
        "method": endpoint.method,
        "path": endpoint.path,
        "example": endpoint.example,
        "price_sats": endpoint.price_sats,
    }


CATEGORY_LABELS = {"ai": "AI", "osint": "OSINT", "dns": "DNS"}


def category_label(name: str) -> str:
    return CATEGORY_LABELS.get(name, name.replace("-", " ").capitalize())


def render(request: Request, template: str, **context: Any) -> HTMLResponse:
    rt = runtime(request)
    page = templates.get_template(template).render(
        base_url=rt.base_url(request),
        network=network_view(rt),
        settings=rt.settings,
        token_key=TOKEN_STORAGE_KEY,
        path=request.url.path,
        **context,
    )
    return HTMLResponse(
        page,
        headers={
            "Content-Security-Policy": CSP,
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
            "Cache-Control": "no-store",
        },
    )


@router.get("/", response_class=HTMLResponse)
async def index(request: Request) -> HTMLResponse:
    rt = runtime(request)
    groups: list[dict[str, Any]] = []
    tryit: dict[str, dict[str, Any]] = {}
    for name, endpoints in rt.catalog.categories().items():
        views = [endpoint_view(e, rt) for e in endpoints]
        groups.append({"name": name, "label": category_label(name), "endpoints": views})
        for view in views:
            if view["unavailable_reason"] is None:
                tryit[view["id"]] = {k: view[k] for k in ("method", "path", "example", "schema")}
    return render(
        request,
        "index.html",
        groups=groups,
        tryit=tryit,
        endpoint_count=len(rt.catalog.available()),
        unavailable_label=UNAVAILABLE_LABEL,
    )


@router.get("/docs", response_class=HTMLResponse)
async def docs(request: Request) -> HTMLResponse:
    rt = runtime(request)
    unavailable = [
        {"id": e.id, "reason": reason} for e in rt.catalog if (reason := rt.catalog.unavailable_reason(e.id))
    ]
    return render(
        request, "docs.html", first=first_call(rt), unavailable=unavailable, unavailable_label=UNAVAILABLE_LABEL
    )


@router.get("/fund", response_class=HTMLResponse)
async def fund(request: Request) -> HTMLResponse:
    rt = runtime(request)
    return render(request, "fund.html", presets=PRESETS_SATS, first=first_call(rt), limits=_limits(rt))


@router.get("/topup", response_class=HTMLResponse)
async def topup(request: Request) -> HTMLResponse:
    rt = runtime(request)
    return render(request, "topup.html", presets=PRESETS_SATS, limits=_limits(rt))


@router.get("/session", response_class=HTMLResponse)
async def session(request: Request) -> HTMLResponse:
    service = runtime(request).payouts
    payouts = service is not None and service.policy.enabled  # withdraw and refund_to shown only then
    return render(request, "session.html", payouts=payouts)


@router.get("/fund/qr.svg")
async def funding_qr(request: Request, payment_hash: str = "") -> Response:
    """The BIP-321 QR of one of this gateway's invoices: invoice plus the session's Ark address."""
    rt = runtime(request)
    if not _HASH.match(payment_hash):
        raise InputError("payment_hash must be 64 lower-case hex characters")
    invoice = await rt.ledger.invoice(payment_hash)
    if invoice is None:
        raise NotFoundError("no such invoice")
    address = None
    if invoice.session_id is not None:
        owner = await rt.ledger.session_by_id(invoice.session_id)
        address = owner.ark_address if owner is not None else None
    uri = build_bip321(invoice.bolt11, address, invoice.amount_sats)
    assert uri is not None  # an invoice always has a bolt11
    svg = base64.b64decode(render_qr(uri, fmt="svg", scale=4, border=4).image_base64)
    return Response(svg, media_type="image/svg+xml", headers={"Cache-Control": "private, max-age=3600"})


def _limits(rt: Runtime) -> dict[str, int]:
    return {"min": rt.settings.min_session_sats, "max": rt.settings.max_session_sats}


def install(app: FastAPI, rt: Runtime) -> Part:
    app.include_router(live.router)
    app.include_router(router)
    if rt.settings.demo and rt.settings.simulator_url:
        app.include_router(demo.router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return Part()
