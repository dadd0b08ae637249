"""Retention: what the database forgets, and when, without ever changing a balance.

- Stored idempotent answers are kept for the idempotency window only.
- Never-funded sessions (no payment, no call, zero balance) and their invoices are deleted
  ``unfunded_retention_s`` after they lapse; so are expired or canceled invoices of funded
  sessions. A payment that still arrived later is credited as an orphan the operator sees.
- Call receipts older than ``call_receipt_retention_s`` are folded into one aggregate
  ``debit`` row per session (endpoint ``retention``) in the same transaction that deletes
  them, so every balance still equals its ledger sum. Payments are never deleted.
- Webhook deliveries that ended (delivered, or failed for good) are deleted
  ``webhook_delivery_retention_s`` after they ended; a pending one is never touched.

``prune`` is one pass; ``pruning_loop`` repeats it. Both are plain functions so the job can
be run on one instance only (or from a command) without the HTTP app.
"""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog
from sqlalchemy import and_, delete, exists, insert, or_, select, update

from arkgate.db import tables as t
from arkgate.db.engine import Database, utcnow
from arkgate.settings import Settings

log = structlog.get_logger("arkgate.retention")

BATCH = 500  # rows per transaction, so pruning never holds the write lock for long
AGGREGATE_ENDPOINT = "retention"


@dataclass(frozen=True, kw_only=True)
class Retention:
    idempotency_ttl_s: int
    unfunded_retention_s: int
    call_receipt_retention_s: int  # 0: keep every receipt
    webhook_delivery_retention_s: int = 0  # 0: keep every delivery

    @classmethod
    def from_settings(cls, settings: Settings) -> Retention:
        return cls(
            idempotency_ttl_s=settings.idempotency_ttl_s,
            unfunded_retention_s=settings.unfunded_retention_s,
            call_receipt_retention_s=settings.call_receipt_retention_s,
            webhook_delivery_retention_s=settings.webhook_delivery_retention_s,
        )


@dataclass(frozen=True, kw_only=True)
class PruneResult:
    idempotency_answers: int = 0
    sessions: int = 0
    invoices: int = 0
    calls_folded: int = 0
    webhook_deliveries: int = 0


async def prune(database: Database, retention: Retention, *, now: datetime | None = None) -> PruneResult:
    """One retention pass; ``now`` is naive UTC like the tables (tests move it forward)."""
    now = now or utcnow()
    answers = await _prune_idempotency(database, now - timedelta(seconds=retention.idempotency_ttl_s))
    lapsed = now - timedelta(seconds=retention.unfunded_retention_s)
    sessions, session_invoices = await _prune_unfunded_sessions(database, lapsed)
    invoices = await _prune_invoices(database, lapsed)
    folded = 0
    if retention.call_receipt_retention_s > 0:
        folded = await _fold_calls(database, now - timedelta(seconds=retention.call_receipt_retention_s))
    deliveries = 0
    if retention.webhook_delivery_retention_s > 0:
        deliveries = await _prune_webhook_deliveries(
            database, now - timedelta(seconds=retention.webhook_delivery_retention_s)
        )
    result = PruneResult(
        idempotency_answers=answers,
        sessions=sessions,
        invoices=session_invoices + invoices,
        calls_folded=folded,
        webhook_deliveries=deliveries,
    )
    if result != PruneResult():
        log.info(
            "retention.pruned",
            idempotency_answers=result.idempotency_answers,
            sessions=result.sessions,
            invoices=result.invoices,
            calls_folded=result.calls_folded,
            webhook_deliveries=result.webhook_deliveries,
        )
    return result


async def pruning_loop(database: Database, retention: Retention, *, interval_s: float) -> None:
    """Prune now and then every ``interval_s``; a failed pass is logged and retried next time."""
    while True:
        try:
            await prune(database, retention)
        except Exception:
            log.exception("retention.failed")
        await asyncio.sleep(interval_s)


async def _prune_idempotency(database: Database, cutoff: datetime) -> int:
    total = 0
    while True:
        async with database.write() as conn:
            ids = [
                row.id
                for row in await conn.execute(
                    select(t.idempotency_keys.c.id).where(t.idempotency_keys.c.created_at < cutoff).limit(BATCH)
                )
            ]
            if ids:
                await conn.execute(delete(t.idempotency_keys).where(t.idempotency_keys.c.id.in_(ids)))
        total += len(ids)
        if len(ids) < BATCH:
            return total


async def _prune_unfunded_sessions(database: Database, lapsed_before: datetime) -> tuple[int, int]:
    s = t.sessions
    never_funded = and_(
        s.c.funded_at.is_(None),
        s.c.balance_sats == 0,
        s.c.expires_at < lapsed_before,
        ~exists().where(t.payments.c.session_id == s.c.id),
        ~exists().where(t.calls.c.session_id == s.c.id),
    )
    sessions = invoices = 0
    while True:
        async with database.write() as conn:
            ids = [row.id for row in await conn.execute(select(s.c.id).where(never_funded).limit(BATCH))]
            if ids:
                invoices += int(
                    (await conn.execute(delete(t.invoices).where(t.invoices.c.session_id.in_(ids)))).rowcount or 0
                )
                await conn.execute(delete(t.idempotency_keys).where(t.idempotency_keys.c.session_id.in_(ids)))
                await conn.execute(delete(t.session_origins).where(t.session_origins.c.session_id.in_(ids)))
                await conn.execute(delete(t.session_webhooks).where(t.session_webhooks.c.session_id.in_(ids)))
                # A derived wallet key stays on record (address gap tracking); it just has no session now.
                await conn.execute(
                    update(t.wallet_keys).where(t.wallet_keys.c.session_id.in_(ids)).values(session_id=None)
                )
                await conn.execute(delete(s).where(s.c.id.in_(ids)))
        sessions += len(ids)
        if len(ids) < BATCH:
            return sessions, invoices


async def _prune_invoices(database: Database, lapsed_before: datetime) -> int:
    total = 0
    while True:
        async with database.write() as conn:
            hashes = [
                row.payment_hash
                for row in await conn.execute(
                    select(t.invoices.c.payment_hash)
                    .where(t.invoices.c.status != "paid", t.invoices.c.expires_at < lapsed_before)
                    .limit(BATCH)
                )
            ]
            if hashes:
                await conn.execute(delete(t.invoices).where(t.invoices.c.payment_hash.in_(hashes)))
        total += len(hashes)
        if len(hashes) < BATCH:
            return total


async def _prune_webhook_deliveries(database: Database, ended_before: datetime) -> int:
    d = t.webhook_deliveries
    ended = or_(
        and_(d.c.status == "delivered", d.c.delivered_at < ended_before),
        # A failed delivery records no end time; its last attempt is at most the retry schedule after creation.
        and_(d.c.status == "failed", d.c.created_at < ended_before),
    )
    total = 0
    while True:
        async with database.write() as conn:
            ids = [row.id for row in await conn.execute(select(d.c.id).where(ended).limit(BATCH))]
            if ids:
                await conn.execute(delete(d).where(d.c.id.in_(ids)))
        total += len(ids)
        if len(ids) < BATCH:
            return total


async def _fold_calls(database: Database, cutoff: datetime) -> int:
    """Fold call rows older than ``cutoff`` into one aggregate row per session, atomically."""
    c = t.calls
    total = 0
    while True:
        async with database.write() as conn:
            rows = (
                await conn.execute(
                    select(c.c.id, c.c.session_id, c.c.kind, c.c.amount_sats, c.c.created_at)
                    .where(c.c.created_at < cutoff, c.c.endpoint_id != AGGREGATE_ENDPOINT)
                    .order_by(c.c.id)
                    .limit(BATCH)
                )
            ).all()
            if rows:
                net: dict[int, int] = {}
                count: dict[int, int] = {}
                for row in rows:
                    net[row.session_id] = net.get(row.session_id, 0) + _signed(row.kind, row.amount_sats)
                    count[row.session_id] = count.get(row.session_id, 0) + 1
                previous = (
                    await conn.execute(
                        select(c.c.id, c.c.session_id, c.c.kind, c.c.amount_sats, c.c.reason).where(
                            c.c.endpoint_id == AGGREGATE_ENDPOINT, c.c.session_id.in_(list(net))
                        )
                    )
                ).all()
                for row in previous:
                    net[row.session_id] += _signed(row.kind, row.amount_sats)
                    count[row.session_id] += _folded_count(row.reason)
                old_ids = [row.id for row in rows] + [row.id for row in previous]
                await conn.execute(delete(c).where(c.c.id.in_(old_ids)))
                aggregates = [
                    {
                        "call_id": secrets.token_hex(16),
                        "session_id": session_id,
                        "endpoint_id": AGGREGATE_ENDPOINT,
                        # A refund never exceeds its debit, so whole calls net to a debit.
                        "kind": "debit" if amount >= 0 else "refund",
                        "amount_sats": abs(amount),
                        "reason": f"{count[session_id]} rows",
                        "created_at": cutoff,
                    }
                    for session_id, amount in net.items()
                ]
                await conn.execute(insert(c), aggregates)
        total += len(rows)
        if len(rows) < BATCH:
            return total


def _signed(kind: str, amount_sats: int) -> int:
    return int(amount_sats) if kind == "debit" else -int(amount_sats)


def _folded_count(reason: str | None) -> int:
    head = (reason or "").split(" ", 1)[0]
    return int(head) if head.isdigit() else 0
