"""``/admin``: the operator API (``/admin/api/...``) and the dashboard page.

Every route needs ``Authorization: Bearer <ARKGATE_ADMIN_TOKEN>`` (compared in constant time),
except the dashboard's page and static files, which carry no data. With no admin token set,
every ``/admin`` path answers 404 whatever the bind address.
"""

from __future__ import annotations

import hmac
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from arkgate.admin import exits, oplog, reconcile, refresh, sweep
from arkgate.admin.alerts import Alerter
from arkgate.admin.console import Console, closing, console_of
from arkgate.admin.gauges import refresh_gauges
from arkgate.admin.health import build_health
from arkgate.admin.monitor import Monitor
from arkgate.admin.overview import build_overview, recent_activity
from arkgate.cluster.mutex import DatabaseMutex
from arkgate.errors import ConflictError, InvalidTokenError, NotFoundError
from arkgate.runtime import Part, Runtime, runtime
from arkgate.services.envelope import json_response

STATIC_DIR = Path(__file__).parent / "static"
_NO_STORE = {"Cache-Control": "no-store"}
# The page loads only its own script, style and the vendored chart library.
_PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
_MEDIA_TYPES = {".js": "text/javascript", ".css": "text/css", ".html": "text/html", ".md": "text/plain"}


def _enabled(request: Request) -> Runtime:
    rt = runtime(request)
    if rt.settings.admin_token is None:
        raise NotFoundError("not found")
    return rt


def require_admin(request: Request) -> Console:
    rt = _enabled(request)
    assert rt.settings.admin_token is not None
    expected = rt.settings.admin_token.get_secret_value().encode()
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    given = value.strip().encode() if scheme.lower() == "bearer" else b""
    if not given or not hmac.compare_digest(given, expected):
        raise InvalidTokenError(
            "admin token missing or wrong",
            details={"_headers": {"WWW-Authenticate": 'Bearer realm="arkgate-admin"'}},
        )
    return console_of(request.app)


Admin = Annotated[Console, Depends(require_admin)]


def _reply(payload: Any) -> Response:
    return json_response(payload, headers=dict(_NO_STORE))


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RefreshRequest(_Body):
    vtxos: list[str] | None = Field(default=None, description="VTXO ids to refresh (default: the ones due).")
    all: bool = Field(default=False, description="Refresh every spendable VTXO.")


class ReconcileRequest(_Body):
    apply: bool = Field(default=False, description="Write missing labels and credit what the watcher missed.")


class SweepRequest(_Body):
    destination: str | None = Field(default=None, max_length=2000)
    amount_sats: int | None = Field(default=None, ge=1)
    dry_run: bool = False


class ExitStartRequest(_Body):
    vtxos: list[str] | None = None
    force: bool = False
    fee_rate_sat_per_vb: int | None = Field(default=None, ge=1, le=10_000)


class ExitProgressRequest(_Body):
    fee_rate_sat_per_vb: int | None = Field(default=None, ge=1, le=10_000)


class ExitClaimRequest(_Body):
    destination: str | None = Field(default=None, max_length=200)
    vtxos: list[str] | None = None
    fee_rate_sat_per_vb: int | None = Field(default=None, ge=1, le=10_000)


router = APIRouter(prefix="/admin", include_in_schema=False)


@router.get("/api/overview")
async def overview(console: Admin) -> Response:
    return _reply(await build_overview(console))


@router.get("/api/health")
async def health(console: Admin) -> Response:
    return _reply(await build_health(console))


@router.get("/api/activity")
async def activity(console: Admin, limit: Annotated[int, Query(ge=1, le=500)] = 50) -> Response:
    return _reply(await recent_activity(console, limit=limit))


@router.get("/api/log")
async def log_entries(
    console: Admin,
    kind: Annotated[str | None, Query(max_length=32)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Response:
    return _reply({"entries": await oplog.entries(console.rt.database, kind=kind, limit=limit)})


@router.post("/api/refresh")
async def refresh_now(console: Admin, body: RefreshRequest | None = None) -> Response:
    body = body or RefreshRequest()
    return _reply(await refresh.refresh(console, vtxo_ids=body.vtxos, everything=body.all, source="manual"))


@router.get("/api/reconcile")
async def reconcile_report(console: Admin) -> Response:
    return _reply(await reconcile.reconcile(console, apply=False))


@router.post("/api/reconcile")
async def reconcile_now(console: Admin, body: ReconcileRequest | None = None) -> Response:
    return _reply(await reconcile.reconcile(console, apply=(body or ReconcileRequest()).apply))


@router.post("/api/sweep")
async def sweep_now(console: Admin, body: SweepRequest | None = None) -> Response:
    body = body or SweepRequest()
    result = await sweep.sweep(
        console, destination=body.destination, amount_sats=body.amount_sats, dry_run=body.dry_run
    )
    return _reply(result)


@router.get("/api/exits")
async def exit_list(console: Admin) -> Response:
    return _reply({"exits": await exits.statuses(console)})


@router.get("/api/exits/estimate")
async def exit_estimate(
    console: Admin,
    vtxos: Annotated[str | None, Query(max_length=10_000, description="Comma-separated VTXO ids")] = None,
    fee_rate_sat_per_vb: Annotated[int | None, Query(ge=1, le=10_000)] = None,
) -> Response:
    ids = [v.strip() for v in vtxos.split(",") if v.strip()] if vtxos else None
    return _reply(await exits.estimate(console, ids, fee_rate_sat_per_vb=fee_rate_sat_per_vb))


@router.get("/api/exits/{vtxo_id}")
async def exit_one(console: Admin, vtxo_id: str) -> Response:
    return _reply({"exits": await exits.statuses(console, vtxo_id)})


@router.post("/api/exits/start")
async def exit_start(console: Admin, body: ExitStartRequest | None = None) -> Response:
    body = body or ExitStartRequest()
    result = await exits.start(
        console, body.vtxos, force=body.force, fee_rate_sat_per_vb=body.fee_rate_sat_per_vb, source="manual"
    )
    return _reply(result)


@router.post("/api/exits/progress")
async def exit_progress(console: Admin, body: ExitProgressRequest | None = None) -> Response:
    body = body or ExitProgressRequest()
    return _reply(await exits.progress(console, fee_rate_sat_per_vb=body.fee_rate_sat_per_vb))


@router.post("/api/exits/claim")
async def exit_claim(console: Admin, body: ExitClaimRequest | None = None) -> Response:
    body = body or ExitClaimRequest()
    result = await exits.claim(
        console, destination=body.destination, vtxo_ids=body.vtxos, fee_rate_sat_per_vb=body.fee_rate_sat_per_vb
    )
    return _reply(result)


@router.get("/api/alerts")
async def alerts(console: Admin, limit: Annotated[int, Query(ge=1, le=500)] = 50) -> Response:
    return _reply(
        {
            "webhook_enabled": console.alerter.webhook_enabled,
            "deliveries": await console.alerter.deliveries(limit),
            "alerts": await oplog.entries(console.rt.database, kind="alert", limit=limit),
        }
    )


@router.post("/api/alerts/test")
async def alert_test(console: Admin) -> Response:
    delivery = await console.alerter.emit("test", "test alert from the admin API")
    return _reply({"delivery_id": delivery, "webhook_enabled": console.alerter.webhook_enabled})


@router.get("/api/webhooks")
async def webhook_deliveries(
    console: Admin,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    session_id: Annotated[int | None, Query(ge=1)] = None,
) -> Response:
    """Every webhook delivery, the operator's and the sessions' (``session_id`` null: the operator's)."""
    records = await console.alerter.deliverer.deliveries(limit=limit, session_id=session_id)
    return _reply({"deliveries": [record.view(with_session=True) for record in records]})


@router.post("/api/webhooks/{delivery_id}/redeliver")
async def webhook_redeliver(console: Admin, delivery_id: int) -> Response:
    """Send a delivered, failed or canceled delivery again, with the same ``webhook-id``."""
    if not await console.alerter.deliverer.redeliver(delivery_id):
        raise ConflictError(f"delivery {delivery_id} does not exist or is still pending")
    return _reply({"delivery_id": delivery_id, "status": "pending"})


# --- the dashboard ------------------------------------------------------------------------
@router.get("")
@router.get("/")
async def dashboard(request: Request) -> Response:
    _enabled(request)
    return Response((STATIC_DIR / "index.html").read_bytes(), media_type="text/html", headers=_PAGE_HEADERS)


@router.get("/static/{path:path}")
async def static(request: Request, path: str) -> Response:
    _enabled(request)
    target = (STATIC_DIR / path).resolve()
    if STATIC_DIR.resolve() not in target.parents or not target.is_file() or target.suffix not in _MEDIA_TYPES:
        raise NotFoundError("not found")
    headers = {"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}
    return Response(target.read_bytes(), media_type=_MEDIA_TYPES[target.suffix], headers=headers)


@router.api_route("/{path:path}", methods=["GET", "POST", "PUT", "DELETE", "PATCH"])
async def unknown(request: Request, path: str) -> Response:
    _enabled(request)
    raise NotFoundError("no such admin route")


def install(app: FastAPI, rt: Runtime) -> Part:
    console = Console(
        rt=rt,
        alerter=Alerter(rt.settings, rt.database, rt.webhooks.deliverer if rt.webhooks is not None else None),
        wallet_lock=DatabaseMutex(rt.database, "wallet"),
    )
    # Part-private state: only the admin routes (and tests) reach the console, through ``console_of``.
    app.state.admin_console = console
    app.include_router(router)
    part = Part(
        lifespan_contexts=(lambda: closing(console),),
        metrics_refreshers=(lambda rt: refresh_gauges(console, rt),),
    )
    # Leader-only: with several instances one resumes orphaned webhooks and runs the monitor.
    rt.leader.register("webhook-resume", console.alerter.resume_forever)
    if rt.barkd is not None:  # free mode has no wallet to watch
        # The watchdog and refresh policy protect the funds even when the admin API is disabled.
        rt.leader.register("admin-monitor", Monitor(console).run)
    return part
