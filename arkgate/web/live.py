"""Live session status over server-sent events, authorised by short-lived single-use tickets.

``EventSource`` cannot send an ``Authorization`` header, and a bearer token in a URL
ends up in access logs and browser history. So the page trades its token for a
ticket (``POST /v1/sessions/stream-ticket``) and opens the stream with the ticket,
which works once and only for a minute.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy import delete, insert, select
from sse_starlette import EventSourceResponse, ServerSentEvent

from arkgate.catalog.context import sse
from arkgate.db import tables as t
from arkgate.db.engine import Database, utcnow
from arkgate.errors import InvalidTokenError
from arkgate.runtime import Runtime, runtime
from arkgate.services.auth import require_session
from arkgate.services.envelope import json_response
from arkgate.services.sessions import balance_view

TICKET_TTL_S = 60
HEARTBEAT_S = 15.0
# Streams end after this long; the page reconnects with a fresh ticket, so a forgotten tab
# does not hold a connection forever and a revoked session stops being followed.
STREAM_MAX_S = 30 * 60

router = APIRouter(tags=["session"])


class StreamTickets:
    """Single-use tickets kept in the database (only their hash), so any instance can redeem them."""

    def __init__(self, database: Database, ttl_s: float = TICKET_TTL_S) -> None:
        self.database = database
        self.ttl_s = ttl_s

    async def issue(self, session_id: int) -> str:
        ticket = secrets.token_urlsafe(24)
        now = utcnow()
        async with self.database.write() as conn:
            # Expired tickets go as new ones come, so the table stays as small as the live ones.
            await conn.execute(delete(t.stream_tickets).where(t.stream_tickets.c.expires_at < now))
            await conn.execute(
                insert(t.stream_tickets).values(
                    ticket_hash=_hash(ticket), session_id=session_id, expires_at=now + timedelta(seconds=self.ttl_s)
                )
            )
        return ticket

    async def redeem(self, ticket: str) -> int | None:
        """The ticket's session id, once: the delete that finds the row is the one redemption."""
        ticket_hash = _hash(ticket)
        async with self.database.write() as conn:
            row = (
                await conn.execute(
                    select(t.stream_tickets.c.session_id, t.stream_tickets.c.expires_at).where(
                        t.stream_tickets.c.ticket_hash == ticket_hash
                    )
                )
            ).one_or_none()
            if row is None:
                return None
            deleted = await conn.execute(delete(t.stream_tickets).where(t.stream_tickets.c.ticket_hash == ticket_hash))
        if deleted.rowcount != 1 or row.expires_at < utcnow():
            return None
        return int(row.session_id)


def _hash(ticket: str) -> str:
    return hashlib.sha256(ticket.encode()).hexdigest()


def tickets_of(rt: Runtime) -> StreamTickets:
    return StreamTickets(rt.database)  # all its state is in the database


_UNAUTHORISED: dict[int | str, dict[str, Any]] = {401: {"description": "Missing, unknown or expired token or ticket."}}


@router.post(
    "/v1/sessions/stream-ticket",
    summary="A one-use ticket to open the session's live event stream",
    responses=_UNAUTHORISED,
)
async def stream_ticket(request: Request) -> Response:
    rt = runtime(request)
    session = await require_session(request, rt.ledger)
    ticket = await tickets_of(rt).issue(session.id)
    return json_response(
        {"ticket": ticket, "expires_in": TICKET_TTL_S, "events": f"/v1/sessions/events?ticket={ticket}"}
    )


@router.get(
    "/v1/sessions/events",
    summary="Server-sent events for a session: its status now, then every payment as it is credited",
    response_class=EventSourceResponse,
    responses={200: {"content": {"text/event-stream": {}}}, **_UNAUTHORISED},
)
async def session_events(request: Request, ticket: str = "") -> Response:
    rt = runtime(request)
    session_id = await tickets_of(rt).redeem(ticket) if ticket else None
    if session_id is None:
        raise InvalidTokenError("invalid or expired stream ticket: get a new one from POST /v1/sessions/stream-ticket")
    # sse-starlette sends the keep-alive comments and ends open streams when uvicorn shuts down,
    # so a page left open does not hold up a restart.
    return EventSourceResponse(_stream(rt, session_id), ping=int(HEARTBEAT_S), headers={"Cache-Control": "no-store"})


async def _stream(rt: Runtime, session_id: int) -> AsyncIterator[ServerSentEvent]:
    # Subscribe before reading the snapshot, so a credit landing in between is not missed.
    async with rt.events.subscribe(session_id) as queue:
        session = await rt.ledger.session_by_id(session_id)
        if session is None:
            return
        first = sse("status", _status(balance_view(session).model_dump()))
        first.retry = 2000
        yield first
        deadline = time.monotonic() + STREAM_MAX_S
        while (left := deadline - time.monotonic()) > 0:
            try:
                event = await asyncio.wait_for(queue.get(), left)
            except TimeoutError:
                return
            yield sse(str(event.get("type", "message")), event)


def _status(balance: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "status",
        "status": balance["status"],
        "balance_sats": balance["balance_sats"],
        "funded": balance["funded"],
        "expires_at": balance["expires_at"],
    }
