"""Sub-keys (issue 17): child tokens that spend from their session's balance within caps.

A sub-key is ``ak_`` + 256 bits like a session token, stored only as its SHA-256 and shown
once. Its limits (total cap, per-UTC-day cap, allowed endpoint ids or categories, expiry)
are fixed at creation; revoking is immediate. The spending itself is not here: the charge
(``charging.py``) adds the price to the key's counters in its own transaction with one
conditional UPDATE, and every refund gives it back there too.
"""

from __future__ import annotations

import hmac
import json
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, insert, select, update

from arkgate.db import tables as t
from arkgate.db.engine import Database, utcnow
from arkgate.payments.charging import SubKeyLimits, sub_key_limits, utc_day

MAX_KEYS_PER_SESSION = 100  # revoked ones included: keys are cheap to create, rows are kept for receipts


@dataclass(frozen=True, kw_only=True)
class SubKey:
    key_id: str
    session_id: int
    label: str
    created_at: datetime
    limits: SubKeyLimits

    def status(self, now: datetime) -> str:
        """active | revoked | expired."""
        if self.limits.revoked_at is not None:
            return "revoked"
        if self.limits.expires_at is not None and self.limits.expires_at <= now:
            return "expired"
        return "active"

    def spent_today_sats(self, now: datetime) -> int:
        return self.limits.spent_on(utc_day(now))

    def remaining_sats(self, now: datetime) -> int | None:
        """The least of what the total and today's caps still allow; None when neither is set."""
        left: list[int] = []
        if self.limits.cap_sats is not None:
            left.append(self.limits.cap_sats - self.limits.spent_sats)
        if self.limits.daily_cap_sats is not None:
            left.append(self.limits.daily_cap_sats - self.spent_today_sats(now))
        return max(0, min(left)) if left else None


@dataclass(frozen=True, kw_only=True)
class NewKey:
    label: str
    cap_sats: int | None
    daily_cap_sats: int | None
    allowed: tuple[str, ...] | None
    expires_at: datetime | None


def new_key_id() -> str:
    return "key_" + secrets.token_hex(8)


def _sub_key(row: object) -> SubKey:
    return SubKey(
        key_id=str(row.key_id),  # type: ignore[attr-defined]
        session_id=int(row.session_id),  # type: ignore[attr-defined]
        label=str(row.label),  # type: ignore[attr-defined]
        created_at=row.created_at,  # type: ignore[attr-defined]
        limits=sub_key_limits(row),
    )


async def count_keys(database: Database, session_id: int) -> int:
    async with database.read() as conn:
        total = await conn.execute(
            select(func.count()).select_from(t.session_keys).where(t.session_keys.c.session_id == session_id)
        )
        return int(total.scalar_one())


async def create_key(database: Database, session_id: int, token_hash: str, new: NewKey) -> SubKey:
    """Store a sub-key of ``session_id`` under the hash of its (already generated) token."""
    key_id = new_key_id()
    now = utcnow()
    async with database.write() as conn:
        await conn.execute(
            insert(t.session_keys).values(
                key_id=key_id,
                session_id=session_id,
                token_hash=token_hash,
                label=new.label,
                cap_sats=new.cap_sats,
                daily_cap_sats=new.daily_cap_sats,
                allowed=None if new.allowed is None else json.dumps(list(new.allowed)),
                spent_sats=0,
                day="",
                day_spent_sats=0,
                created_at=now,
                expires_at=new.expires_at,
                revoked_at=None,
            )
        )
    key = await key_of(database, session_id, key_id)
    assert key is not None
    return key


async def keys_of(database: Database, session_id: int) -> list[SubKey]:
    async with database.read() as conn:
        rows = await conn.execute(
            select(t.session_keys)
            .where(t.session_keys.c.session_id == session_id)
            .order_by(t.session_keys.c.created_at, t.session_keys.c.key_id)
        )
        return [_sub_key(row) for row in rows]


async def key_of(database: Database, session_id: int, key_id: str) -> SubKey | None:
    """The session's key ``key_id``; None if no such key belongs to this session."""
    async with database.read() as conn:
        row = (
            await conn.execute(
                select(t.session_keys).where(
                    t.session_keys.c.key_id == key_id, t.session_keys.c.session_id == session_id
                )
            )
        ).first()
    return None if row is None else _sub_key(row)


async def key_by_token(database: Database, token_hash: str) -> SubKey | None:
    async with database.read() as conn:
        row = (await conn.execute(select(t.session_keys).where(t.session_keys.c.token_hash == token_hash))).first()
    if row is None or not hmac.compare_digest(str(row.token_hash), token_hash):
        return None
    return _sub_key(row)


async def revoke_key(database: Database, session_id: int, key_id: str) -> SubKey | None:
    """Revoke at once: the next charge's conditional UPDATE no longer matches. Idempotent."""
    async with database.write() as conn:
        await conn.execute(
            update(t.session_keys)
            .where(
                t.session_keys.c.key_id == key_id,
                t.session_keys.c.session_id == session_id,
                t.session_keys.c.revoked_at.is_(None),
            )
            .values(revoked_at=utcnow())
        )
    return await key_of(database, session_id, key_id)
