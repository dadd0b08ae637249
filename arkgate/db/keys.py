"""Secrets every instance must share (the L402 root key), kept in the database.

The first instance to need a key generates it; when several start together, the primary
key lets exactly one insert win and every other instance reads the winner's value. Values
are never logged. Back them up with the database; see docs/scaling.md for rotation.
"""

from __future__ import annotations

import secrets

from sqlalchemy import delete, insert, select
from sqlalchemy.exc import IntegrityError

from arkgate.db import tables as t
from arkgate.db.engine import Database, utcnow


async def read_key(database: Database, name: str) -> bytes | None:
    async with database.read() as conn:
        value = (await conn.execute(select(t.shared_keys.c.value).where(t.shared_keys.c.name == name))).scalar()
    return None if value is None else bytes.fromhex(value)


async def shared_key(database: Database, name: str, *, initial: bytes | None = None, nbytes: int = 32) -> bytes:
    """The key called ``name``, created once from ``initial`` (or ``nbytes`` random bytes) if missing."""
    existing = await read_key(database, name)
    if existing is not None:
        return existing
    candidate = initial if initial is not None else secrets.token_bytes(nbytes)
    try:
        async with database.write() as conn:
            await conn.execute(insert(t.shared_keys).values(name=name, value=candidate.hex(), created_at=utcnow()))
    except IntegrityError:
        pass  # another instance created it first: use theirs
    stored = await read_key(database, name)
    assert stored is not None
    return stored


async def forget_key(database: Database, name: str) -> bool:
    """Delete a key so the next start generates a new one (rotation); True if one was deleted."""
    async with database.write() as conn:
        result = await conn.execute(delete(t.shared_keys).where(t.shared_keys.c.name == name))
    return bool(result.rowcount)
