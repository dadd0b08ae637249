"""Everything one running gateway holds, built by ``create_app`` and reached through ``app.state``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fastapi import Request

from arkgate.api.metrics import Metrics
from arkgate.api.ratelimit import RateLimits
from arkgate.api.tasks import TaskTracker
from arkgate.catalog.context import Services
from arkgate.catalog.registry import Catalog
from arkgate.cluster.leader import Leadership
from arkgate.db.engine import Database
from arkgate.payments.barkd import BarkdClient
from arkgate.payments.events import EventHub
from arkgate.payments.ledger import Ledger
from arkgate.payments.watcher import PaymentWatcher
from arkgate.settings import Settings
from arkgate.webhooks.service import Webhooks


@dataclass(kw_only=True)
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
    barkd: BarkdClient | None = None
    watcher: PaymentWatcher | None = None
    webhooks: Webhooks | None = None  # customer and operator webhooks (issue 17)
    extras: dict[str, Any] = field(default_factory=dict)
    # Refunds and settlements that must outlive the request that started them; drained at shutdown.
    tasks: TaskTracker = field(default_factory=TaskTracker)

    def base_url(self, request: Request) -> str:
        return self.settings.public_url.rstrip("/") or str(request.base_url).rstrip("/")


def runtime(request: Request) -> Runtime:
    return request.app.state.runtime  # type: ignore[no-any-return]
