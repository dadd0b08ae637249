"""``refund_to``: where a session's remainder is paid automatically once the session expires.

The payout itself is an ordinary one (``PayoutService.withdraw``, purpose ``refund_to``): the
conditional debit of the whole balance makes it happen once, even if two jobs raced. A session
whose automatic refund failed is not tried again (the operator sees the failed payout).
"""

from __future__ import annotations

import asyncio
from datetime import datetime

import structlog
from sqlalchemy import and_, exists, insert, select, update

from arkgate.db import tables as t
from arkgate.db.engine import Database, utcnow
from arkgate.errors import ArkgateError, InputError
from arkgate.payments.payouts import ARK_DUST_SATS, PayoutService, parse_target

log = structlog.get_logger("arkgate.refund_to")


def validate_refund_to(value: str) -> str:
    """An Ark address (an invoice would expire long before the session does)."""
    message = "refund_to must be an Ark address (ark1... / tark1...): an invoice expires too soon"
    try:
        target = parse_target(value)
    except InputError as exc:
        raise InputError(message) from exc
    if target.rail != "ark":
        raise InputError(message)
    return target.value


async def set_refund_to(database: Database, session_id: int, refund_to: str | None) -> None:
    now = utcnow()
    prefs = t.session_payout_prefs
    async with database.write() as conn:
        result = await conn.execute(
            update(prefs).where(prefs.c.session_id == session_id).values(refund_to=refund_to, updated_at=now)
        )
        if not result.rowcount:
            await conn.execute(insert(prefs).values(session_id=session_id, refund_to=refund_to, updated_at=now))


async def refund_to_of(database: Database, session_id: int) -> str | None:
    prefs = t.session_payout_prefs
    async with database.read() as conn:
        row = (await conn.execute(select(prefs.c.refund_to).where(prefs.c.session_id == session_id))).first()
    return None if row is None else row.refund_to


async def due_refunds(database: Database, now: datetime | None = None) -> list[tuple[int, str]]:
    """(session id, refund_to) of expired sessions with a sendable balance and no refund_to payout yet."""
    s, prefs, payouts = t.sessions, t.session_payout_prefs, t.payouts
    tried = exists().where(and_(payouts.c.session_id == s.c.id, payouts.c.purpose == "refund_to"))
    query = (
        select(s.c.id, prefs.c.refund_to)
        .select_from(s.join(prefs, prefs.c.session_id == s.c.id))
        .where(
            prefs.c.refund_to.is_not(None),
            s.c.balance_sats >= ARK_DUST_SATS,  # less cannot be sent to an Ark address
            s.c.expires_at < (now or utcnow()),
            s.c.status != "closed",
            ~tried,
        )
        .order_by(s.c.id)
        .limit(100)
    )
    async with database.read() as conn:
        return [(int(row.id), str(row.refund_to)) for row in await conn.execute(query)]


async def refund_expired(service: PayoutService) -> int:
    """Pay out every due remainder once; returns how many payouts were started."""
    started = 0
    for session_id, destination in await due_refunds(service.ledger.db):
        session = await service.ledger.session_by_id(session_id)
        if session is None:
            continue
        try:
            result = await service.withdraw(session, destination, None, purpose="refund_to")
        except ArkgateError as exc:
            log.warning("refund_to.failed", session_id=session_id, error=exc.message)
            continue
        started += 1
        log.info("refund_to.paid", session_id=session_id, payout_id=result.payout_id, state=result.state)
    return started


async def refund_expired_forever(service: PayoutService) -> None:
    """The leader-only job (``rt.leader.register("refund-to", ...)``)."""
    while True:
        try:
            await refund_expired(service)
        except Exception:  # the next round tries again
            log.exception("refund_to.round_failed")
        await asyncio.sleep(service.policy.recover_interval_s)
