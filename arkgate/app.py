"""``create_app(settings)``: the one place that wires the packages together."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from fastapi import FastAPI

from arkgate.api import metering, public, sessions
from arkgate.api.envelope import install_error_handlers
from arkgate.api.metrics import Metrics
from arkgate.api.ratelimit import RateLimits
from arkgate.api.runtime import Runtime
from arkgate.catalog.context import Services
from arkgate.catalog.registry import Catalog, load_catalog
from arkgate.db import migrate
from arkgate.db.engine import Database
from arkgate.payments.barkd import BarkdClient
from arkgate.payments.events import EventHub
from arkgate.payments.ledger import CreditResult, Ledger
from arkgate.payments.sweeper import CallSweeper, load_instance_id
from arkgate.payments.watcher import PaymentWatcher
from arkgate.settings import Settings

# Parts beyond the core API; each module exposes ``install(app, runtime)`` and hooks itself in
# through ``runtime.extras`` (start-up hooks, the 402 challenge, token resolvers).
PARTS = (
    "arkgate.api.downloads",
    "arkgate.api.agents",
    "arkgate.admin.routes",
    "arkgate.web.routes",
)

StartupHook = Callable[[Runtime], Awaitable[None]]


def create_app(settings: Settings, *, catalog: Catalog | None = None) -> FastAPI:
    database = Database(settings.effective_database_url)
    ledger = Ledger(
        database,
        session_ttl_s=settings.session_ttl_s,
        unpaid_ttl_s=settings.unpaid_session_ttl_s,
        idempotency_ttl_s=settings.idempotency_ttl_s,
        instance_id=load_instance_id(settings.data_dir),
    )
    sweeper = CallSweeper(ledger, interval_s=settings.call_sweep_interval_s)
    rt = Runtime(
        settings=settings,
        catalog=catalog if catalog is not None else load_catalog(),
        database=database,
        ledger=ledger,
        events=EventHub(),
        services=Services(settings),
        limits=RateLimits(settings),
        metrics=Metrics(),
    )
    if settings.payment_mode == "barkd":
        rt.barkd = BarkdClient(settings.barkd_url, settings.barkd_token_value(), timeout_s=settings.barkd_timeout_s)
        rt.watcher = PaymentWatcher(
            rt.barkd,
            ledger,
            rt.events,
            reconcile_interval_s=settings.reconcile_interval_s,
            poll_interval_s=settings.poll_interval_s,
            sync_interval_s=settings.payment_sync_interval_s,
            sync_max_interval_s=settings.payment_sync_max_interval_s,
            audit_interval_s=settings.history_audit_interval_s,
            on_credit=lambda result, rail: _count_credit(rt, result, rail),
        )
    startup_hooks: list[StartupHook] = rt.extras.setdefault("startup_hooks", [])

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await migrate.upgrade(database)
        # Calls a crash left in flight are refunded before this instance serves anything.
        await sweeper.sweep(at_startup=True)
        tasks: list[asyncio.Task[Any]] = [asyncio.create_task(sweeper.run(), name="call-sweeper")]
        if rt.watcher is not None:
            tasks.append(asyncio.create_task(rt.watcher.run(), name="payment-watcher"))
        async with contextlib.AsyncExitStack() as stack:
            for context in rt.extras.get("lifespan_contexts", []):
                await stack.enter_async_context(context())
            for hook in startup_hooks:
                await hook(rt)
            try:
                yield
            finally:
                for task in tasks + rt.extras.get("background_tasks", []):
                    task.cancel()
                for task in tasks + rt.extras.get("background_tasks", []):
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await task
                await rt.tasks.drain()  # refunds in progress commit before the database closes
                await rt.services.aclose()
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
    app.include_router(public.router)
    app.include_router(sessions.router)
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
    for name in PARTS:
        importlib.import_module(name).install(app, rt)
    return app


def _count_credit(rt: Runtime, result: CreditResult, rail: str) -> None:
    rt.metrics.payments.labels(rail).inc()
    rt.metrics.payment_sats.labels(rail).inc(result.amount_sats)
