"""Withdraw and close: the session's balance paid out through barkd (``payments/payouts.py``)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from arkgate.api.sessions import _json_body_schema, lenient_body
from arkgate.errors import InputError
from arkgate.payments import refund_to
from arkgate.payments.payouts import PayoutFailedError, PayoutResult, PayoutsDisabledError, PayoutService
from arkgate.runtime import Runtime, runtime
from arkgate.services.auth import require_session
from arkgate.services.envelope import json_response
from arkgate.timestamps import format_instant, format_optional

router = APIRouter(tags=["session"])


class Withdraw(BaseModel):
    destination: Any = Field(
        None,
        description="A BOLT11 invoice, a BOLT12 offer, a Lightning address (name@domain) or an Ark address.",
        examples=["lntbs1...", "lno1...", "alice@example.com", "tark1..."],
    )
    amount_sats: Any = Field(
        None,
        description="Sats taken from the balance, fee included (default: an invoice's amount plus the fee, "
        "or the whole balance).",
    )
    quote_only: Any = Field(False, description="Only estimate the fee; nothing is paid.")


def payout_service(rt: Runtime) -> PayoutService:
    service = rt.payouts
    if service is None:
        raise PayoutsDisabledError("withdrawals are not available on this gateway (no wallet to pay from)")
    return service


def _destination(body: Withdraw) -> str:
    if not isinstance(body.destination, str) or not body.destination.strip():
        raise InputError(
            "destination is required: a BOLT11 invoice, a BOLT12 offer, a Lightning address or an Ark address"
        )
    return body.destination


def payout_view(result: PayoutResult) -> dict[str, Any]:
    view = asdict(result)
    view["status"] = view.pop("state")
    return view


@router.post(
    "/v1/sessions/withdraw",
    summary="Pay some or all of the balance out (fee shown first with quote_only)",
    openapi_extra=_json_body_schema(Withdraw),
)
async def withdraw(request: Request) -> Response:
    rt = runtime(request)
    service = payout_service(rt)
    session = await require_session(request, rt.ledger)
    body: Withdraw = await lenient_body(request, Withdraw)
    destination = _destination(body)
    if body.quote_only is True:
        quote = await service.quote(session, destination, body.amount_sats, resolve=False)
        return json_response(
            {
                "rail": quote.target.rail,
                "amount_sats": quote.amount_sats,
                "fee_sats": quote.fee_sats,
                "net_sats": quote.net_sats,
                "balance_sats": session.balance_sats,
            }
        )
    result = await service.withdraw(session, destination, body.amount_sats)
    if result.state == "failed":
        raise PayoutFailedError(
            result.reason or "the payment failed; the balance was refunded", details=payout_view(result)
        )
    return json_response(payout_view(result), 202 if result.state == "pending" else 200)


@router.post(
    "/v1/sessions/close",
    summary="Withdraw the whole balance and close the token",
    openapi_extra=_json_body_schema(Withdraw),
)
async def close(request: Request) -> Response:
    rt = runtime(request)
    session = await require_session(request, rt.ledger)
    body: Withdraw = await lenient_body(request, Withdraw)
    payout: dict[str, Any] | None = None
    if session.balance_sats > 0:
        service = payout_service(rt)
        destination = _destination(body)
        result = await service.withdraw(session, destination, None, purpose="close")
        payout = payout_view(result)
        if result.state == "failed":
            raise PayoutFailedError(
                result.reason or "the payment failed; the balance was refunded and the session stays open",
                details={"payout": payout},
            )
    await rt.ledger.close_session(session.id)
    return json_response({"status": "closed", "payout": payout})


@router.get("/v1/sessions/me/payouts", summary="The bearer's withdrawals, newest first")
async def my_payouts(request: Request) -> Response:
    rt = runtime(request)
    session = await require_session(request, rt.ledger)
    payouts = [
        {
            "payout_id": p.payout_id,
            "status": p.state,
            "rail": p.rail,
            "purpose": p.purpose,
            "amount_sats": p.amount_sats,
            "fee_sats": p.fee_sats,
            "net_sats": p.net_sats,
            "reason": p.reason,
            "created_at": format_instant(p.created_at),
            "settled_at": format_optional(p.settled_at),
        }
        for p in await rt.ledger.payouts_of(session.id)
    ]
    return json_response(
        {
            "balance_sats": session.balance_sats,
            "refund_to": await refund_to.refund_to_of(rt.database, session.id),
            "payouts": payouts,
            "count": len(payouts),
        }
    )


class RefundTo(BaseModel):
    refund_to: Any = Field(None, description="An Ark address; null clears it.", examples=["tark1..."])


@router.post(
    "/v1/sessions/me/refund-to",
    summary="Where the remainder goes automatically when the session expires",
    openapi_extra=_json_body_schema(RefundTo),
)
async def set_refund_to(request: Request) -> Response:
    rt = runtime(request)
    payout_service(rt)  # refuses when payouts are off
    session = await require_session(request, rt.ledger)
    body: RefundTo = await lenient_body(request, RefundTo)
    value = body.refund_to
    if value is not None and not isinstance(value, str):
        raise InputError("refund_to must be an Ark address, or null to clear it")
    destination = refund_to.validate_refund_to(value) if value else None
    await refund_to.set_refund_to(rt.database, session.id, destination)
    return json_response({"refund_to": destination, "expires_at": format_optional(session.expires_at)})
