"""``create_app(settings)``: the one place that wires the packages together."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator, Callable
from typing import Any

import pluggy
import structlog
from fastapi import FastAPI
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from arkgate.admin import routes as admin_routes
from arkgate.api import agents, compat, downloads, health, keys, lnurl, metering, payouts, public, sessions
from arkgate.api import webhooks as webhooks_api
from arkgate.api.cors import PublicCors
from arkgate.api.request_id import RequestIdMiddleware
from arkgate.api.request_limits import BodyLimits, RequestLimitsMiddleware
from arkgate.catalog.context import Services
from arkgate.catalog.registry import Catalog, load_catalog
from arkgate.cluster.bus import choose_bus
from arkgate.cluster.leader import Leadership
from arkgate.db import migrate
from arkgate.db.engine import Database
from arkgate.downloads import DatabaseDownloadStore, DownloadStore, get_download_store, store_options
from arkgate.gc_tuning import freeze_startup_heap
from arkgate.outbound.guard import get_guard
from arkgate.payments import refund_to, retention
from arkgate.payments.barkd import BarkdClient
from arkgate.payments.events import EventHub
from arkgate.payments.ledger import CreditResult, Ledger
from arkgate.payments.payouts import PayoutEvent, PayoutListener, PayoutPolicy, PayoutService
from arkgate.payments.sweeper import CallSweeper, load_instance_id
from arkgate.payments.watcher import PaymentWatcher
from arkgate.plugins import plugin_endpoints, plugin_manager
from arkgate.runtime import Part, Runtime
from arkgate.services.envelope import install_error_handlers
from arkgate.services.l402 import L402
from arkgate.services.metrics import Metrics
from arkgate.services.ratelimit import RateLimitHeaders, RateLimits
from arkgate.services.sessions import SessionService
from arkgate.settings import Settings
from arkgate.web import routes as web_routes
from arkgate.webhooks.events import WITHDRAWAL_COMPLETED, WithdrawalFinished
from arkgate.webhooks.service import Webhooks

# Parts beyond the core API, in this order; each ``install(app, runtime)`` mounts its routes and
# returns a ``Part`` (start-up hooks, the 402 challenge, token resolvers...) that ``create_app`` adds.
PARTS: tuple[Callable[[FastAPI, Runtime], Part], ...] = (
    downloads.install,
    agents.install,
    webhooks_api.install,
    admin_routes.install,
    web_routes.install,
)

log = structlog.get_logger("arkgate.app")


def create_app(
    settings: Settings, *, catalog: Catalog | None = None, plugins: pluggy.PluginManager | None = None
) -> FastAPI:
    """The gateway for ``settings``: ``catalog`` replaces the built-in one plus the plugins' endpoints;
    ``plugins`` replaces the manager that loads the installed plugins (``arkgate`` entry points)."""
    settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)  # keys, downloads: the owner's only
    database = Database(
        settings.effective_database_url,
        pool_size=settings.database_pool_size,
        sqlite_synchronous=settings.sqlite_synchronous,
    )
    ledger = Ledger(
        database,
        session_ttl_s=settings.session_ttl_s,
        unpaid_ttl_s=settings.unpaid_session_ttl_s,
        idempotency_ttl_s=settings.idempotency_ttl_s,
        instance_id=load_instance_id(settings.data_dir, per_process=settings.workers > 1),
    )
    sweeper = CallSweeper(ledger, interval_s=settings.call_sweep_interval_s)
    barkd = (
        BarkdClient(settings.barkd_url, settings.barkd_token_value(), timeout_s=settings.barkd_timeout_s)
        if settings.payment_mode == "barkd"
        else None
    )
    rt = Runtime(
        settings=settings,
        # Availability is decided once here: hidden endpoints get no route, unavailable ones a 503.
        catalog=(catalog if catalog is not None else _full_catalog(plugins)).evaluated(settings),
        database=database,
        ledger=ledger,
        events=EventHub(),
        services=Services(settings),
        limits=RateLimits(settings),
        metrics=Metrics(),
        leader=Leadership(database, lease_s=settings.leader_lease_s),
        sessions=SessionService(settings=settings, database=database, ledger=ledger, barkd=barkd),
        barkd=barkd,
        # Its shared root key is loaded from the database at start-up (the agents part's hook).
        l402=L402(settings) if settings.l402_enabled else None,
        token_resolvers=(metering.bearer_token_hash,),
    )
    bus = choose_bus(settings, database, rt.events)
    # One webhook queue for sessions and the operator; each process claims deliveries under its own name.
    rt.webhooks = Webhooks(settings, database, instance=secrets.token_hex(8))
    ledger.on_refund = rt.webhooks.on_refund
    rt.leader.register("webhook-scans", rt.webhooks.scans_forever)
    if settings.downloads_dir is None and not database.is_sqlite:
        # Several instances share a server database: keep hosted files where all of them can read.
        database_store = DatabaseDownloadStore(database, **store_options(settings))
        shared_store: DownloadStore = database_store
        rt.services.provide(get_download_store, shared_store)
        rt.leader.register("downloads-cleanup", database_store.cleanup_forever)
    if rt.barkd is not None:
        rt.watcher = PaymentWatcher(
            rt.barkd,
            ledger,
            rt.events,
            reconcile_interval_s=settings.reconcile_interval_s,
            poll_interval_s=settings.poll_interval_s,
            sync_interval_s=settings.payment_sync_interval_s,
            sync_max_interval_s=settings.payment_sync_max_interval_s,
            audit_interval_s=settings.history_audit_interval_s,
            on_credit=lambda result, rail: _credited(rt, result, rail),
        )
        # Withdrawals; ``rt.payouts.listeners`` hear withdrawal.* events.
        guard = rt.services.get(get_guard)
        payout_service = PayoutService(
            ledger=ledger,
            barkd=rt.barkd,
            events=rt.events,
            policy=PayoutPolicy.from_settings(settings),
            resolve_invoice=lambda address, sats: lnurl.invoice_for(guard, address, sats),
        )
        rt.payouts = payout_service
        if rt.webhooks is not None:
            payout_service.listeners.append(_withdrawal_webhooks(rt.webhooks))
        if payout_service.policy.enabled:  # remainders of expired sessions go to their refund_to
            rt.leader.register("refund-to", lambda: refund_to.refund_expired_forever(payout_service))
    rt.leader.register(
        "retention",
        lambda: retention.pruning_loop(
            database, retention.Retention.from_settings(settings), interval_s=settings.prune_interval_s
        ),
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await migrate.upgrade(database)
        _warn_about_memory_limits(settings, database)
        if bus is not None:
            await bus.start()
        # Calls a crash left in flight are refunded before this instance serves anything.
        await sweeper.sweep(at_startup=True)
        tasks: list[asyncio.Task[Any]] = [asyncio.create_task(sweeper.run(), name="call-sweeper")]
        if rt.watcher is not None:
            tasks.append(asyncio.create_task(rt.watcher.run(), name="payment-watcher"))
        if rt.payouts is not None:  # payouts a crash or timeout left pending settle from barkd's history
            tasks.append(asyncio.create_task(rt.payouts.run(), name="payout-recovery"))
        async with contextlib.AsyncExitStack() as stack:
            for context in rt.lifespan_contexts:
                await stack.enter_async_context(context())
            for hook in rt.startup_hooks:
                await hook(rt)
            await rt.leader.start()
            # Last step of start-up: what exists now lives as long as the process (arkgate/gc_tuning.py).
            restore_gc = freeze_startup_heap()
            try:
                yield
            finally:
                restore_gc()
                await rt.leader.aclose()
                if bus is not None:
                    await bus.aclose()
                for task in tasks:
                    task.cancel()
                for task in tasks:
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await task
                await rt.tasks.drain()  # refunds in progress commit before the database closes
                if rt.webhooks is not None:
                    await rt.webhooks.aclose()  # their events queued first; undelivered rows resume later
                await rt.services.aclose()
                await rt.limits.aclose()
                if rt.barkd is not None:
                    await rt.barkd.aclose()
                ledger.close()
                await database.dispose()

    app = FastAPI(
        title="arkgate",
        summary="Pay-per-call APIs funded by Lightning or Ark",
        version="0.1.0",
        lifespan=lifespan,
        docs_url=None,  # /docs is the web front's reference page
        redoc_url=None,
    )
    app.state.runtime = rt
    install_error_handlers(app)
    app.include_router(health.router)
    app.include_router(public.router)
    app.include_router(sessions.router)
    app.include_router(keys.router)
    app.include_router(payouts.router)
    app.include_router(compat.router)
    app.router.routes[0:0] = sessions.LEAN_ROUTES  # matched before every included router
    for endpoint in rt.catalog:
        app.add_api_route(
            endpoint.path,
            metering.make_paid_route(endpoint),
            methods=[endpoint.method],
            summary=endpoint.summary,
            description=endpoint.description,
            tags=[endpoint.category],
            openapi_extra={"x-cost-sats": endpoint.listed_price_sats(settings), "x-category": endpoint.category},
        )
    app.router.routes[0:0] = metering.lean_paid_routes(rt.catalog)  # served without FastAPI's dependency machinery
    for install in PARTS:
        rt.add(install(app, rt))
    if rt.limits.enabled:  # with limits off no window is ever recorded: the layer would only cost time
        app.add_middleware(RateLimitHeaders)
    if settings.cors_allow_origins:
        app.add_middleware(PublicCors, settings=settings)
    _install_http_guards(app, rt)
    return app


def _install_http_guards(app: FastAPI, rt: Runtime) -> None:
    """Outermost first: request id, trusted-proxy headers, then size limits before any route runs."""
    settings = rt.settings
    body_limits = BodyLimits(small_bytes=settings.max_body_bytes, large_bytes=settings.max_large_body_bytes)
    # MCP tool calls carry the same arguments as the endpoints, ai-chat's long conversations included.
    body_limits.declare_large(paths=[e.path for e in rt.catalog if e.has_large_body], prefixes=["/mcp"])
    app.add_middleware(RequestLimitsMiddleware, limits=body_limits, max_header_bytes=settings.max_header_bytes)
    if settings.forwarded_allow_ips:
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=settings.forwarded_allow_ips)
    app.add_middleware(RequestIdMiddleware)
    if settings.metrics_token is None and settings.admin_token is None:
        log.warning("metrics.public", hint="set ARKGATE_METRICS_TOKEN or ARKGATE_ADMIN_TOKEN to protect /metrics")


def _full_catalog(plugins: pluggy.PluginManager | None) -> Catalog:
    """The built-in endpoints and every installed plugin's (hook ``register_endpoints``)."""
    return load_catalog(extra=plugin_endpoints(plugins if plugins is not None else plugin_manager()))


def _warn_about_memory_limits(settings: Settings, database: Database) -> None:
    """Memory rate limits count per process: N instances or workers allow N times the limit."""
    if not settings.rate_limits_enabled or not settings.rate_limit_storage.startswith("memory"):
        return
    if settings.workers > 1 or not database.is_sqlite:
        log.warning(
            "ratelimit.memory_per_process",
            workers=settings.workers,
            hint="each worker and each instance counts its own limits; set ARKGATE_RATE_LIMIT_STORAGE=redis://... "
            "to share them",
        )


def create_app_from_environment() -> FastAPI:
    """The app factory ``arkgate serve --workers N`` hands uvicorn: each worker reads the same settings."""
    from arkgate.logs import configure_logging

    settings = Settings(**{})  # from ARKGATE_* and ARKGATE_CONFIG, as the parent process read them
    configure_logging(settings.log_level, json_lines=settings.log_json)
    return create_app(settings)


def _credited(rt: Runtime, result: CreditResult, rail: str) -> None:
    _count_credit(rt, result, rail)
    if rt.webhooks is not None:
        rt.webhooks.on_credit(result, rail)


def _count_credit(rt: Runtime, result: CreditResult, rail: str) -> None:
    rt.metrics.payments.labels(rail).inc()
    rt.metrics.payment_sats.labels(rail).inc(result.amount_sats)


def _withdrawal_webhooks(webhooks: Webhooks) -> PayoutListener:
    """A payout's outcome as ``withdrawal.*`` to the session and the operator, and ``balance.low``."""

    async def emit(event: PayoutEvent) -> None:
        lowered = event.destination.lower()
        kind = "bolt12" if lowered.startswith("lno") else "ark" if event.rail == "ark" else "bolt11"
        await webhooks.emit_withdrawal(
            WithdrawalFinished(
                session_id=event.session_id,
                withdrawal_id=event.payout_id,
                status="completed" if event.type == WITHDRAWAL_COMPLETED else "failed",
                amount_sats=event.amount_sats,
                fee_sats=event.fee_sats,
                destination_kind=kind,
                reason=event.reason,
            )
        )
        if event.balance_sats is not None:
            await webhooks.check_balance(event.session_id, event.balance_sats)

    return emit
