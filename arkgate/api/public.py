"""Unauthenticated routes: health, the catalog, Prometheus metrics."""

from __future__ import annotations

import hmac
import time
from typing import Any

import structlog
from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from arkgate.api.availability import availability_fields
from arkgate.api.health import database_reachable
from arkgate.catalog.registry import Endpoint
from arkgate.errors import ArkgateError, InvalidTokenError
from arkgate.runtime import Runtime, runtime
from arkgate.services.envelope import json_response

router = APIRouter(tags=["public"])
log = structlog.get_logger("arkgate.api")


def require_metrics_token(request: Request, rt: Runtime) -> None:
    """/metrics shows revenue and deposits: it needs the metrics or admin token when either is set."""
    secrets = (rt.settings.metrics_token, rt.settings.admin_token)
    accepted = [secret.get_secret_value().encode() for secret in secrets if secret is not None]
    accepted = [token for token in accepted if token]
    if not accepted:
        return
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    given = value.strip().encode() if scheme.lower() == "bearer" else b""
    # Compare with every token (no early exit), each in constant time.
    matches = [hmac.compare_digest(given, token) for token in accepted]
    if not given or not any(matches):
        raise InvalidTokenError(
            "/metrics needs Authorization: Bearer <ARKGATE_METRICS_TOKEN or ARKGATE_ADMIN_TOKEN>",
            details={"_headers": {"WWW-Authenticate": 'Bearer realm="arkgate-metrics"'}},
        )


@router.get("/health", summary="Liveness, database and barkd status")
async def health(request: Request) -> Response:
    rt = runtime(request)
    checks: dict[str, Any] = {"database": "ok"}
    healthy = True
    if not await database_reachable(rt):
        checks["database"] = "unreachable"
        healthy = False
    if rt.barkd is not None:
        barkd: dict[str, Any] = {"reachable": await rt.barkd.ping()}
        if barkd["reachable"]:
            try:
                barkd["ark_server_connected"] = await rt.barkd.connected()
            except ArkgateError:
                barkd["ark_server_connected"] = False
        if rt.watcher is not None:
            barkd["watcher"] = rt.watcher.mode
        checks["barkd"] = barkd
    # The overall status is "ok" only when everything answers: the database (else 503) and barkd (a
    # gateway without barkd still serves funded sessions, so 200 but "degraded").
    barkd_down = isinstance(checks.get("barkd"), dict) and not checks["barkd"]["reachable"]
    body = {
        "status": "ok" if healthy and not barkd_down else "degraded",
        "network": rt.settings.network,
        "payment_mode": rt.settings.payment_mode,
        "endpoints": len(rt.catalog),
        **checks,
    }
    return json_response(body, 200 if healthy else 503)


def catalog_entry(endpoint: Endpoint, rt: Runtime) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "id": endpoint.id,
        "path": endpoint.path,
        "method": endpoint.method,
        "cost_sats": endpoint.listed_price_sats(rt.settings),
        "price_sats": endpoint.listed_price_sats(rt.settings),
        "category": endpoint.category,
        "summary": endpoint.summary,
        "description": endpoint.description,
        **availability_fields(endpoint, rt),
    }
    if endpoint.metered is not None:
        entry["pricing"] = {
            "type": "metered",
            "minimum_sats": endpoint.min_price_sats(rt.settings),
            "max_cost_sats": endpoint.max_price_sats(rt.settings),
            "rate": endpoint.metered.rate(rt.settings),
            "refund": "the maximum is reserved before the call; what is not used is refunded",
        }
    return entry


@router.get("/v1/catalog", summary="Every paid endpoint with its price")
async def catalog(request: Request) -> Response:
    rt = runtime(request)
    return json_response(
        {
            "endpoints": [catalog_entry(e, rt) for e in rt.catalog],
            "session": {
                "create": "POST /v1/sessions",
                "balance": "GET /v1/balance",
                "topup": "POST /v1/sessions/topup",
                "min_amount_sats": rt.settings.min_session_sats,
                "max_amount_sats": rt.settings.max_session_sats,
            },
            "auth": "Authorization: Bearer <token>",
            "network": rt.settings.network,
        }
    )


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    rt = runtime(request)
    require_metrics_token(request, rt)
    for refresh in rt.metrics_refreshers:
        try:
            await refresh(rt)
        except Exception:  # a gauge that cannot be read must not hide every other metric
            log.warning("metrics.refresh_failed", exc_info=True)
    if rt.watcher is not None:
        rt.metrics.watcher_connected.set(1 if rt.watcher.connected else 0)
        if rt.watcher.last_event_at is not None:
            rt.metrics.watcher_event_age.set(time.monotonic() - rt.watcher.last_event_at)
    return Response(generate_latest(rt.metrics.registry), media_type=CONTENT_TYPE_LATEST)
