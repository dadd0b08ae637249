"""The operator log (``operator_log``): every refresh, sweep, exit step and alert, with a JSON detail."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import insert, select

from arkgate.db import tables as t
from arkgate.db.engine import Database, utcnow
from arkgate.timestamps import format_instant


async def record(database: Database, kind: str, status: str, *, amount_sats: int | None = None, **detail: Any) -> int:
    async with database.write() as conn:
        result = await conn.execute(
            insert(t.operator_log).values(
                kind=kind,
                status=status,
                amount_sats=amount_sats,
                detail=json.dumps(detail, default=str, separators=(",", ":")),
                created_at=utcnow(),
            )
        )
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


async def entries(database: Database, *, kind: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
    query = select(t.operator_log).order_by(t.operator_log.c.id.desc()).limit(limit)
    if kind:
        query = query.where(t.operator_log.c.kind == kind)
    async with database.read() as conn:
        rows = (await conn.execute(query)).all()
    return [
        {
            "id": row.id,
            "kind": row.kind,
            "status": row.status,
            "amount_sats": row.amount_sats,
            "detail": json.loads(row.detail) if row.detail else {},
            "created_at": format_instant(row.created_at),
        }
        for row in rows
    ]
