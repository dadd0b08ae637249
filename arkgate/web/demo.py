"""Demo mode: the fund page's "pay with the simulator" buttons, forwarded to the simulator's controls.

Installed only when ``settings.demo`` is on and ``settings.simulator_url`` is set. It
pays only this gateway's own invoices and sends only to its sessions' addresses, so the
proxy cannot be used to drive the simulator at large.
"""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel

from arkgate.errors import InputError, NotFoundError, UpstreamError
from arkgate.payments.barkd import invoice_details
from arkgate.runtime import Runtime, runtime
from arkgate.services.envelope import json_response

router = APIRouter(tags=["demo"], include_in_schema=False)

_TIMEOUT_S = 15.0
_MAX_ARK_SATS = 10_000_000


class PayInvoice(BaseModel):
    invoice: Any = None


class SendArk(BaseModel):
    address: Any = None
    amount_sats: Any = None


@router.post("/demo/pay-invoice")
async def pay_invoice(body: PayInvoice, request: Request) -> Response:
    rt = runtime(request)
    if not isinstance(body.invoice, str) or not body.invoice.strip():
        raise InputError("invoice is required: the Lightning invoice to pay")
    invoice = body.invoice.strip()
    try:
        payment_hash, _, _ = invoice_details(invoice)
    except Exception as exc:  # the decoder raises several unrelated types for garbage
        raise InputError("invoice is not a valid BOLT11 invoice") from exc
    if await rt.ledger.invoice(payment_hash) is None:
        raise NotFoundError("this gateway issued no such invoice")
    result = await _forward(rt, "pay-invoice", {"invoice": invoice})
    return json_response({"paid": True, "simulator": result})


@router.post("/demo/send-ark")
async def send_ark(body: SendArk, request: Request) -> Response:
    rt = runtime(request)
    if not isinstance(body.address, str) or not body.address.strip():
        raise InputError("address is required: the session's Ark address")
    amount = body.amount_sats
    if isinstance(amount, bool) or not isinstance(amount, int) or not 1 <= amount <= _MAX_ARK_SATS:
        raise InputError(f"amount_sats must be a whole number of sats between 1 and {_MAX_ARK_SATS}")
    address = body.address.strip()
    if not await rt.ledger.session_ids_by_address([address]):
        raise NotFoundError("no session of this gateway has that Ark address")
    result = await _forward(rt, "send-ark", {"address": address, "amount_sat": amount})
    return json_response({"sent": True, "simulator": result})


async def _forward(rt: Runtime, control: str, payload: dict[str, Any]) -> dict[str, Any]:
    url = f"{rt.settings.simulator_url.rstrip('/')}/_sim/{control}"
    try:
        async with httpx.AsyncClient(timeout=_TIMEOUT_S) as client:
            response = await client.post(url, json=payload)
    except httpx.HTTPError as exc:
        raise UpstreamError("the simulator did not answer") from exc
    try:
        data = response.json()
    except ValueError:
        data = {}
    if response.status_code != 200:
        message = data.get("error") if isinstance(data, dict) else None
        raise UpstreamError(f"the simulator refused: {message or response.status_code}")
    return data if isinstance(data, dict) else {}
