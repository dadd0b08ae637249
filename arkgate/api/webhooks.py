"""A session's own webhook: register, inspect, change the balance threshold, remove, read the delivery log.

The secret (``whsec_...``) is shown once, when the webhook is registered; registering again
replaces the URL and the secret. Deliveries follow Standard Webhooks (``arkgate.webhooks``).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from arkgate.api.sessions import lenient_body
from arkgate.errors import InputError, NotFoundError
from arkgate.runtime import Part, Runtime, runtime
from arkgate.services.auth import require_session
from arkgate.services.envelope import json_response
from arkgate.timestamps import format_optional
from arkgate.webhooks import subscriptions
from arkgate.webhooks.events import SESSION_EVENTS
from arkgate.webhooks.service import Webhooks

router = APIRouter(tags=["session"])


class WebhookRequest(BaseModel):
    callback_url: Any = Field(None, description="Where events are POSTed; must be a public http(s) URL.")
    low_balance_sats: Any = Field(None, description="balance.low fires when a charge leaves less than this.")


class ThresholdRequest(BaseModel):
    low_balance_sats: Any = Field(None, description="The new threshold (null: no balance.low).")


def _webhooks(rt: Runtime) -> Webhooks:
    assert rt.webhooks is not None  # create_app always builds it
    return rt.webhooks


@router.post("/v1/sessions/me/webhook", status_code=201, summary="Register (or replace) the session's webhook")
async def set_webhook(request: Request) -> Response:
    rt = runtime(request)
    session = await require_session(request, rt.ledger)
    body: WebhookRequest = await lenient_body(request, WebhookRequest)
    url, threshold = await subscriptions.vet_request(_webhooks(rt).guard, body.callback_url, body.low_balance_sats)
    answer = await subscriptions.register_view(rt.database, session.id, url, threshold)
    _webhooks(rt).forget(session.id)
    return json_response(answer, 201)


@router.get("/v1/sessions/me/webhook", summary="The session's webhook (without its secret)")
async def get_webhook(request: Request) -> Response:
    rt = runtime(request)
    session = await require_session(request, rt.ledger)
    found = await subscriptions.subscription(rt.database, session.id)
    if found is None:
        raise NotFoundError("this session has no webhook: POST /v1/sessions/me/webhook sets one")
    return json_response(
        {
            "callback_url": found.url,
            "low_balance_sats": found.low_balance_sats,
            "events": list(SESSION_EVENTS),
            "created_at": format_optional(found.created_at),
        }
    )


@router.patch("/v1/sessions/me/webhook", summary="Change the balance.low threshold (the secret stays)")
async def set_threshold(request: Request) -> Response:
    rt = runtime(request)
    session = await require_session(request, rt.ledger)
    body: ThresholdRequest = await lenient_body(request, ThresholdRequest)
    threshold = subscriptions.vet_threshold(body.low_balance_sats)
    if not await subscriptions.set_threshold(rt.database, session.id, threshold):
        raise NotFoundError("this session has no webhook: POST /v1/sessions/me/webhook sets one")
    _webhooks(rt).forget(session.id)
    return json_response({"low_balance_sats": threshold})


@router.delete("/v1/sessions/me/webhook", summary="Remove the session's webhook")
async def delete_webhook(request: Request) -> Response:
    rt = runtime(request)
    session = await require_session(request, rt.ledger)
    if not await subscriptions.remove(rt.database, session.id):
        raise NotFoundError("this session has no webhook")
    return json_response({"removed": True})


@router.get("/v1/sessions/me/webhook/deliveries", summary="The session's webhook deliveries, newest first")
async def deliveries(request: Request, limit: int = 50) -> Response:
    rt = runtime(request)
    session = await require_session(request, rt.ledger)
    if not 1 <= limit <= 500:
        raise InputError("limit must be between 1 and 500")
    records = await _webhooks(rt).deliverer.deliveries(limit=limit, session_id=session.id)
    items = [record.view(with_session=False) for record in records]
    return json_response({"deliveries": items, "count": len(items)})


def install(app: FastAPI, rt: Runtime) -> Part:
    app.include_router(router)
    return Part()
