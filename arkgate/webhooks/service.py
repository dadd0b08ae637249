"""``Webhooks``: what the gateway calls when something happens to a session's money.

Hooks from synchronous places (the watcher's credit callback, the ledger's refund hook) start a
task; the event reaches the session's callback URL when it has one, and the operator's webhook
for ``OPERATOR_EVENTS``. ``emit_withdrawal`` is the payouts part's entry point.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Coroutine
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import and_, or_, select, update

from arkgate.db import tables as t
from arkgate.db.engine import Database, utcnow
from arkgate.outbound.guard import OutboundGuard
from arkgate.payments.charging import Settled
from arkgate.payments.kinds import as_credit_rail
from arkgate.payments.ledger import CreditResult
from arkgate.settings import Settings
from arkgate.timestamps import to_naive_utc
from arkgate.webhooks import events as ev
from arkgate.webhooks.delivery import Deliverer

log = structlog.get_logger("arkgate.webhooks")

NO_THRESHOLD_TTL_S = 5.0


def webhook_guard(settings: Settings) -> OutboundGuard:
    """The outbound guard for callback URLs: public addresses, plus ``webhook_allow_networks`` only."""
    return OutboundGuard(settings.model_copy(update={"unsafe_allow_private_targets": settings.webhook_allow_networks}))


class Webhooks:
    def __init__(self, settings: Settings, database: Database, *, instance: str) -> None:
        self.settings = settings
        self.database = database
        self.guard = webhook_guard(settings)
        self.deliverer = Deliverer(settings, database, instance=instance, guard=self.guard)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._credit_cursor: int | None = None  # the last payment id catch_up_credits looked at
        # Sessions known to have no balance threshold, until when (monotonic): most sessions set
        # none, and a paid call should not cost them a read. Another instance's change shows
        # within NO_THRESHOLD_TTL_S; this instance's own changes call ``forget``.
        self._no_threshold_until: dict[int, float] = {}

    @property
    def operator_enabled(self) -> bool:
        return bool(self.settings.webhook_url)

    # --- publishing -----------------------------------------------------------------------
    async def publish(self, event: ev.WebhookEvent, *, happened_at: datetime | None = None) -> list[int]:
        """Queue ``event`` for its session's webhook and, for operator events, the operator's.

        ``happened_at``: a past event goes to a session's webhook only if it was registered by then.
        """
        queued: list[int] = []
        now = utcnow()
        registered_at = await self._webhook_since(event.session_id)
        if registered_at is not None and (happened_at is None or registered_at <= happened_at):
            delivery = await self.deliverer.enqueue(
                event.type,
                ev.body(event, now),
                session_id=event.session_id,
                dedupe_key=f"s:{event.type}:{event.dedupe_key}",
            )
            if delivery is not None:
                queued.append(delivery)
        if self.operator_enabled and event.type in ev.OPERATOR_EVENTS:
            delivery = await self.deliverer.enqueue(
                event.type,
                ev.body(event, now, include_session=True),
                session_id=None,
                dedupe_key=f"o:{event.type}:{event.dedupe_key}",
            )
            if delivery is not None:
                queued.append(delivery)
        return queued

    async def emit_withdrawal(self, withdrawal: ev.WithdrawalFinished) -> list[int]:
        """``withdrawal.completed`` / ``withdrawal.failed`` to the session and the operator, once per payout."""
        log.info("webhook.withdrawal", session_id=withdrawal.session_id, status=withdrawal.status)
        return await self.publish(withdrawal)

    def publish_soon(self, event: ev.WebhookEvent) -> None:
        """From synchronous hooks: queue in a task (errors are logged, never raised into the caller)."""
        self._spawn(self.publish(event), name=f"webhook-event-{event.type}")

    def _spawn(self, work: Coroutine[Any, Any, Any], *, name: str) -> None:
        task = asyncio.create_task(self._logged(work), name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _logged(self, work: Coroutine[Any, Any, Any]) -> None:
        try:
            await work
        except Exception:
            log.exception("webhook.publish_failed")

    async def _webhook_since(self, session_id: int) -> datetime | None:
        """When the session's webhook was registered (None: it has none)."""
        hooks = t.session_webhooks
        async with self.database.read() as conn:
            found = await conn.execute(select(hooks.c.created_at).where(hooks.c.session_id == session_id))
            row = found.first()
            return None if row is None else row.created_at

    # --- hooks ----------------------------------------------------------------------------
    def on_credit(self, result: CreditResult, rail: str) -> None:
        """The watcher credited a payment (exactly once): ``payment.credited``, and re-arm ``balance.low``."""
        if not result.credited or result.session_id is None:
            return
        event = ev.PaymentCredited(
            session_id=result.session_id,
            payment_key=result.payment_key or f"{rail}:{result.session_id}:{to_naive_utc(utcnow()).isoformat()}",
            rail=as_credit_rail(rail),
            amount_sats=result.amount_sats,
            balance_sats=result.balance_sats,
            is_late=result.is_late,
        )
        self.publish_soon(event)
        if result.balance_sats is not None:
            self._spawn(self.check_balance(result.session_id, result.balance_sats), name="webhook-balance")

    def on_refund(self, settled: Settled, reason: str | None) -> None:
        """The ledger refunded (part of) a call: ``call.refunded``."""
        self.publish_soon(
            ev.CallRefunded(
                session_id=settled.session_id,
                call_id=settled.call_id,
                endpoint_id=settled.endpoint_id,
                refunded_sats=settled.refunded_sats,
                reason=reason,
                balance_sats=settled.balance_sats,
            )
        )

    def after_charge(self, session_id: int, balance_sats: int) -> None:
        """A call was charged: ``balance.low`` if this charge crossed the session's threshold."""
        # Decided here from the cache when it can be: most sessions set no threshold, and a task per
        # paid call only to learn that cost the call path more than the check itself.
        if self._no_threshold_until.get(session_id, 0.0) > time.monotonic():
            return
        self._spawn(self.check_balance(session_id, balance_sats), name="webhook-balance")

    def forget(self, session_id: int) -> None:
        """The session's webhook or threshold changed here: read it again at the next charge."""
        self._no_threshold_until.pop(session_id, None)

    async def check_balance(self, session_id: int, balance_sats: int) -> bool:
        """Fire ``balance.low`` once per crossing below the threshold; re-arm once back at or above it."""
        if self._no_threshold_until.get(session_id, 0.0) > time.monotonic():
            return False
        hooks = t.session_webhooks
        async with self.database.read() as conn:
            row = (
                await conn.execute(
                    select(hooks.c.low_balance_sats, hooks.c.low_notified).where(hooks.c.session_id == session_id)
                )
            ).one_or_none()
        if row is None or row.low_balance_sats is None:
            if len(self._no_threshold_until) > 10_000:
                self._no_threshold_until.clear()
            self._no_threshold_until[session_id] = time.monotonic() + NO_THRESHOLD_TTL_S
            return False
        threshold = int(row.low_balance_sats)
        if balance_sats >= threshold:
            if row.low_notified:
                async with self.database.write() as conn:
                    await conn.execute(update(hooks).where(hooks.c.session_id == session_id).values(low_notified=False))
            return False
        if row.low_notified:
            return False
        # One conditional write decides which charge (on which instance) announces this crossing.
        now = utcnow()
        async with self.database.write() as conn:
            claimed = await conn.execute(
                update(hooks)
                .where(hooks.c.session_id == session_id, hooks.c.low_notified.is_(False))
                .values(low_notified=True, updated_at=now)
            )
        if claimed.rowcount != 1:
            return False
        await self.publish(
            ev.BalanceLow(
                session_id=session_id,
                balance_sats=balance_sats,
                threshold_sats=threshold,
                crossing=to_naive_utc(now).isoformat(),  # the form keys already stored use
            )
        )
        return True

    # --- session.expiring (leader job) ----------------------------------------------------------
    async def scan_expiring(self) -> int:
        """Announce each session with a webhook that expires within ``webhook_expiring_before_s``, once.

        Calls push a session's expiry forward, so the announcement is re-armed only when the expiry
        has moved beyond the window again (a new lease of life), not at every call near the end.
        """
        hooks, sessions = t.session_webhooks, t.sessions
        now = utcnow()
        horizon = now + timedelta(seconds=self.settings.webhook_expiring_before_s)
        async with self.database.read() as conn:
            rows = (
                await conn.execute(
                    select(sessions.c.id, sessions.c.expires_at, sessions.c.balance_sats, hooks.c.expiring_notified_for)
                    .join(hooks, hooks.c.session_id == sessions.c.id)
                    .where(
                        sessions.c.expires_at > now,
                        or_(
                            and_(sessions.c.expires_at <= horizon, hooks.c.expiring_notified_for.is_(None)),
                            and_(sessions.c.expires_at > horizon, hooks.c.expiring_notified_for.is_not(None)),
                        ),
                    )
                )
            ).all()
        announced = 0
        for row in rows:
            if row.expires_at > horizon:  # extended well past the warning: warn again next time
                async with self.database.write() as conn:
                    await conn.execute(
                        update(hooks).where(hooks.c.session_id == row.id).values(expiring_notified_for=None)
                    )
                continue
            # One conditional write decides which scan (on which instance) announces it.
            async with self.database.write() as conn:
                claimed = await conn.execute(
                    update(hooks)
                    .where(hooks.c.session_id == row.id, hooks.c.expiring_notified_for.is_(None))
                    .values(expiring_notified_for=row.expires_at)
                )
            if claimed.rowcount != 1:
                continue
            await self.publish(
                ev.SessionExpiring(session_id=row.id, expires_at=row.expires_at, balance_sats=int(row.balance_sats))
            )
            announced += 1
        return announced

    async def catch_up_credits(self, *, min_age_s: float = 5.0) -> int:
        """Queue ``payment.credited`` for credits whose announcement a crash lost (dedupe drops the rest).

        The watcher announces a credit just after it commits; an instance that dies in between
        leaves it unannounced. The leader looks at credits at least ``min_age_s`` old, from the
        last hour at its start and then from where it left off.
        """
        payments = t.payments
        now = utcnow()
        query = (
            select(payments)
            .where(
                payments.c.session_id.is_not(None),
                payments.c.rail != "free",
                payments.c.created_at <= now - timedelta(seconds=min_age_s),
            )
            .order_by(payments.c.id)
            .limit(500)
        )
        if self._credit_cursor is None:
            query = query.where(payments.c.created_at >= now - timedelta(hours=1))
        else:
            query = query.where(payments.c.id > self._credit_cursor)
        async with self.database.read() as conn:
            rows = (await conn.execute(query)).all()
        queued = 0
        for row in rows:
            event = ev.PaymentCredited(
                session_id=int(row.session_id),
                payment_key=row.payment_key,
                rail=as_credit_rail(row.rail),
                amount_sats=int(row.amount_sats),
                balance_sats=None,  # not known after the fact
                is_late=bool(row.is_late),
            )
            queued += len(await self.publish(event, happened_at=row.created_at))
            self._credit_cursor = int(row.id)
        if queued:
            log.warning("webhook.credits_caught_up", count=queued)
        return queued

    async def scans_forever(self) -> None:
        """Leader-only job; its first scan waits one interval so start-up stays as quick as before."""
        while True:
            await asyncio.sleep(self.settings.webhook_scan_interval_s)
            for scan in (self.scan_expiring, self.catch_up_credits):
                try:
                    await scan()
                except Exception:
                    log.exception("webhook.scan_failed", scan=scan.__name__)

    async def drain(self) -> None:
        """Let queued publishes finish (they are quick: one insert each)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def aclose(self) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.drain(), timeout=5.0)
        for task in list(self._tasks):
            task.cancel()
        await self.deliverer.aclose()
