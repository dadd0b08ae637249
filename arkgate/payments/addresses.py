"""Ark address hygiene: a small pool for anonymous 402 challenges, and the recovery gap kept short.

barkd derives every Ark address, every invoice and every refresh output from one HD index
(BEHAVIOUR.md 2.1). A restore from the seed scans that index and stops after a gap limit of
unused keys, so a long run of addresses nobody paid (anonymous challenges, up to 20 a minute
per IP) could hide a later paid one. Two rules keep it short:

- anonymous challenges share at most ``address_pool_size`` addresses: a pooled address whose
  session lapsed unpaid goes back to the pool a day later, and a paid one leaves the pool;
- before arkgate asks barkd for a new key, if ``address_gap_limit - 1`` keys have gone unused
  since the last used one, it closes the gap with a refresh of one small VTXO: the refresh
  output lands on a freshly derived key, which then holds money.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from dataclasses import dataclass
from datetime import timedelta

import structlog
from sqlalchemy import ColumnElement, and_, exists, func, not_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from arkgate.db import tables as t
from arkgate.db.engine import Database, utcnow
from arkgate.errors import ArkgateError
from arkgate.payments.barkd import BarkdClient

log = structlog.get_logger("arkgate.addresses")

# A lapsed, unpaid session keeps its pooled address this long before another challenge gets it,
# so a payer who is merely slow is still credited to the session they were shown.
RELEASE_AFTER = timedelta(hours=24)
# After a failed gap-closing refresh (no VTXO to refresh, server away), wait before trying again.
_KEEPER_BACKOFF_S = 60.0
_DUST_SATS = 330


@dataclass(frozen=True, kw_only=True)
class GapReport:
    gap: int
    limit: int
    pool_size: int
    pooled_free: int
    pooled_total: int


class AddressBook:
    """The keys arkgate made barkd derive (table ``wallet_keys``), in derivation order."""

    def __init__(self, database: Database, barkd: BarkdClient, *, pool_size: int, gap_limit: int) -> None:
        self.database = database
        self.barkd = barkd
        self.pool_size = pool_size
        self.gap_limit = gap_limit
        self._lock = asyncio.Lock()
        self._keeper_failed_at: float | None = None
        self._last_used_id = 0

    # --- allocation ---------------------------------------------------------------------
    async def fresh_address(self) -> str:
        """A new address for a session whose caller means to pay (POST /v1/sessions)."""
        await self.close_gap()
        address = await self.barkd.next_address()
        await self._record("address", address)
        return address

    async def pooled_address(self, session_id: int) -> str | None:
        """A pooled address for an anonymous challenge's session, or None when the pool is in use."""
        await self._release_lapsed()
        for _ in range(3):  # another challenge may claim the same free row first
            async with self.database.read() as conn:
                free = (
                    await conn.execute(
                        select(t.wallet_keys.c.id, t.wallet_keys.c.value)
                        .where(_pooled_unpaid(), t.wallet_keys.c.session_id.is_(None))
                        .order_by(t.wallet_keys.c.id)
                        .limit(1)
                    )
                ).first()
                total = int(
                    (
                        await conn.execute(select(func.count()).select_from(t.wallet_keys).where(_pooled_unpaid()))
                    ).scalar_one()
                )
            if free is None:
                if total >= self.pool_size:
                    return None
                async with self._lock:  # concurrent challenges must not grow the pool past its size
                    if await self._pooled_count() < self.pool_size:
                        await self.close_gap()
                        address = await self.barkd.next_address()
                        await self._record("address", address, pooled=True)
                continue
            async with self.database.write() as conn:
                claimed = await conn.execute(
                    update(t.wallet_keys)
                    .where(t.wallet_keys.c.id == free.id, t.wallet_keys.c.session_id.is_(None))
                    .values(session_id=session_id)
                )
                if claimed.rowcount != 1:
                    continue
                await conn.execute(
                    update(t.sessions).where(t.sessions.c.id == session_id).values(ark_address=free.value)
                )
            return str(free.value)
        return None

    async def session_address(self, session_id: int) -> str | None:
        async with self.database.read() as conn:
            value = (await conn.execute(select(t.sessions.c.ark_address).where(t.sessions.c.id == session_id))).scalar()
        return None if value is None else str(value)

    async def assign(self, address: str, session_id: int) -> None:
        async with self.database.write() as conn:
            await conn.execute(
                update(t.wallet_keys).where(t.wallet_keys.c.value == address).values(session_id=session_id)
            )

    async def note_invoice(self, payment_hash: str) -> None:
        await self._record("invoice", payment_hash)

    async def note_refresh(self, reference: str) -> None:
        """A refresh output key: used as soon as the round goes through."""
        # A random suffix: round ids restart when barkd's wallet is recreated.
        await self._record("refresh", f"{reference}:{secrets.token_hex(4)}", used=True)

    # --- the gap --------------------------------------------------------------------------
    async def report(self) -> GapReport:
        async with self.database.read() as conn:
            gap, self._last_used_id = await _gap(conn, self._last_used_id)
            pooled_total = int(
                (
                    await conn.execute(select(func.count()).select_from(t.wallet_keys).where(_pooled_unpaid()))
                ).scalar_one()
            )
            pooled_free = int(
                (
                    await conn.execute(
                        select(func.count())
                        .select_from(t.wallet_keys)
                        .where(_pooled_unpaid(), t.wallet_keys.c.session_id.is_(None))
                    )
                ).scalar_one()
            )
        return GapReport(
            gap=gap, limit=self.gap_limit, pool_size=self.pool_size, pooled_free=pooled_free, pooled_total=pooled_total
        )

    async def close_gap(self) -> bool:
        """Refresh one small VTXO when the next key would reach the gap limit; True if it did."""
        async with self.database.read() as conn:
            gap, self._last_used_id = await _gap(conn, self._last_used_id)
        if gap < self.gap_limit - 1:
            return False
        now = time.monotonic()
        if self._keeper_failed_at is not None and now - self._keeper_failed_at < _KEEPER_BACKOFF_S:
            return False
        try:
            tip = await self.barkd.tip_height()
            candidates = [
                v
                for v in await self.barkd.vtxo_list()
                if v.state == "spendable"
                and v.policy_type == "pubkey"
                and (v.expiry_height or 0) > tip
                and v.amount_sats > _DUST_SATS
            ]
            if not candidates:
                raise ArkgateError("no spendable VTXO to close the address gap with")
            smallest = min(candidates, key=lambda v: v.amount_sats)
            round_info = await self.barkd.refresh_vtxos([smallest.vtxo_id])
        except ArkgateError as exc:
            # Nothing spendable means nothing a recovery could miss; try again later.
            self._keeper_failed_at = now
            log.warning("addresses.gap_not_closed", gap=gap, limit=self.gap_limit, reason=exc.message)
            return False
        self._keeper_failed_at = None
        await self.note_refresh(f"gap:{round_info.raw.get('id')}:{smallest.vtxo_id}")
        log.info("addresses.gap_closed", gap=gap, vtxo=smallest.vtxo_id)
        return True

    # --- internals -------------------------------------------------------------------------
    async def _pooled_count(self) -> int:
        async with self.database.read() as conn:
            query = select(func.count()).select_from(t.wallet_keys).where(_pooled_unpaid())
            return int((await conn.execute(query)).scalar_one())

    async def _record(self, kind: str, value: str, *, pooled: bool = False, used: bool = False) -> None:
        async with self.database.write() as conn:
            await conn.execute(
                t.wallet_keys.insert().values(
                    kind=kind, value=value, pooled=pooled, used=used, session_id=None, created_at=utcnow()
                )
            )

    async def _release_lapsed(self) -> None:
        """Pooled addresses whose session lapsed unpaid over a day ago go back to the pool."""
        cutoff = utcnow() - RELEASE_AFTER
        async with self.database.read() as conn:
            rows = (
                await conn.execute(
                    select(t.wallet_keys.c.id, t.wallet_keys.c.session_id)
                    .join(t.sessions, t.sessions.c.id == t.wallet_keys.c.session_id)
                    .where(_pooled_unpaid(), t.sessions.c.funded_at.is_(None), t.sessions.c.expires_at < cutoff)
                )
            ).all()
        for row in rows:
            async with self.database.write() as conn:
                await conn.execute(
                    update(t.sessions)
                    .where(t.sessions.c.id == row.session_id, t.sessions.c.funded_at.is_(None))
                    .values(ark_address=None)
                )
                await conn.execute(update(t.wallet_keys).where(t.wallet_keys.c.id == row.id).values(session_id=None))


def _used() -> ColumnElement[bool]:
    """A key holds money: a refresh output, or an address or invoice the ledger has a payment for.

    Correlated look-ups on the payments indexes, so the cost follows the few keys examined.
    """
    paid_address = exists().where(t.payments.c.ark_address == t.wallet_keys.c.value)
    paid_invoice = exists().where(t.payments.c.payment_hash == t.wallet_keys.c.value)
    return or_(t.wallet_keys.c.used.is_(True), paid_address, paid_invoice)


def _pooled_unpaid() -> ColumnElement[bool]:
    return and_(t.wallet_keys.c.pooled.is_(True), not_(_used()))


async def _gap(conn: AsyncConnection, since_id: int) -> tuple[int, int]:
    """(keys after the last used one, that key's id); only keys after ``since_id`` are examined.

    A used key stays used, so the caller keeps the last used id and passes it back.
    """
    newer = t.wallet_keys.c.id > since_id
    last = (await conn.execute(select(func.max(t.wallet_keys.c.id)).where(newer, _used()))).scalar()
    last_used = since_id if last is None else int(last)
    query = select(func.count()).select_from(t.wallet_keys).where(t.wallet_keys.c.id > last_used)
    return int((await conn.execute(query)).scalar_one()), last_used
