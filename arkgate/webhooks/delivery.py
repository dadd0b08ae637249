"""The ``webhook_deliveries`` queue, for the operator and for sessions alike.

Each row is one event for one receiver (``session_id`` NULL: the operator). It is delivered at
least once: attempts are retried with exponential backoff until the receiver answers 2xx or
``webhook_max_attempts`` is spent. Several instances share the table: an instance claims a row
(``claimed_by``, ``claimed_until``) before each attempt, so one instance attempts it at a time,
and the leader resumes rows whose claim ran out (their instance died). ``dedupe_key`` is unique,
so an event noticed by two instances is queued once.

Every attempt carries the Standard Webhooks headers (``webhook-id`` stays the same across
attempts and redeliveries, so a receiver can drop duplicates). A session's URL is reached only
through the outbound guard, re-vetted on each attempt; the operator's own URL is trusted.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
import structlog
from sqlalchemy import and_, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from standardwebhooks import Webhook

from arkgate.db import tables as t
from arkgate.db.engine import Database, utcnow
from arkgate.errors import ArkgateError
from arkgate.outbound.guard import OutboundGuard
from arkgate.settings import Settings
from arkgate.timestamps import format_instant, format_optional
from arkgate.webhooks.signing import legacy_signature, new_message_id, signer_for, standard_headers

log = structlog.get_logger("arkgate.webhooks")


@dataclass(frozen=True, kw_only=True)
class Target:
    """Where and how one row is delivered."""

    url: str
    signer: Webhook | None
    guarded: bool  # a session's URL: through the outbound guard
    legacy_secret: str | None = None


@dataclass(frozen=True, kw_only=True)
class DeliveryRecord:
    id: int
    session_id: int | None
    event: str
    message_id: str | None
    status: str  # pending | delivered | failed | canceled
    attempts: int
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None
    payload: Any

    def view(self, *, with_session: bool) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "id": self.id,
            "event": self.event,
            "message_id": self.message_id,
            "status": self.status,
            "attempts": self.attempts,
            "last_error": self.last_error,
            "created_at": format_instant(self.created_at),
            "delivered_at": format_optional(self.delivered_at),
            "payload": self.payload,
        }
        if with_session:
            doc["session_id"] = self.session_id
        return doc


class Deliverer:
    """Queues and delivers webhook rows in background tasks (see the module docstring)."""

    def __init__(
        self,
        settings: Settings,
        database: Database,
        *,
        instance: str,
        guard: OutboundGuard | None = None,
    ) -> None:
        self.settings = settings
        self.database = database
        self.instance = instance
        self.guard = guard
        self._http: httpx.AsyncClient | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False

    # --- queueing -------------------------------------------------------------------------
    async def enqueue(
        self,
        event: str,
        payload: dict[str, Any],
        *,
        session_id: int | None,
        dedupe_key: str | None = None,
        with_id: bool = False,
    ) -> int | None:
        """Queue one delivery and start it; None when ``dedupe_key`` was queued already.

        ``with_id``: the payload also carries the row id (the operator's alerts always did).
        """
        now = utcnow()
        message_id = new_message_id()
        body = dict(payload)
        try:
            async with self.database.write() as conn:
                result = await conn.execute(
                    insert(t.webhook_deliveries).values(
                        event=event,
                        payload=_dump(body),
                        status="pending",
                        attempts=0,
                        created_at=now,
                        session_id=session_id,
                        message_id=message_id,
                        # Hashed: payment keys run to 400 characters, the unique column to 191.
                        dedupe_key=hashlib.sha256(dedupe_key.encode()).hexdigest() if dedupe_key else None,
                    )
                )
                key = result.inserted_primary_key
                assert key is not None
                delivery_id = int(key[0])
                if with_id:
                    body["id"] = delivery_id
                    await conn.execute(
                        update(t.webhook_deliveries)
                        .where(t.webhook_deliveries.c.id == delivery_id)
                        .values(payload=_dump(body))
                    )
        except IntegrityError:
            return None  # another instance (or an earlier notice) queued this event
        self._spawn(delivery_id)
        return delivery_id

    def retry_delay(self, failed_attempts: int) -> float:
        """Seconds to wait after ``failed_attempts`` failures: backoff, 2x backoff, 4x backoff..."""
        return float(self.settings.webhook_backoff_s * 2 ** (failed_attempts - 1))

    def _spawn(self, delivery_id: int) -> None:
        if self._closed:
            return
        task = asyncio.create_task(self._deliver(delivery_id), name=f"webhook-{delivery_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- resuming and redelivering ----------------------------------------------------------
    async def resume_pending(self) -> int:
        """Deliver what a stopped or dead instance left pending (the leader calls it periodically)."""
        wd = t.webhook_deliveries
        async with self.database.read() as conn:
            ids = [
                row.id
                for row in await conn.execute(
                    select(wd.c.id).where(
                        wd.c.status == "pending", or_(wd.c.claimed_until.is_(None), wd.c.claimed_until < utcnow())
                    )
                )
            ]
        running = {task.get_name() for task in self._tasks}
        ids = [delivery_id for delivery_id in ids if f"webhook-{delivery_id}" not in running]
        for delivery_id in ids:
            self._spawn(delivery_id)
        return len(ids)

    async def resume_forever(self, interval_s: float = 15.0) -> None:
        """Leader-only job: pick up orphaned deliveries now and every ``interval_s``."""
        while True:
            await self.resume_pending()
            await asyncio.sleep(interval_s)

    async def redeliver(self, delivery_id: int) -> bool:
        """Send a finished delivery again (same ``webhook-id``); False if unknown or still pending."""
        wd = t.webhook_deliveries
        async with self.database.write() as conn:
            result = await conn.execute(
                update(wd)
                .where(wd.c.id == delivery_id, wd.c.status != "pending")
                .values(status="pending", attempts=0, claimed_by=None, claimed_until=None, last_error=None)
            )
        if result.rowcount != 1:
            return False
        log.info("webhook.redeliver", delivery=delivery_id)
        self._spawn(delivery_id)
        return True

    # --- delivering -----------------------------------------------------------------------
    def _claim_s(self, attempts: int) -> float:
        # Long enough for the wait before this attempt and the attempt itself.
        wait = self.retry_delay(attempts) if attempts > 0 else 0.0
        return wait + float(self.settings.webhook_timeout_s) + 30.0

    async def _claim(self, delivery_id: int, attempts: int) -> bool:
        """Take (or extend) this instance's claim on a pending delivery; False if another holds it."""
        wd = t.webhook_deliveries
        now = utcnow()
        async with self.database.write() as conn:
            result = await conn.execute(
                update(wd)
                .where(
                    wd.c.id == delivery_id,
                    wd.c.status == "pending",
                    or_(wd.c.claimed_by == self.instance, wd.c.claimed_until.is_(None), wd.c.claimed_until < now),
                    and_(wd.c.attempts == attempts),
                )
                .values(claimed_by=self.instance, claimed_until=now + timedelta(seconds=self._claim_s(attempts)))
            )
        return result.rowcount == 1

    async def _target(self, session_id: int | None) -> Target | None:
        if session_id is None:
            if not self.settings.webhook_url:
                return None
            secret = self.settings.webhook_secret.get_secret_value() if self.settings.webhook_secret else ""
            return Target(
                url=self.settings.webhook_url,
                signer=signer_for(secret) if secret else None,
                guarded=False,
                legacy_secret=secret or None,
            )
        hooks = t.session_webhooks
        async with self.database.read() as conn:
            row = (
                await conn.execute(select(hooks.c.url, hooks.c.secret).where(hooks.c.session_id == session_id))
            ).one_or_none()
        if row is None:
            return None
        return Target(url=row.url, signer=signer_for(row.secret), guarded=True)

    async def _deliver(self, delivery_id: int) -> None:
        async with self.database.read() as conn:
            row = (
                await conn.execute(select(t.webhook_deliveries).where(t.webhook_deliveries.c.id == delivery_id))
            ).one_or_none()
        if row is None:
            return
        body = row.payload.encode()
        attempts = int(row.attempts)
        message_id = row.message_id or f"msg_{delivery_id}"
        while attempts < self.settings.webhook_max_attempts:
            if not await self._claim(delivery_id, attempts):
                return  # delivered, given up, or being delivered by another instance
            if attempts > 0:
                await asyncio.sleep(self.retry_delay(attempts))
            target = await self._target(row.session_id)
            if target is None:
                await self._record(delivery_id, attempts, "canceled", "no webhook configured")
                return
            attempts += 1
            error = await self._attempt(target, row.event, delivery_id, message_id, attempts, body)
            if error is None:
                await self._record(delivery_id, attempts, "delivered", None)
                return
            final = attempts >= self.settings.webhook_max_attempts
            await self._record(delivery_id, attempts, "failed" if final else "pending", error)
            log.info("webhook.attempt_failed", delivery=delivery_id, attempt=attempts, error=error)

    async def _attempt(
        self, target: Target, event: str, delivery_id: int, message_id: str, attempt: int, body: bytes
    ) -> str | None:
        """POST once; None on a 2xx, else what went wrong (never the URL: it may carry a key)."""
        timestamp = int(time.time())
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "arkgate-webhook/1",
            "X-Arkgate-Event": event,
            "X-Arkgate-Delivery": str(delivery_id),
            "X-Arkgate-Attempt": str(attempt),
        }
        if target.signer is not None:
            headers.update(standard_headers(target.signer, message_id, timestamp, body))
        if target.legacy_secret:
            # Kept for receivers written before Standard Webhooks.
            legacy = legacy_signature(target.legacy_secret, timestamp, body)
            headers["X-Arkgate-Signature"] = f"t={timestamp},v1={legacy}"
        if target.guarded:
            if self.guard is None:
                return "no outbound guard"
            try:
                result = await self.guard.fetch(
                    target.url,
                    method="POST",
                    headers=headers,
                    content=body,
                    max_bytes=4096,
                    timeout_s=self.settings.webhook_timeout_s,
                    follow_redirects=False,  # a delivery never lands where the customer did not point it
                )
            except ArkgateError as exc:
                return exc.code
            return None if 200 <= result.status_code < 300 else f"HTTP {result.status_code}"
        try:
            response = await self._client().post(target.url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            return type(exc).__name__
        return None if response.is_success else f"HTTP {response.status_code}"

    def _client(self) -> httpx.AsyncClient:
        if self._http is None:
            # The operator's own endpoint; redirects are not followed so a delivery never lands
            # somewhere the operator did not configure.
            self._http = httpx.AsyncClient(timeout=self.settings.webhook_timeout_s, follow_redirects=False)
        return self._http

    async def _record(self, delivery_id: int, attempts: int, status: str, error: str | None) -> None:
        values: dict[str, Any] = {"attempts": attempts, "status": status, "last_error": error}
        if status == "delivered":
            values["delivered_at"] = utcnow()
        async with self.database.write() as conn:
            await conn.execute(
                update(t.webhook_deliveries).where(t.webhook_deliveries.c.id == delivery_id).values(**values)
            )

    # --- the log --------------------------------------------------------------------------
    async def deliveries(
        self, *, limit: int = 50, session_id: int | None = None, operator_only: bool = False
    ) -> list[DeliveryRecord]:
        wd = t.webhook_deliveries
        query = select(wd).order_by(wd.c.id.desc()).limit(limit)
        if session_id is not None:
            query = query.where(wd.c.session_id == session_id)
        elif operator_only:
            query = query.where(wd.c.session_id.is_(None))
        async with self.database.read() as conn:
            rows = await conn.execute(query)
            return [
                DeliveryRecord(
                    id=r.id,
                    session_id=r.session_id,
                    event=r.event,
                    message_id=r.message_id,
                    status=r.status,
                    attempts=r.attempts,
                    last_error=r.last_error,
                    created_at=r.created_at,
                    delivered_at=r.delivered_at,
                    payload=json.loads(r.payload) if r.payload else None,
                )
                for r in rows
            ]

    async def aclose(self) -> None:
        """Stop pending deliveries (they stay ``pending`` and resume at the next start)."""
        self._closed = True
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._http is not None:
            await self._http.aclose()


def _dump(payload: dict[str, Any]) -> str:
    return json.dumps(payload, separators=(",", ":"), default=str)
