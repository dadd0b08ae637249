"""Who opened which session, so one client cannot hold unfunded sessions without limit.

Every unfunded session costs a row here, an invoice and an address in barkd's keychain. The
client is kept as the SHA-256 of its IP (as seen after trusted proxies), never the address.
The count and the insert are separate transactions, so concurrent requests can overshoot by
the few in flight; the per-IP rate limit bounds those.
"""

from __future__ import annotations

import hashlib

from sqlalchemy import func, insert, select

from arkgate.db import tables as t
from arkgate.db.engine import Database, utcnow


def client_key(client_ip: str) -> str:
    return hashlib.sha256(f"arkgate-client:{client_ip}".encode()).hexdigest()


async def unfunded_sessions_of(database: Database, client_ip: str) -> int:
    """Unfunded sessions this client opened that have not lapsed yet."""
    s = t.sessions
    async with database.read() as conn:
        count = (
            await conn.execute(
                select(func.count())
                .select_from(t.session_origins.join(s))
                .where(
                    t.session_origins.c.client_key == client_key(client_ip),
                    s.c.funded_at.is_(None),
                    s.c.expires_at > utcnow(),
                )
            )
        ).scalar_one()
    return int(count)


async def record_origin(database: Database, session_id: int, client_ip: str) -> None:
    async with database.write() as conn:
        await conn.execute(
            insert(t.session_origins).values(
                session_id=session_id, client_key=client_key(client_ip), created_at=utcnow()
            )
        )
