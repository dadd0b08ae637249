"""A session's webhook: its callback URL (vetted by the outbound guard), secret and balance threshold."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select, update

from arkgate.db import tables as t
from arkgate.db.engine import Database, utcnow
from arkgate.errors import InputError
from arkgate.outbound.guard import OutboundGuard
from arkgate.webhooks.events import SESSION_EVENTS
from arkgate.webhooks.signing import new_secret


@dataclass(frozen=True, kw_only=True)
class Subscription:
    session_id: int
    url: str
    secret: str
    low_balance_sats: int | None
    created_at: datetime


async def vet_callback_url(guard: OutboundGuard, url: object) -> str:
    """The URL as the guard accepts it: http(s), an allowed port, a public address (or an allowed network)."""
    if not isinstance(url, str) or not url.strip():
        raise InputError("callback_url must be an http:// or https:// URL")
    vetted = await guard.vet_url(url.strip())
    return vetted.url


def vet_threshold(value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InputError("low_balance_sats must be a positive whole number of sats (or null for none)")
    return value


async def subscription(database: Database, session_id: int) -> Subscription | None:
    hooks = t.session_webhooks
    async with database.read() as conn:
        row = (await conn.execute(select(hooks).where(hooks.c.session_id == session_id))).one_or_none()
    if row is None:
        return None
    return Subscription(
        session_id=row.session_id,
        url=row.url,
        secret=row.secret,
        low_balance_sats=row.low_balance_sats,
        created_at=row.created_at,
    )


async def register(database: Database, session_id: int, url: str, low_balance_sats: int | None) -> str:
    """Set (or replace) the session's webhook; a new secret every time, returned once."""
    hooks = t.session_webhooks
    secret = new_secret()
    now = utcnow()
    async with database.write() as conn:
        await conn.execute(delete(hooks).where(hooks.c.session_id == session_id))
        await conn.execute(
            insert(hooks).values(
                session_id=session_id,
                url=url,
                secret=secret,
                low_balance_sats=low_balance_sats,
                low_notified=False,
                created_at=now,
                updated_at=now,
            )
        )
    return secret


async def set_threshold(database: Database, session_id: int, low_balance_sats: int | None) -> bool:
    hooks = t.session_webhooks
    async with database.write() as conn:
        result = await conn.execute(
            update(hooks)
            .where(hooks.c.session_id == session_id)
            .values(low_balance_sats=low_balance_sats, low_notified=False, updated_at=utcnow())
        )
    return result.rowcount == 1


async def remove(database: Database, session_id: int) -> bool:
    hooks = t.session_webhooks
    async with database.write() as conn:
        result = await conn.execute(delete(hooks).where(hooks.c.session_id == session_id))
    return result.rowcount == 1


async def vet_request(guard: OutboundGuard, callback_url: object, low_balance_sats: object) -> tuple[str, int | None]:
    """Check a webhook request before anything is created (bad input costs nothing)."""
    return await vet_callback_url(guard, callback_url), vet_threshold(low_balance_sats)


async def register_view(database: Database, session_id: int, url: str, low_balance_sats: int | None) -> dict[str, Any]:
    """Store a vetted webhook; the answer carries the secret, shown this once."""
    secret = await register(database, session_id, url, low_balance_sats)
    return {"callback_url": url, "secret": secret, "low_balance_sats": low_balance_sats, "events": list(SESSION_EVENTS)}
