"""Sessions: create, fund, top up, and read balance, payments and call receipts.

ArkAPI-compatible shapes, plus extensions (top-up, payments, calls).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field
from starlette.routing import Route

from arkgate.api.auth import Caller, require_caller, require_parent
from arkgate.api.envelope import json_response
from arkgate.api.runtime import Runtime, runtime
from arkgate.db.engine import utcnow
from arkgate.errors import ArkgateError, InputError, RateLimitedError, WalletUnavailableError
from arkgate.payments import origins, refund_to, subkeys
from arkgate.payments.addresses import AddressBook
from arkgate.payments.barkd import BarkdError
from arkgate.payments.charging import INTERRUPTED
from arkgate.payments.ledger import Receipt, SessionInfo, hash_token, new_token
from arkgate.timestamps import format_optional
from arkgate.webhooks import subscriptions

router = APIRouter(tags=["session"])


class CreateSession(BaseModel):
    amount_sats: Any = Field(None, description="How many sats to fund the session with.", examples=[500])
    refund_to: Any = Field(None, description="Ark address that receives the remainder when the session expires.")
    callback_url: Any = Field(None, description="Optional webhook URL for this session's events (docs/webhooks.md).")
    low_balance_sats: Any = Field(None, description="With callback_url: balance.low fires below this balance.")


class Funding(BaseModel):
    lightning_invoice: str | None = Field(None, description="BOLT11 invoice for amount_sats.")
    ark_address: str | None = Field(
        None, description="The session's own Ark address; any amount sent to it is credited."
    )
    payment_hash: str | None = None
    invoice_expires_at: str | None = None
    bip321: str | None = Field(None, description="A bitcoin: URI carrying both the invoice and the Ark address.")


class SessionCreated(BaseModel):
    token: str = Field(..., description="Bearer token; shown once, keep it secret.")
    funding: Funding
    amount_sats: int
    balance_sats: int
    status: str
    expires_in: int = Field(..., description="Seconds until an unfunded session lapses.")


class TopUp(BaseModel):
    amount_sats: Any = Field(None, examples=[1000])


class TopUpCreated(BaseModel):
    funding: Funding
    amount_sats: int
    balance_sats: int
    status: str


class Balance(BaseModel):
    balance_sats: int
    status: str
    expires_at: str
    expires_in: int
    ark_address: str | None
    funded: bool


# The one wire form of an instant (kept under this name for the routes that import it).
iso = format_optional


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


def validate_amount(rt: Runtime, value: Any) -> int:
    settings = rt.settings
    if value is None:
        raise InputError("amount_sats is required: the number of sats to fund the session with")
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            raise InputError("amount_sats must be a whole number of sats")
    if value < settings.min_session_sats:
        raise InputError(f"amount_sats must be at least {settings.min_session_sats}")
    if value > settings.max_session_sats:
        raise InputError(f"amount_sats must be at most {settings.max_session_sats}")
    return int(value)


def build_bip321(invoice: str | None, ark_address: str | None, amount_sats: int | None) -> str | None:
    """A BIP-321 URI with no on-chain address: ``bitcoin:?ark=...&lightning=...``."""
    params = []
    if ark_address:
        params.append(f"ark={ark_address}")
    if invoice:
        params.append(f"lightning={invoice}")
    if not params:
        return None
    if amount_sats:
        btc = f"{amount_sats / 100_000_000:.8f}".rstrip("0").rstrip(".")
        params.insert(0, f"amount={btc}")
    return "bitcoin:?" + "&".join(params)


def address_book(rt: Runtime) -> AddressBook:
    """The runtime's one address book (barkd mode only)."""
    book = rt.extras.get("address_book")
    if book is None:
        assert rt.barkd is not None
        settings = rt.settings
        book = AddressBook(
            rt.database, rt.barkd, pool_size=settings.address_pool_size, gap_limit=settings.address_gap_limit
        )
        rt.extras["address_book"] = book
    return book  # type: ignore[no-any-return]


async def new_funding(rt: Runtime, amount_sats: int, *, with_address: bool) -> tuple[dict[str, Any], str | None]:
    """A fresh invoice (and, for a session whose caller will pay, a fresh Ark address) from barkd."""
    if rt.barkd is None:
        raise WalletUnavailableError("payments are not configured")
    book = address_book(rt)
    try:
        address = await book.fresh_address() if with_address else None
        await book.close_gap()  # an invoice derives a key too
        invoice = await rt.barkd.create_invoice(amount_sats, rt.settings.invoice_description)
        await book.note_invoice(invoice.payment_hash)
    except BarkdError as exc:
        raise WalletUnavailableError(
            "the payment backend cannot issue an invoice right now (the Ark server may be unreachable); "
            "try again shortly"
        ) from exc
    return (
        {
            "payment_hash": invoice.payment_hash,
            "bolt11": invoice.bolt11,
            "amount_sats": amount_sats,
            "expires_at": invoice.expires_at,
        },
        address,
    )


def funding_view(invoice: dict[str, Any] | None, address: str | None, amount_sats: int) -> Funding:
    bolt11 = invoice["bolt11"] if invoice else None
    return Funding(
        lightning_invoice=bolt11,
        ark_address=address,
        payment_hash=invoice["payment_hash"] if invoice else None,
        invoice_expires_at=iso(invoice["expires_at"]) if invoice else None,
        bip321=build_bip321(bolt11, address, amount_sats),
    )


async def open_session(
    rt: Runtime, amount_sats: int, *, source: str = "api", client_ip: str | None = None
) -> tuple[str, SessionCreated]:
    """Create a session; shared by the HTTP API, the 402 challenge and MCP.

    With ``client_ip``, a client already holding ``max_unfunded_sessions_per_ip`` unfunded
    sessions is refused (429) before barkd is asked for an invoice or an address.
    """
    limit = rt.settings.max_unfunded_sessions_per_ip
    track = client_ip is not None and limit > 0 and rt.settings.payment_mode != "free"
    if track and await origins.unfunded_sessions_of(rt.database, client_ip or "") >= limit:
        raise RateLimitedError(
            f"this address already holds {limit} unpaid sessions: pay one of them, or wait until they lapse "
            f"({rt.settings.unpaid_session_ttl_s} s after creation)",
            details={"_headers": {"Retry-After": "60"}},
        )
    token = new_token()
    token_hash = hash_token(token)
    if rt.settings.payment_mode == "free":
        session_id = await rt.ledger.open_session(
            token_hash=token_hash, requested_sats=amount_sats, ark_address=None, source="free"
        )
        await rt.ledger.credit_free(session_id, amount_sats)
        invoice, address = None, None
    else:
        # An anonymous 402 challenge shares a small pool of addresses; a caller who asked for a
        # session gets a fresh one (address hygiene: payments/addresses.py).
        anonymous = source == "l402"
        invoice, address = await new_funding(rt, amount_sats, with_address=not anonymous)
        session_id = await rt.ledger.open_session(
            token_hash=token_hash, requested_sats=amount_sats, ark_address=address, source=source, invoice=invoice
        )
        if anonymous:
            try:
                address = await address_book(rt).pooled_address(session_id)
            except ArkgateError:
                address = None  # the invoice alone pays this session
        elif address is not None:
            await address_book(rt).assign(address, session_id)
    if track:
        await origins.record_origin(rt.database, session_id, client_ip or "")
    session = await rt.ledger.session_by_id(session_id)
    assert session is not None
    created = SessionCreated(
        token=token,
        funding=funding_view(invoice, address, amount_sats),
        amount_sats=amount_sats,
        balance_sats=session.balance_sats,
        status=session.public_status(),
        expires_in=max(0, int((session.expires_at - utcnow()).total_seconds())),
    )
    return token, created


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
    amount = validate_amount(rt, body.amount_sats)
    destination = _refund_to(rt, body.refund_to)
    ip = request.client.host if request.client else "unknown"
    await rt.limits.hit("sessions", ip, request.scope)
    webhook = None
    if body.callback_url is not None and rt.webhooks is not None:
        webhook = await subscriptions.vet_request(rt.webhooks.guard, body.callback_url, body.low_balance_sats)
    token, created = await open_session(rt, amount, client_ip=ip)
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
    if not isinstance(value, str) or "payouts" not in rt.extras:
        raise InputError("refund_to must be an Ark address, on a gateway that pays out (barkd mode)")
    return refund_to.validate_refund_to(value)


async def add_topup_invoice(rt: Runtime, session_id: int, amount_sats: int) -> dict[str, Any]:
    """A new invoice for an existing session, recorded so its payment credits that session."""
    limit = rt.settings.max_open_invoices_per_session
    now = utcnow()
    open_invoices = [
        i for i in await rt.ledger.invoices_of(session_id) if i["status"] == "pending" and i["expires_at"] > now
    ]
    if limit > 0 and len(open_invoices) >= limit:
        raise RateLimitedError(
            f"this session already has {limit} unpaid invoices: pay one of them, send sats to its Ark address, "
            "or wait until one expires",
            details={"_headers": {"Retry-After": "60"}},
        )
    invoice, _ = await new_funding(rt, amount_sats, with_address=False)
    invoice["purpose"] = "topup"
    await rt.ledger.add_invoice(session_id, invoice)
    return invoice


async def top_up_session(rt: Runtime, session: SessionInfo, amount_sats: int) -> TopUpCreated:
    """Top up the same token: a fresh invoice plus the session's Ark address (free mode credits at once)."""
    invoice = None
    if rt.settings.payment_mode == "free":
        await rt.ledger.credit_free(session.id, amount_sats)
    else:
        invoice = await add_topup_invoice(rt, session.id, amount_sats)
    session = await rt.ledger.session_by_id(session.id) or session
    return TopUpCreated(
        funding=funding_view(invoice, session.ark_address, amount_sats),
        amount_sats=amount_sats,
        balance_sats=session.balance_sats,
        status=session.public_status(),
    )


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
    amount = validate_amount(rt, body.amount_sats)
    await rt.limits.hit("sessions", request.client.host if request.client else "unknown", request.scope)
    return json_response((await top_up_session(rt, session, amount)).model_dump())


def balance_view(session: SessionInfo) -> Balance:
    now = utcnow()
    return Balance(
        balance_sats=session.balance_sats,
        status=session.public_status(now),
        expires_at=iso(session.expires_at) or "",
        expires_in=max(0, int((session.expires_at - now).total_seconds())),
        ark_address=session.ark_address,
        funded=session.funded_at is not None,
    )


def caller_balance_view(caller: Caller) -> dict[str, Any]:
    """The balance a caller can spend: a sub-key sees its session's balance capped by what its caps leave.

    A sub-key's answer also carries ``key`` (its limits and spending) so an agent can plan.
    """
    view = balance_view(caller.session).model_dump()
    if caller.key is not None:
        now = utcnow()
        remaining = caller.key.remaining_sats(now)
        if remaining is not None:
            view["balance_sats"] = min(view["balance_sats"], remaining)
        view["key"] = key_view(caller.key, now)
    return view


def key_view(key: subkeys.SubKey, now: datetime) -> dict[str, Any]:
    """A sub-key as the API shows it (never its token)."""
    limits = key.limits
    return {
        "key_id": key.key_id,
        "label": key.label,
        "status": key.status(now),
        "cap_sats": limits.cap_sats,
        "daily_cap_sats": limits.daily_cap_sats,
        "allowed": None if limits.allowed is None else list(limits.allowed),
        "spent_sats": limits.spent_sats,
        "spent_today_sats": key.spent_today_sats(now),
        "remaining_sats": key.remaining_sats(now),
        "created_at": iso(key.created_at),
        "expires_at": iso(limits.expires_at),
        "revoked_at": iso(limits.revoked_at),
    }


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
            "rail": p["rail"],
            "amount_sats": int(p["amount_sats"]),
            "payment_hash": p["payment_hash"],
            "ark_address": p["ark_address"],
            "late": bool(p["is_late"]),
            "credited_at": iso(p["created_at"]),
        }
        for p in await rt.ledger.payments_of(session.id)
    ]
    invoices = [
        {
            "payment_hash": i["payment_hash"],
            "amount_sats": int(i["amount_sats"]),
            "status": i["status"],
            "purpose": i["purpose"],
            "expires_at": iso(i["expires_at"]),
            "lightning_invoice": i["bolt11"],
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
            "created_at": iso(r.created_at),
            "ledger": [
                {
                    "kind": row["kind"],
                    "amount_sats": row["amount_sats"],
                    "reason": row["reason"],
                    "at": iso(row["created_at"]),
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
