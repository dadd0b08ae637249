"""What the admin routes, the background task and the commands share: the runtime, alerts, state."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from starlette.applications import Starlette

from arkgate.admin.alerts import Alerter
from arkgate.cluster.mutex import DatabaseMutex
from arkgate.errors import ConflictError, InputError, NotFoundError
from arkgate.payments.barkd import BarkdClient, BarkdError
from arkgate.runtime import Runtime

T = TypeVar("T")


@dataclass(kw_only=True)
class MonitorState:
    """What the background task remembers between checks (alerts fire on changes, not every tick)."""

    connected: bool | None = None
    disconnected_since: float | None = None  # loop time
    disconnected_at: datetime | None = None
    auto_exit_started: bool = False
    exit_states: dict[str, str] = field(default_factory=dict)
    exit_errors: set[str] = field(default_factory=set)
    solvency_low: bool = False
    refresh_failing: bool = False
    pending_refresh_rounds: dict[str, list[str]] = field(default_factory=dict)
    alerted_rounds: set[str] = field(default_factory=set)
    refresh_skipped: str | None = None  # the VTXO set whose refresh the fee limit last held back
    orphans_seen: int | None = None
    last_check_at: datetime | None = None
    last_error: str | None = None
    checks: int = 0
    monitor_running: bool = False  # the leader-only monitor task is running on this instance


@dataclass(kw_only=True)
class Console:
    rt: Runtime
    alerter: Alerter
    state: MonitorState = field(default_factory=MonitorState)
    # One wallet-moving action at a time, across every instance on the database: two sweeps
    # (or a sweep and an exit) must not race.
    wallet_lock: DatabaseMutex

    exit_lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def settings(self) -> Any:
        return self.rt.settings

    @property
    def has_wallet(self) -> bool:
        return self.rt.barkd is not None

    @property
    def barkd(self) -> BarkdClient:
        if self.rt.barkd is None:
            raise ConflictError("no wallet: the gateway runs in free payment mode (no barkd)")
        return self.rt.barkd


async def barkd_call(awaitable: Awaitable[T]) -> T:
    """Run a barkd call, turning barkd's refusals into the admin API's 400/404/409."""
    try:
        return await awaitable
    except BarkdError as exc:
        message = exc.body.get("message") if isinstance(exc.body, dict) else exc.body
        text = f"barkd refused: {message}" if message else "barkd refused the request"
        if exc.http_status == 400:
            raise InputError(text) from exc
        if exc.http_status == 404:
            raise NotFoundError(text) from exc
        if exc.http_status == 422:
            raise ConflictError(f"barkd has no wallet loaded ({message})") from exc
        raise


@contextlib.asynccontextmanager
async def closing(console: Console) -> AsyncIterator[Console]:
    try:
        yield console
    finally:
        await console.alerter.aclose()


def console_of(app: Starlette) -> Console:
    """The admin part's console, kept in the app's own state by ``arkgate.admin.routes.install``."""
    console = getattr(app.state, "admin_console", None)
    if not isinstance(console, Console):
        raise RuntimeError("the admin part is not installed on this app")
    return console
