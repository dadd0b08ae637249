"""Probes for orchestrators and load balancers: ``/health/live`` and ``/health/ready``.

``/health/live`` touches nothing: it answers while the process serves HTTP at all (also the cheapest
request for benchmarks). ``/health/ready`` answers 200 only when this instance can do its job: the
database is reachable and its schema at the code's migration head; barkd's state is reported, and
counts only when ``ARKGATE_READY_REQUIRES_BARKD`` is set (funded sessions keep working without it).
``/health`` (in ``public.py``) is the human-readable summary of the same checks.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy import text

from arkgate.db import migrate
from arkgate.runtime import Runtime, runtime
from arkgate.services.envelope import json_response

router = APIRouter(tags=["public"])

_LIVE = b'{"status":"ok"}'


@dataclass(frozen=True, kw_only=True)
class BarkdState:
    reachable: bool
    version: str | None


async def database_reachable(rt: Runtime) -> bool:
    """One ``SELECT 1``: the database check of ``/health`` and ``/health/ready``."""
    try:
        async with rt.database.read() as conn:
            await conn.execute(text("SELECT 1"))
    except Exception:  # any driver or OS error means the same thing to a probe
        # Nothing pings pooled connections on checkout (the hot path saves that round trip): drop them,
        # so the probe after the database comes back opens fresh ones and reports it.
        rt.database.drop_connections()
        return False
    return True


async def database_problem(rt: Runtime) -> str | None:
    """Why the database cannot serve (unreachable, or its schema not at the migration head), or None."""
    if not await database_reachable(rt):
        return "database unreachable"
    try:
        current = await migrate.current_revisions(rt.database)
    except Exception:  # reachable a moment ago: the same answer to a probe
        return "database unreachable"
    if rt.migration_heads is None:
        rt.migration_heads = migrate.head_revisions()
    heads = rt.migration_heads
    if current != heads:
        return f"database schema at {sorted(current) or 'no revision'}, expected {sorted(heads)} (run arkgate migrate)"
    return None


async def barkd_state(rt: Runtime) -> BarkdState | None:
    """barkd's reachability and version; None when the gateway does not use barkd (free mode)."""
    if rt.barkd is None:
        return None
    if not await rt.barkd.ping():
        rt.barkd_version_read = False  # barkd may come back upgraded
        return BarkdState(reachable=False, version=None)
    if not rt.barkd_version_read:
        rt.barkd_version = await rt.barkd.version()
        rt.barkd_version_read = True
    return BarkdState(reachable=True, version=rt.barkd_version)


@router.get("/health/live", include_in_schema=False)
async def live() -> Response:
    return Response(_LIVE, media_type="application/json")


@router.get("/health/ready", include_in_schema=False)
async def ready(request: Request) -> Response:
    rt = runtime(request)
    problems: list[str] = []
    database = await database_problem(rt)
    if database is not None:
        problems.append(database)
    barkd = await barkd_state(rt)
    if barkd is not None and not barkd.reachable and rt.settings.ready_requires_barkd:
        problems.append("barkd unreachable")
    body: dict[str, object] = {
        "status": "ready" if not problems else "not_ready",
        "database": "ok" if database is None else database,
        "barkd": None if barkd is None else {"reachable": barkd.reachable, "version": barkd.version},
    }
    if problems:
        body["problems"] = problems
    return json_response(body, 200 if not problems else 503)
