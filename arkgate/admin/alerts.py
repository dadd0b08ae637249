"""Operator alerts: every alert is logged; with a webhook URL it is also POSTed, signed, with retries.

Signature: ``X-Arkgate-Signature: t=<unix seconds>,v1=<hex>`` where ``<hex>`` is
HMAC-SHA256(webhook_secret, ``"<t>." + raw body``). Signing the timestamp with the body lets
a receiver refuse replays of old deliveries. Each attempt is counted in ``webhook_deliveries``.

Several instances share the table: an instance claims a delivery (``claimed_by``,
``claimed_until``) before each attempt, so one delivery is attempted by one instance at a
time. The leader resumes deliveries whose claim ran out (their instance died).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import secrets
import time
from datetime import timedelta
from typing import Any

import httpx
import structlog
from sqlalchemy import and_, insert, or_, select, update

from arkgate.db import tables as t
from arkgate.db.engine import Database, utcnow
from arkgate.settings import Settings

log = structlog.get_logger("arkgate.admin.alerts")

# The events an operator can receive; also the values of ``webhook_deliveries.event``.
EVENTS = (
    "server_disconnected",
    "server_reconnected",
    "refresh_failed",
    "exit_started",
    "exit_state_changed",
    "exit_failed",
    "solvency_low",
    "orphan_payment",
    "sweep_failed",
    "test",
)


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The ``v1`` value of the signature header."""
    return hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()


def verify(secret: str, header: str, body: bytes) -> bool:
    """Check an ``X-Arkgate-Signature`` header (what a receiver does; used by the tests too)."""
    parts = dict(item.split("=", 1) for item in header.split(",") if "=" in item)
    try:
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    return hmac.compare_digest(sign(secret, timestamp, body), parts.get("v1", ""))


class Alerter:
    """Records alerts in ``operator_log`` and delivers them to the webhook in background tasks."""

    def __init__(self, settings: Settings, database: Database) -> None:
        self.settings = settings
        self.database = database
        self._http: httpx.AsyncClient | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False
        self.instance = secrets.token_hex(8)

    @property
    def webhook_enabled(self) -> bool:
        return bool(self.settings.webhook_url)

    def _client(self) -> httpx.AsyncClient:
        if self._http is None:
            # The webhook is the operator's own endpoint; redirects are not followed so a
            # delivery never lands somewhere the operator did not configure.
            self._http = httpx.AsyncClient(timeout=self.settings.webhook_timeout_s, follow_redirects=False)
        return self._http

    async def emit(self, event: str, message: str, **data: Any) -> int | None:
        """Log an alert and queue its webhook delivery; returns the delivery id (None: no webhook)."""
        now = utcnow()
        payload: dict[str, Any] = {
            "event": event,
            "message": message,
            "data": data,
            "created_at": now.isoformat() + "Z",
        }
        log.warning("operator.alert", alert_event=event, alert_message=message)
        async with self.database.write() as conn:
            await conn.execute(
                insert(t.operator_log).values(
                    kind="alert",
                    status=event,
                    amount_sats=data.get("amount_sats") if isinstance(data.get("amount_sats"), int) else None,
                    detail=json.dumps({"message": message, **data}, default=str),
                    created_at=now,
                )
            )
            if not self.webhook_enabled:
                return None
            result = await conn.execute(
                insert(t.webhook_deliveries).values(
                    event=event, payload="", status="pending", attempts=0, created_at=now
                )
            )
            key = result.inserted_primary_key
            assert key is not None
            delivery_id = int(key[0])
            payload["id"] = delivery_id
            await conn.execute(
                update(t.webhook_deliveries)
                .where(t.webhook_deliveries.c.id == delivery_id)
                .values(payload=json.dumps(payload, separators=(",", ":"), default=str))
            )
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

    async def resume_pending(self) -> int:
        """Deliver what a stopped or dead instance left pending (the leader calls it periodically)."""
        if not self.webhook_enabled:
            return 0
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

    async def _deliver(self, delivery_id: int) -> None:
        async with self.database.read() as conn:
            row = (
                await conn.execute(select(t.webhook_deliveries).where(t.webhook_deliveries.c.id == delivery_id))
            ).one_or_none()
        if row is None:
            return
        body = row.payload.encode()
        attempts = int(row.attempts)
        secret = self.settings.webhook_secret.get_secret_value() if self.settings.webhook_secret else ""
        while attempts < self.settings.webhook_max_attempts:
            if not await self._claim(delivery_id, attempts):
                return  # delivered, given up, or being delivered by another instance
            if attempts > 0:
                await asyncio.sleep(self.retry_delay(attempts))
            attempts += 1
            timestamp = int(time.time())
            headers = {
                "Content-Type": "application/json",
                "User-Agent": "arkgate-webhook/1",
                "X-Arkgate-Event": row.event,
                "X-Arkgate-Delivery": str(delivery_id),
                "X-Arkgate-Attempt": str(attempts),
            }
            if secret:
                headers["X-Arkgate-Signature"] = f"t={timestamp},v1={sign(secret, timestamp, body)}"
            error: str | None = None
            try:
                response = await self._client().post(self.settings.webhook_url, content=body, headers=headers)
                if response.is_success:
                    await self._record(delivery_id, attempts, "delivered", None)
                    return
                error = f"HTTP {response.status_code}"
            except httpx.HTTPError as exc:
                error = type(exc).__name__  # never the URL: it may carry a key
            final = attempts >= self.settings.webhook_max_attempts
            await self._record(delivery_id, attempts, "failed" if final else "pending", error)
            log.info("webhook.attempt_failed", delivery=delivery_id, attempt=attempts, error=error)

    async def _record(self, delivery_id: int, attempts: int, status: str, error: str | None) -> None:
        values: dict[str, Any] = {"attempts": attempts, "status": status, "last_error": error}
        if status == "delivered":
            values["delivered_at"] = utcnow()
        async with self.database.write() as conn:
            await conn.execute(
                update(t.webhook_deliveries).where(t.webhook_deliveries.c.id == delivery_id).values(**values)
            )

    async def deliveries(self, limit: int = 50) -> list[dict[str, Any]]:
        async with self.database.read() as conn:
            rows = await conn.execute(
                select(t.webhook_deliveries).order_by(t.webhook_deliveries.c.id.desc()).limit(limit)
            )
            return [
                {
                    "id": r.id,
                    "event": r.event,
                    "status": r.status,
                    "attempts": r.attempts,
                    "last_error": r.last_error,
                    "created_at": r.created_at,
                    "delivered_at": r.delivered_at,
                    "payload": json.loads(r.payload) if r.payload else None,
                }
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
