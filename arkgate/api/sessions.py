"""Sessions over HTTP: create, fund, top up, and read balance, payments and call receipts.

ArkAPI-compatible shapes, plus extensions (top-up, payments, calls). The work itself (invoices,
addresses, the ledger) is ``arkgate.services.sessions``; this module only reads and answers HTTP.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field
from starlette.routing import Route

from arkgate.errors import InputError
from arkgate.payments import refund_to, subkeys
from arkgate.payments.charging import INTERRUPTED
from arkgate.payments.ledger import Receipt, hash_token
from arkgate.runtime import Runtime, runtime
from arkgate.services.auth import require_caller, require_parent
from arkgate.services.envelope import json_response
from arkgate.services.sessions import Balance, SessionCreated, TopUpCreated, caller_balance_view
from arkgate.timestamps import format_optional
from arkgate.webhooks import subscriptions

router = APIRouter(tags=["session"])


class CreateSession(BaseModel):
    amount_sats: Any = Field(None, description="How many sats to fund the session with.", examples=[500])
    refund_to: Any = Field(None, description="Ark address that receives the remainder when the session expires.")
    callback_url: Any = Field(None, description="Optional webhook URL for this session's events (docs/webhooks.md).")
    low_balance_sats: Any = Field(None, description="With callback_url: balance.low fires below this balance.")


class TopUp(BaseModel):
    amount_sats: Any = Field(None, examples=[1000])


async def lenient_body(request: Request, model: type[BaseModel]) -> Any:
    """The JSON object of a request, as ArkAPI reads it: any Content-Type, and no body at all means ``{}``."""
    raw = await request.body()
    if not raw.strip():
        return model.model_validate({})
    try:
        payload = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError('the body must be JSON, e.g. {"amount_sats": 500}') from exc
    if not isinstance(payload, dict):
        raise InputError('the body must be a JSON object, e.g. {"amount_sats": 500}')
    return model.model_validate(payload)


def _json_body_schema(model: type[BaseModel]) -> dict[str, Any]:
    """OpenAPI for a body read by ``lenient_body`` (FastAPI cannot see it)."""
    return {
        "requestBody": {
            "required": False,
            "content": {"application/json": {"schema": model.model_json_schema()}},
        }
    }


@router.post(
    "/v1/sessions",
    status_code=201,
    response_model=SessionCreated,
    summary="Create a prepaid session",
    openapi_extra=_json_body_schema(CreateSession),
)
async def create_session(request: Request) -> Response:
    rt = runtime(request)
    body: CreateSession = await lenient_body(request, CreateSession)
    if body.amount_sats is None and rt.settings.payment_mode == "free":
        body.amount_sats = rt.settings.free_balance_sats  # ArkAPI's free mode funds a session without a body
    amount = rt.sessions.validate_amount(body.amount_sats)
    destination = _refund_to(rt, body.refund_to)
    ip = request.client.host if request.client else "unknown"
    await rt.limits.hit("sessions", ip, request.scope)
    webhook = None
    if body.callback_url is not None and rt.webhooks is not None:
        webhook = await subscriptions.vet_request(rt.webhooks.guard, body.callback_url, body.low_balance_sats)
    token, created = await rt.sessions.open(amount, client_ip=ip)
    answer = created.model_dump()
    if destination is not None or webhook is not None:
        session = await rt.ledger.session_by_token(hash_token(token))
        assert session is not None
        if destination is not None:
            await refund_to.set_refund_to(rt.database, session.id, destination)
        if webhook is not None:
            answer["webhook"] = await subscriptions.register_view(rt.database, session.id, *webhook)
            if rt.webhooks is not None:
                rt.webhooks.forget(session.id)
    return json_response(answer, 201)


def _refund_to(rt: Runtime, value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or rt.payouts is None:
        raise InputError("refund_to must be an Ark address, on a gateway that pays out (barkd mode)")
    return refund_to.validate_refund_to(value)


@router.post(
    "/v1/sessions/topup",
    response_model=TopUpCreated,
    summary="Get a new invoice for the same session",
    openapi_extra=_json_body_schema(TopUp),
)
async def top_up(request: Request) -> Response:
    rt = runtime(request)
    session = await require_parent(request, rt.ledger, "top up")
    body: TopUp = await lenient_body(request, TopUp)
    amount = rt.sessions.validate_amount(body.amount_sats)
    await rt.limits.hit("sessions", request.client.host if request.client else "unknown", request.scope)
    return json_response((await rt.sessions.top_up(session, amount)).model_dump())


@router.get("/v1/balance", response_model=Balance, summary="Balance and status of the bearer's session")
async def balance(request: Request) -> Response:
    rt = runtime(request)
    caller = await require_caller(request, rt.ledger)
    return json_response(caller_balance_view(caller))


# What serves GET /v1/balance: a plain Starlette route that ``create_app`` puts first in the app's
# own route list (the documented route above stays for the OpenAPI schema). The handler takes only
# the request, so FastAPI's included-router lookup and dependency resolution bought nothing but
# about a third of the poll's time in the framework; errors still reach the app's handlers, so the
# response is the same.
LEAN_ROUTES = (Route("/v1/balance", balance, methods=["GET"], include_in_schema=False),)


@router.get("/v1/sessions/me/payments", summary="Payments credited to the bearer's session")
async def my_payments(request: Request) -> Response:
    rt = runtime(request)
    session = await require_parent(request, rt.ledger, "read the session's payments")
    payments = [
        {
            "rail": p.rail,
            "amount_sats": p.amount_sats,
            "payment_hash": p.payment_hash,
            "ark_address": p.ark_address,
            "late": p.is_late,
            "credited_at": format_optional(p.created_at),
        }
        for p in await rt.ledger.payments_of(session.id)
    ]
    invoices = [
        {
            "payment_hash": i.payment_hash,
            "amount_sats": i.amount_sats,
            "status": i.status,
            "purpose": i.purpose,
            "expires_at": format_optional(i.expires_at),
            "lightning_invoice": i.bolt11,
        }
        for i in await rt.ledger.invoices_of(session.id)
    ]
    return json_response(
        {"balance_sats": session.balance_sats, "payments": payments, "invoices": invoices, "count": len(payments)}
    )


@router.get("/v1/sessions/me/calls", summary="Receipts of the bearer's recent calls, newest first")
async def my_calls(request: Request, limit: int = 100) -> Response:
    rt = runtime(request)
    caller = await require_caller(request, rt.ledger)
    session = caller.session
    if not 1 <= limit <= 1000:
        raise InputError("limit must be between 1 and 1000")
    # A sub-key sees only its own calls; the session sees all, each naming the key that spent it.
    own_key = caller.key.key_id if caller.key is not None else None
    receipts = await rt.ledger.receipts_of(session.id, limit=limit, key_id=own_key)
    labels = {k.key_id: k.label for k in await subkeys.keys_of(rt.database, session.id)} if receipts else {}
    calls = [
        {
            "call_id": r.call_id,
            "endpoint": r.endpoint_id,
            "key_id": r.key_id,
            "key_label": labels.get(r.key_id) if r.key_id is not None else None,
            "charged_sats": r.charged_sats,
            "refunded_sats": r.refunded_sats,
            "cost_sats": r.cost_sats,
            "status": _call_status(r),
            "refund_reason": r.refund_reason,
            "created_at": format_optional(r.created_at),
            "ledger": [
                {
                    "kind": row.kind,
                    "amount_sats": row.amount_sats,
                    "reason": row.reason,
                    "at": format_optional(row.created_at),
                }
                for row in r.rows
            ],
        }
        for r in receipts
    ]
    balance = caller_balance_view(caller)["balance_sats"]
    return json_response({"balance_sats": balance, "calls": calls, "count": len(calls)})


def _call_status(receipt: Receipt) -> str:
    """in_flight until settled; interrupted when a crash sweep refunded it; refunded; or ok."""
    if receipt.is_in_flight:
        return "in_flight"
    if receipt.refund_reason == INTERRUPTED:
        return "interrupted"
    if receipt.refunded_sats >= receipt.charged_sats and receipt.charged_sats:
        return "refunded"
    return "ok"
