"""The 402 answer of a paid endpoint: the price and a way to pay it, machine-readable.

- No token: a fresh session sized by ``default_session_sats`` is opened on the spot and
  its token, invoice and Ark address are returned, with an L402 challenge
  (``WWW-Authenticate: L402 macaroon="...", invoice="..."``) next to the Bearer one.
- A session that is not funded yet or cannot afford the call: its pending invoice, or a
  new top-up invoice, and its Ark address (plus an L402 challenge bound to that invoice,
  which credits the same session).
- Free mode has no invoices: the answer says how to create or top up a session instead.
- When barkd cannot issue an invoice the answer is still a 402 with instructions, never a 500.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import structlog
from fastapi import Request
from fastapi.responses import Response

from arkgate.catalog.registry import Endpoint
from arkgate.errors import ArkgateError, PaymentRequiredError, RateLimitedError
from arkgate.payments.barkd import Invoice
from arkgate.payments.ledger import SessionInfo
from arkgate.runtime import Runtime, runtime
from arkgate.services.envelope import dumps, error_body, error_response
from arkgate.services.l402 import challenge_header
from arkgate.services.sessions import build_bip321
from arkgate.timestamps import format_optional

log = structlog.get_logger("arkgate.challenge")

BEARER_CHALLENGE = 'Bearer realm="arkgate"'
# A pending invoice closer than this to its expiry is not offered again.
INVOICE_MARGIN = timedelta(seconds=60)


def client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def offered_amount(rt: Runtime, needed_sats: int) -> int:
    """What a new session or top-up asks for: the default size, or more if one call needs more."""
    settings = rt.settings
    return min(settings.max_session_sats, max(settings.min_session_sats, settings.default_session_sats, needed_sats))


async def payment_challenge(
    request: Request, endpoint: Endpoint, price_sats: int, error: PaymentRequiredError | None
) -> Response:
    rt = runtime(request)
    if error is None:
        return await _tokenless(rt, request, endpoint, price_sats)
    return await _short(rt, request, endpoint, price_sats, error)


def _price_fields(rt: Runtime, endpoint: Endpoint, price_sats: int) -> dict[str, Any]:
    fields: dict[str, Any] = {"price_sats": price_sats}
    if endpoint.metered is not None:
        fields["pricing"] = {
            "type": "metered",
            "reserved_sats": price_sats,
            "minimum_sats": endpoint.min_price_sats(rt.settings),
            "max_cost_sats": endpoint.max_price_sats(rt.settings),
            "rate": endpoint.metered.rate(rt.settings),
        }
    return fields


def _respond(body: dict[str, Any], *, l402: str | None = None) -> Response:
    response = Response(dumps(body), status_code=402, media_type="application/json")
    if l402 is not None:
        response.headers.append("WWW-Authenticate", l402)
    response.headers.append("WWW-Authenticate", BEARER_CHALLENGE)
    return response


def _funding_block(invoice: Invoice | None, address: str | None, amount_sats: int) -> dict[str, Any]:
    bolt11 = invoice.bolt11 if invoice else None
    return {
        "amount_sats": amount_sats,
        "lightning_invoice": bolt11,
        "payment_hash": invoice.payment_hash if invoice else None,
        "invoice_expires_at": format_optional(invoice.expires_at) if invoice else None,
        "ark_address": address,
        "bip321": build_bip321(bolt11, address, amount_sats),
    }


async def _tokenless(rt: Runtime, request: Request, endpoint: Endpoint, price_sats: int) -> Response:
    settings = rt.settings
    base = rt.base_url(request)
    amount = offered_amount(rt, price_sats)
    if settings.payment_mode == "free":
        problem = PaymentRequiredError(
            f"payment required: {endpoint.id} costs {price_sats} sats. Create a session with "
            f'POST {base}/v1/sessions {{"amount_sats": {amount}}} (this gateway runs in free mode: it is '
            "funded at once), then retry with 'Authorization: Bearer <token>'"
        )
        body = error_body(problem, endpoint=endpoint.path) | _price_fields(rt, endpoint, price_sats)
        body["payment"] = None
        body["how_to_pay"] = [
            f'POST {base}/v1/sessions with {{"amount_sats": {amount}}}',
            "retry this request with 'Authorization: Bearer <token>'",
        ]
        return _respond(body)
    try:
        await rt.limits.hit("sessions", client_ip(request), request.scope)
    except RateLimitedError as exc:
        return error_response(exc, endpoint=endpoint.path)
    try:
        token, created = await rt.sessions.open(amount, source="l402", client_ip=client_ip(request))
    except RateLimitedError as exc:  # too many unpaid sessions from this client
        return error_response(exc, endpoint=endpoint.path)
    except ArkgateError as exc:
        log.warning("challenge.no_invoice", endpoint_id=endpoint.id, reason=exc.code)
        problem = PaymentRequiredError(
            f"payment required: {endpoint.id} costs {price_sats} sats, but the payment backend cannot issue an "
            f"invoice right now; retry in a moment, or create a session with POST {base}/v1/sessions later"
        )
        body = error_body(problem, endpoint=endpoint.path) | _price_fields(rt, endpoint, price_sats)
        body["payment"] = None
        body["retry_after_s"] = 10
        response = _respond(body)
        response.headers["Retry-After"] = "10"
        return response
    funding = created.funding
    l402 = rt.l402
    macaroon = l402.mint(funding.payment_hash) if l402 is not None and funding.payment_hash else None
    # Anonymous challenges share a small pool of Ark addresses; past it they offer Lightning only.
    ark_hint = " (or send sats to its Ark address)" if funding.ark_address else ""
    problem = PaymentRequiredError(
        f"payment required: {endpoint.id} costs {price_sats} sats. A {amount}-sat session was opened for you: "
        f"pay its Lightning invoice{ark_hint}, then retry with "
        "'Authorization: Bearer <payment.token>'"
        + (" or 'Authorization: L402 <payment.macaroon>:<preimage>'" if macaroon else "")
    )
    body = error_body(problem, endpoint=endpoint.path) | _price_fields(rt, endpoint, price_sats)
    body["payment"] = {
        "token": token,
        "amount_sats": amount,
        **funding.model_dump(),
        "macaroon": macaroon,
        "status": created.status,
        "expires_in": created.expires_in,
        "balance_url": f"{base}/v1/balance",
    }
    body["how_to_pay"] = _steps(base, with_l402=macaroon is not None, with_ark=funding.ark_address is not None)
    header = challenge_header(macaroon, funding.lightning_invoice) if macaroon and funding.lightning_invoice else None
    return _respond(body, l402=header)


def _steps(base: str, *, with_l402: bool, with_ark: bool = True) -> list[str]:
    pay = (
        "pay payment.lightning_invoice with any Lightning wallet, or send at least payment.amount_sats "
        "to payment.ark_address (payment.bip321 carries both)"
        if with_ark
        else "pay payment.lightning_invoice with any Lightning wallet (to pay with Ark, create a session with "
        f"POST {base}/v1/sessions: it gets an Ark address of its own)"
    )
    steps = [
        pay,
        f"poll GET {base}/v1/balance with 'Authorization: Bearer <payment.token>' until balance_sats > 0",
        "retry this request with 'Authorization: Bearer <payment.token>'",
    ]
    if with_l402:
        steps.append(
            "or, as an L402 client: retry with 'Authorization: L402 <payment.macaroon>:<preimage>' using the "
            "preimage your wallet returned"
        )
    return steps


async def session_of(rt: Runtime, request: Request) -> SessionInfo | None:
    """The session the request authenticates as, through the same resolvers as the meter."""
    for resolve in rt.token_resolvers:
        try:
            token_hash = await resolve(request)
        except ArkgateError:
            return None
        if token_hash is not None:
            return await rt.ledger.session_by_token(token_hash)
    return None


async def _pending_invoice(rt: Runtime, session: SessionInfo) -> Invoice | None:
    pending = await rt.sessions.open_invoices(session.id, margin=INVOICE_MARGIN)
    return pending[-1] if pending else None


async def _short(
    rt: Runtime, request: Request, endpoint: Endpoint, price_sats: int, error: PaymentRequiredError
) -> Response:
    settings = rt.settings
    base = rt.base_url(request)
    session = await session_of(rt, request)
    body = error_body(error, endpoint=endpoint.path) | _price_fields(rt, endpoint, price_sats)
    body.pop("_headers", None)
    if session is None:
        body["payment"] = None
        return _respond(body)
    balance = session.balance_sats
    shortfall = max(0, price_sats - balance)
    amount = offered_amount(rt, shortfall)
    body["balance_sats"] = balance
    body["shortfall_sats"] = shortfall
    if settings.payment_mode == "free":
        body["payment"] = None
        body["how_to_pay"] = [
            f'POST {base}/v1/sessions/topup with {{"amount_sats": {amount}}} and your bearer token '
            "(free mode credits it at once)",
            "retry this request",
        ]
        return _respond(body)
    invoice = await _pending_invoice(rt, session) if session.status == "awaiting_payment" else None
    note = None
    if invoice is None:
        try:
            await rt.limits.hit("sessions", client_ip(request), request.scope)
            invoice = await rt.sessions.add_topup_invoice(session.id, amount)
        except RateLimitedError:
            invoice, note = None, "too many invoices requested from this address; send sats to the Ark address"
        except ArkgateError:
            invoice, note = None, "the payment backend cannot issue an invoice right now; use the Ark address"
    offered = invoice.amount_sats if invoice else amount
    l402 = rt.l402
    macaroon = l402.mint(invoice.payment_hash) if l402 is not None and invoice else None
    body["payment"] = {
        **_funding_block(invoice, session.ark_address, offered),
        "macaroon": macaroon,
        "status": session.public_status(),
        "balance_url": f"{base}/v1/balance",
    }
    if note:
        body["payment"]["note"] = note
    body["how_to_pay"] = [
        "pay payment.lightning_invoice, or send at least "
        f"{max(shortfall, 1)} sats to payment.ark_address (any amount sent there is credited)",
        "retry this request with the same Authorization header"
        + (", or with 'Authorization: L402 <payment.macaroon>:<preimage>'" if macaroon else ""),
    ]
    header = challenge_header(macaroon, invoice.bolt11) if macaroon and invoice else None
    return _respond(body, l402=header)
