"""The application container: everything one running gateway holds, typed, built by ``create_app``.

Routers reach it through ``runtime(request)`` (``app.state.runtime``). It sits below ``api/``,
``web/`` and ``admin/`` and above the service layer, so none of those imports another to share state.

Internal extension points are typed fields here, declared once: a part (agents, admin, web,
downloads) returns a ``Part`` from its ``install`` and ``create_app`` merges it with ``add``, the
one place that does. Third-party extensions go through the plugin hooks of ``arkgate.hookspecs``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import cast

from fastapi import Request
from fastapi.responses import Response

from arkgate.catalog.context import Services
from arkgate.catalog.registry import Catalog, Endpoint
from arkgate.cluster.leader import Leadership
from arkgate.db.engine import Database
from arkgate.errors import PaymentRequiredError
from arkgate.payments.barkd import BarkdClient
from arkgate.payments.events import EventHub
from arkgate.payments.ledger import Ledger
from arkgate.payments.payouts import PayoutService
from arkgate.payments.watcher import PaymentWatcher
from arkgate.services.l402 import L402
from arkgate.services.metrics import Metrics
from arkgate.services.ratelimit import RateLimits
from arkgate.services.sessions import SessionService
from arkgate.services.tasks import TaskTracker
from arkgate.settings import Settings
from arkgate.webhooks.service import Webhooks

# Awaited in order at start-up, after migrations and the lifespan contexts, before serving.
StartupHook = Callable[["Runtime"], Awaitable[None]]
# Entered at start-up and exited at shutdown, in reverse order (resources a part owns).
LifespanContext = Callable[[], AbstractAsyncContextManager[object]]
# Run before each /metrics scrape to set gauges read at scrape time; a failing one is skipped.
MetricsRefresher = Callable[["Runtime"], Awaitable[None]]
# The token hash a request authenticates with, None when this scheme is absent; raises on a bad token.
TokenResolver = Callable[[Request], Awaitable["str | None"]]
# The 402 answer for a caller without (enough) money: ``error`` is None when no token was sent.
Challenge = Callable[[Request, Endpoint, int, "PaymentRequiredError | None"], Awaitable[Response]]


@dataclass(frozen=True, kw_only=True)
class Part:
    """What one part of the gateway adds to its life cycle and to the meter; merged by ``Runtime.add``."""

    startup_hooks: tuple[StartupHook, ...] = ()
    lifespan_contexts: tuple[LifespanContext, ...] = ()
    metrics_refreshers: tuple[MetricsRefresher, ...] = ()
    token_resolvers: tuple[TokenResolver, ...] = ()
    challenge: Challenge | None = None


@dataclass(kw_only=True, eq=False)
class Runtime:
    settings: Settings
    catalog: Catalog
    database: Database
    ledger: Ledger
    events: EventHub
    services: Services
    limits: RateLimits
    metrics: Metrics
    leader: Leadership
    sessions: SessionService
    barkd: BarkdClient | None = None
    watcher: PaymentWatcher | None = None
    webhooks: Webhooks | None = None  # customer and operator webhooks (issue 17)
    payouts: PayoutService | None = None  # withdrawals (barkd mode); ``payouts.listeners`` hear withdrawal.*
    # Mints and verifies L402 macaroons when enabled; its shared root key is loaded at start-up.
    l402: L402 | None = None
    # Refunds and settlements that must outlive the request that started them; drained at shutdown.
    tasks: TaskTracker = field(default_factory=TaskTracker)

    # --- extension points: written by ``add`` only ----------------------------------------------
    # Tried in order; the first to name a token hash wins (the bearer resolver first: the common case).
    token_resolvers: tuple[TokenResolver, ...] = ()
    challenge: Challenge | None = None  # None: the meter's plain 402
    startup_hooks: list[StartupHook] = field(default_factory=list)
    lifespan_contexts: list[LifespanContext] = field(default_factory=list)
    metrics_refreshers: list[MetricsRefresher] = field(default_factory=list)

    # --- what /health remembers between probes -------------------------------------------------
    migration_heads: set[str] | None = None  # from the installed migration scripts, read once
    # barkd's version once read (None: it serves no API document); forgotten while barkd is
    # unreachable, as it may come back upgraded.
    barkd_version: str | None = None
    barkd_version_read: bool = False

    def add(self, part: Part) -> None:
        """Merge one part's extension points; a second 402 challenge is a wiring mistake."""
        if part.challenge is not None:
            if self.challenge is not None:
                raise RuntimeError("two parts install a 402 challenge")
            self.challenge = part.challenge
        self.token_resolvers += tuple(r for r in part.token_resolvers if r not in self.token_resolvers)
        self.startup_hooks.extend(part.startup_hooks)
        self.lifespan_contexts.extend(part.lifespan_contexts)
        self.metrics_refreshers.extend(part.metrics_refreshers)

    def base_url(self, request: Request) -> str:
        return self.settings.public_url.rstrip("/") or str(request.base_url).rstrip("/")


def runtime(request: Request) -> Runtime:
    return cast("Runtime", request.app.state.runtime)
