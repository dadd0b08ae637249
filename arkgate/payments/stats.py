"""Public usage statistics in ArkAPI's ``/v1/stats`` shape, read from the ledger's tables.

Calls are counted once per ``call_id`` (a debit and its refunds are one call) and sats are
what was kept (debits net of refunds), so a refunded call counts as a call costing 0, as
ArkAPI logs a failed call with cost 0. "Today" is the UTC day; the hourly series covers the
last 24 whole UTC hours, the current one included.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, case, func, select

from arkgate.db import tables as t
from arkgate.db.engine import Database, utcnow
from arkgate.payments.charging import PAYOUT_ENDPOINT


@dataclass(frozen=True, kw_only=True)
class PublicStats:
    calls_today: int
    sats_today: int
    active_sessions: int
    endpoint_breakdown: dict[str, int]
    hour_labels: list[str]
    calls_24h: list[int]
    sats_24h: list[int]


async def public_stats(database: Database, endpoint_ids: Iterable[str], now: datetime | None = None) -> PublicStats:
    """Today's calls and sats, active sessions, calls per endpoint today, and 24 hourly buckets."""
    now = now or utcnow()
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    first_hour = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=23)
    since = min(today, first_hour)
    kept = func.sum(case((t.calls.c.kind == "debit", t.calls.c.amount_sats), else_=-t.calls.c.amount_sats))
    per_call = (
        select(t.calls.c.endpoint_id, func.min(t.calls.c.created_at).label("at"), kept.label("sats"))
        .where(t.calls.c.created_at >= since, t.calls.c.endpoint_id != PAYOUT_ENDPOINT)  # withdrawals are not calls
        .group_by(t.calls.c.call_id, t.calls.c.endpoint_id)
    )
    active = select(func.count()).where(
        and_(t.sessions.c.status == "active", t.sessions.c.balance_sats > 0, t.sessions.c.expires_at >= now)
    )
    async with database.read() as conn:
        rows = (await conn.execute(per_call)).all()
        active_sessions = int((await conn.execute(active)).scalar_one())

    breakdown = dict.fromkeys(endpoint_ids, 0)
    calls_24h, sats_24h = [0] * 24, [0] * 24
    calls_today = sats_today = 0
    for endpoint_id, at, sats in rows:
        sats = int(sats or 0)
        if at >= today:
            calls_today += 1
            sats_today += sats
            breakdown[endpoint_id] = breakdown.get(endpoint_id, 0) + 1
        hour = int((at - first_hour).total_seconds() // 3600)
        if 0 <= hour < 24:
            calls_24h[hour] += 1
            sats_24h[hour] += sats
    return PublicStats(
        calls_today=calls_today,
        sats_today=sats_today,
        active_sessions=active_sessions,
        endpoint_breakdown=breakdown,
        hour_labels=[(first_hour + timedelta(hours=i)).strftime("%H:00") for i in range(24)],
        calls_24h=calls_24h,
        sats_24h=sats_24h,
    )
