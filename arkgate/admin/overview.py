"""The overview: revenue, usage, funding, liabilities against the wallet, and 24 h hourly series.

Revenue is what calls kept: sum of debits minus sum of refunds. Liabilities are the sessions'
unspent balances. The wallet covers them with Ark funds (spendable, in a round, boarding, exiting)
plus confirmed on-chain funds (claimed exits land there); receives not yet credited to a session
are not counted on either side.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, func, select

from arkgate.admin.console import Console
from arkgate.db import tables as t
from arkgate.db.engine import utcnow
from arkgate.errors import WalletUnavailableError
from arkgate.payments.barkd import BarkdError, OnchainBalance
from arkgate.payments.charging import PAYOUT_ENDPOINT
from arkgate.timestamps import format_instant

_SIGNED = case((t.calls.c.kind == "debit", t.calls.c.amount_sats), else_=-t.calls.c.amount_sats)
_IS_DEBIT = case((t.calls.c.kind == "debit", 1), else_=0)
_IS_REFUND = case((t.calls.c.kind == "refund", 1), else_=0)
_NOT_PAYOUT = t.calls.c.endpoint_id != PAYOUT_ENDPOINT  # a withdrawal is the customer's money, not revenue


async def wallet_view(console: Console) -> dict[str, Any]:
    """barkd's balance object untouched, our categories in sats, and any error reaching barkd."""
    if not console.has_wallet:
        return {"wallet": None, "onchain": None, "assets_sats": None, "wallet_error": None}
    barkd = console.barkd
    try:
        balance = await barkd.balance()
    except (WalletUnavailableError, BarkdError) as exc:
        return {"wallet": None, "onchain": None, "assets_sats": None, "wallet_error": exc.message}
    onchain: OnchainBalance | None
    try:
        onchain = await barkd.onchain_balance()
    except BarkdError:
        onchain = None  # no on-chain wallet configured (422)
    except WalletUnavailableError as exc:
        return {"wallet": balance.raw, "onchain": None, "assets_sats": None, "wallet_error": exc.message}
    categories = {
        "spendable_sats": balance.spendable_sats,
        "needs_refresh_sats": balance.needs_refresh_sats,
        "pending_arkoor_send_sats": balance.pending_arkoor_send_sats,
        "pending_offboard_sats": balance.pending_offboard_sats,
        "pending_in_round_sats": balance.pending_in_round_sats,
        "pending_board_sats": balance.pending_board_sats,
        "pending_exit_sats": balance.pending_exit_sats,
        "pending_lightning_send_sats": balance.pending_lightning_send_sats,
        "claimable_lightning_receive_sats": balance.claimable_lightning_receive_sats,
        "onchain_confirmed_sats": onchain.confirmed_sats if onchain else 0,
        "onchain_pending_sats": onchain.trusted_pending_sats if onchain else 0,
    }
    assets = balance.assets_sats + categories["onchain_confirmed_sats"]
    return {
        "wallet": balance.raw,
        "onchain": onchain.raw if onchain else None,
        "categories": categories,
        # barkd leaves pending_exit_sat out while its exit manager is busy: the total is then a floor.
        "pending_exit_known": balance.is_pending_exit_known,
        "assets_sats": assets,
        "wallet_error": None,
    }


def _hour(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


async def build_overview(console: Console) -> dict[str, Any]:
    rt = console.rt
    now = utcnow()
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    week = now - timedelta(days=7)
    first_hour = _hour(now) - timedelta(hours=23)
    async with rt.database.read() as conn:

        async def revenue_since(since: datetime | None) -> int:
            query = select(func.coalesce(func.sum(_SIGNED), 0)).where(_NOT_PAYOUT)
            if since is not None:
                query = query.where(t.calls.c.created_at >= since)
            return int((await conn.execute(query)).scalar_one())

        revenue = {
            "today_sats": await revenue_since(today),
            "last_7d_sats": await revenue_since(week),
            "all_time_sats": await revenue_since(None),
        }
        endpoints = [
            {
                "endpoint": row.endpoint_id,
                "calls": int(row.calls or 0),
                "refunds": int(row.refunds or 0),
                "sats": int(row.sats or 0),
            }
            for row in await conn.execute(
                select(
                    t.calls.c.endpoint_id,
                    func.sum(_IS_DEBIT).label("calls"),
                    func.sum(_IS_REFUND).label("refunds"),
                    func.sum(_SIGNED).label("sats"),
                )
                .where(_NOT_PAYOUT)
                .group_by(t.calls.c.endpoint_id)
                .order_by(func.sum(_SIGNED).desc())
            )
        ]
        expired = and_(t.sessions.c.balance_sats <= 0, t.sessions.c.expires_at <= now)
        status = case((expired, "expired"), else_=t.sessions.c.status)
        sessions = {
            str(row.status): {"count": int(row.n), "balance_sats": int(row.balance or 0)}
            for row in await conn.execute(
                select(
                    status.label("status"),
                    func.count().label("n"),
                    func.sum(t.sessions.c.balance_sats).label("balance"),
                ).group_by(status)
            )
        }
        funding = {
            str(row.rail): {
                "count": int(row.n),
                "amount_sats": int(row.amount or 0),
                "fee_sats": int(row.fees or 0),
            }
            for row in await conn.execute(
                select(
                    t.payments.c.rail,
                    func.count().label("n"),
                    func.sum(t.payments.c.amount_sats).label("amount"),
                    func.sum(t.payments.c.fee_sats).label("fees"),
                ).group_by(t.payments.c.rail)
            )
        }
        attention = [
            _payment(row)
            for row in await conn.execute(
                select(t.payments)
                .where((t.payments.c.session_id.is_(None)) | (t.payments.c.is_late.is_(True)))
                .order_by(t.payments.c.id.desc())
                .limit(100)
            )
        ]
        orphan_count = int(
            (await conn.execute(select(func.count()).where(t.payments.c.session_id.is_(None)))).scalar_one()
        )
        late_count = int((await conn.execute(select(func.count()).where(t.payments.c.is_late.is_(True)))).scalar_one())
        # Bucketed here rather than in SQL: hour truncation differs across SQLite, PostgreSQL and MariaDB.
        hours = [first_hour + timedelta(hours=i) for i in range(24)]
        calls_per_hour = dict.fromkeys(hours, 0)
        sats_per_hour = dict.fromkeys(hours, 0)
        funding_per_hour = dict.fromkeys(hours, 0)
        for row in await conn.execute(
            select(t.calls.c.created_at, t.calls.c.kind, t.calls.c.amount_sats).where(
                t.calls.c.created_at >= first_hour, _NOT_PAYOUT
            )
        ):
            bucket = _hour(row.created_at)
            if bucket in calls_per_hour:
                if row.kind == "debit":
                    calls_per_hour[bucket] += 1
                    sats_per_hour[bucket] += int(row.amount_sats)
                else:
                    sats_per_hour[bucket] -= int(row.amount_sats)
        for paid in await conn.execute(
            select(t.payments.c.created_at, t.payments.c.amount_sats).where(t.payments.c.created_at >= first_hour)
        ):
            bucket = _hour(paid.created_at)
            if bucket in funding_per_hour:
                funding_per_hour[bucket] += int(paid.amount_sats)
    liabilities = await rt.ledger.liabilities_sats()
    wallet = await wallet_view(console)
    assets = wallet["assets_sats"]
    if not console.has_wallet:
        solvent: bool = True  # free mode: balances are test credit, no real sats are owed
    else:
        solvent = assets is not None and assets >= liabilities
    threshold = console.settings.solvency_alert_sats
    return {
        "generated_at": format_instant(now),
        "payment_mode": console.settings.payment_mode,
        "network": console.settings.network,
        "liabilities_sats": liabilities,
        "wallet": wallet["wallet"],
        "wallet_categories": wallet.get("categories"),
        "onchain": wallet["onchain"],
        "wallet_error": wallet["wallet_error"],
        "pending_exit_known": wallet.get("pending_exit_known", True),
        "assets_sats": assets,
        "solvent": solvent,
        "surplus_sats": None if assets is None else assets - liabilities,
        "solvency_alert_sats": threshold,
        "solvency_low": console.has_wallet and (assets is None or assets - liabilities < threshold),
        "revenue": revenue,
        "revenue_today_sats": revenue["today_sats"],
        "revenue_7d_sats": revenue["last_7d_sats"],
        "revenue_all_time_sats": revenue["all_time_sats"],
        "endpoints": endpoints,
        "sessions": sessions,
        "funding": funding,
        "receive_fees_sats": sum(item["fee_sats"] for item in funding.values()),
        "attention": {"orphan_payments": orphan_count, "late_payments": late_count, "payments": attention},
        "hourly": {
            "hours": [format_instant(hour) for hour in hours],
            "calls": [calls_per_hour[hour] for hour in hours],
            "sats": [sats_per_hour[hour] for hour in hours],
            "funding_sats": [funding_per_hour[hour] for hour in hours],
        },
    }


def _payment(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "session_id": row.session_id,
        "rail": row.rail,
        "amount_sats": int(row.amount_sats),
        "fee_sats": int(row.fee_sats or 0),
        "payment_hash": row.payment_hash,
        "ark_address": row.ark_address,
        "movement_id": row.movement_id,
        "is_late": bool(row.is_late),
        "orphan": row.session_id is None,
        "created_at": format_instant(row.created_at),
    }


async def recent_activity(console: Console, *, limit: int = 50) -> dict[str, Any]:
    """The latest call rows and payments, for the dashboard's tables."""
    async with console.rt.database.read() as conn:
        calls = [
            {
                "call_id": row.call_id,
                "session_id": row.session_id,
                "endpoint": row.endpoint_id,
                "kind": row.kind,
                "amount_sats": int(row.amount_sats),
                "reason": row.reason,
                "created_at": format_instant(row.created_at),
            }
            for row in await conn.execute(select(t.calls).order_by(t.calls.c.id.desc()).limit(limit))
        ]
        payments = [
            _payment(row)
            for row in await conn.execute(select(t.payments).order_by(t.payments.c.id.desc()).limit(limit))
        ]
    return {"calls": calls, "payments": payments}
