"""Operator alerts: every alert is logged; with a webhook URL it is also POSTed, signed, with retries.

Deliveries go through the one webhook queue (``arkgate.webhooks.delivery``) that also serves
sessions' webhooks: Standard Webhooks headers (``webhook-id``, ``webhook-timestamp``,
``webhook-signature``), retries with backoff, claims across instances, redelivery. The older
``X-Arkgate-Signature: t=<unix seconds>,v1=<hex>`` header (HMAC-SHA256 of ``"<t>." + body``)
is still sent for receivers written before.
"""

from __future__ import annotations

import hmac
import json
import secrets
from typing import Any

import structlog
from sqlalchemy import insert

from arkgate.db import tables as t
from arkgate.db.engine import Database, utcnow
from arkgate.settings import Settings
from arkgate.timestamps import format_instant
from arkgate.webhooks.delivery import Deliverer
from arkgate.webhooks.signing import legacy_signature

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
    """The ``v1`` value of the legacy signature header."""
    return legacy_signature(secret, timestamp, body)


def verify(secret: str, header: str, body: bytes) -> bool:
    """Check an ``X-Arkgate-Signature`` header (what a receiver does; used by the tests too)."""
    parts = dict(item.split("=", 1) for item in header.split(",") if "=" in item)
    try:
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    return hmac.compare_digest(sign(secret, timestamp, body), parts.get("v1", ""))


class Alerter:
    """Records alerts in ``operator_log`` and queues them for the operator's webhook."""

    def __init__(self, settings: Settings, database: Database, deliverer: Deliverer | None = None) -> None:
        self.settings = settings
        self.database = database
        self._owns_deliverer = deliverer is None
        self.deliverer = deliverer or Deliverer(settings, database, instance=secrets.token_hex(8))

    @property
    def webhook_enabled(self) -> bool:
        return bool(self.settings.webhook_url)

    async def emit(self, event: str, message: str, **data: Any) -> int | None:
        """Log an alert and queue its webhook delivery; returns the delivery id (None: no webhook)."""
        now = utcnow()
        created_at = format_instant(now)
        payload: dict[str, Any] = {
            "type": f"alert.{event}",
            "timestamp": created_at,
            "event": event,
            "message": message,
            "data": data,
            "created_at": created_at,
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
        return await self.deliverer.enqueue(event, payload, session_id=None, with_id=True)

    def retry_delay(self, failed_attempts: int) -> float:
        return self.deliverer.retry_delay(failed_attempts)

    async def resume_pending(self) -> int:
        return await self.deliverer.resume_pending()

    async def resume_forever(self, interval_s: float = 15.0) -> None:
        await self.deliverer.resume_forever(interval_s)

    async def deliveries(self, limit: int = 50) -> list[dict[str, Any]]:
        """The operator's own deliveries (alerts and operator events), newest first."""
        records = await self.deliverer.deliveries(limit=limit, operator_only=True)
        return [record.view(with_session=False) for record in records]

    async def aclose(self) -> None:
        """Stop this alerter's own deliveries (a shared queue is closed by its owner)."""
        if self._owns_deliverer:
            await self.deliverer.aclose()
