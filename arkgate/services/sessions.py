"""Sessions as a service: open, fund and top up, shared by the HTTP API, the 402 challenge, MCP and the pages.

Routers parse and answer HTTP; everything that asks barkd for an invoice or an address, or writes a
session, happens here, with typed values (``Invoice`` from the barkd adapter, pydantic views out).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, Field

from arkgate.db.engine import Database, utcnow
from arkgate.errors import ArkgateError, InputError, RateLimitedError, WalletUnavailableError
from arkgate.payments import origins, subkeys
from arkgate.payments.addresses import AddressBook
from arkgate.payments.barkd import BarkdClient, BarkdError, Invoice
from arkgate.payments.kinds import InvoicePurpose
from arkgate.payments.ledger import InvoiceRecord, Ledger, NewInvoice, SessionInfo, hash_token, new_token
from arkgate.services.auth import Caller
from arkgate.settings import Settings
from arkgate.timestamps import format_optional


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


def invoice_of_row(row: InvoiceRecord) -> Invoice:
    """A ledger invoice row as the adapter's ``Invoice``."""
    return Invoice(
        bolt11=row.bolt11,
        payment_hash=row.payment_hash,
        amount_sats=row.amount_sats,
        expires_at=row.expires_at,
    )


def _ledger_invoice(invoice: Invoice, purpose: InvoicePurpose) -> NewInvoice:
    return NewInvoice(
        payment_hash=invoice.payment_hash,
        bolt11=invoice.bolt11,
        amount_sats=invoice.amount_sats,
        expires_at=invoice.expires_at,
        purpose=purpose,
    )


def funding_view(invoice: Invoice | None, address: str | None, amount_sats: int) -> Funding:
    bolt11 = invoice.bolt11 if invoice else None
    return Funding(
        lightning_invoice=bolt11,
        ark_address=address,
        payment_hash=invoice.payment_hash if invoice else None,
        invoice_expires_at=format_optional(invoice.expires_at) if invoice else None,
        bip321=build_bip321(bolt11, address, amount_sats),
    )


def balance_view(session: SessionInfo) -> Balance:
    now = utcnow()
    return Balance(
        balance_sats=session.balance_sats,
        status=session.public_status(now),
        expires_at=format_optional(session.expires_at) or "",
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
        "created_at": format_optional(key.created_at),
        "expires_at": format_optional(limits.expires_at),
        "revoked_at": format_optional(limits.revoked_at),
    }


class SessionService:
    """Opens, funds and tops up sessions; the one holder of the address book (barkd mode)."""

    def __init__(self, *, settings: Settings, database: Database, ledger: Ledger, barkd: BarkdClient | None) -> None:
        self.settings = settings
        self.database = database
        self.ledger = ledger
        self.barkd = barkd
        self.address_book: AddressBook | None = (
            None
            if barkd is None
            else AddressBook(
                database, barkd, pool_size=settings.address_pool_size, gap_limit=settings.address_gap_limit
            )
        )

    def validate_amount(self, value: Any) -> int:
        """``amount_sats`` as the API accepts it: a whole number within the session limits."""
        settings = self.settings
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

    def _wallet(self) -> tuple[BarkdClient, AddressBook]:
        if self.barkd is None or self.address_book is None:
            raise WalletUnavailableError("payments are not configured")
        return self.barkd, self.address_book

    async def new_funding(self, amount_sats: int, *, with_address: bool) -> tuple[Invoice, str | None]:
        """A fresh invoice (and, for a session whose caller will pay, a fresh Ark address) from barkd."""
        barkd, book = self._wallet()
        try:
            address = await book.fresh_address() if with_address else None
            await book.close_gap()  # an invoice derives a key too
            invoice = await barkd.create_invoice(amount_sats, self.settings.invoice_description)
            await book.note_invoice(invoice.payment_hash)
        except BarkdError as exc:
            raise WalletUnavailableError(
                "the payment backend cannot issue an invoice right now (the Ark server may be unreachable); "
                "try again shortly"
            ) from exc
        # The session is sized by what was asked, whatever barkd echoes.
        return Invoice(
            bolt11=invoice.bolt11,
            payment_hash=invoice.payment_hash,
            amount_sats=amount_sats,
            expires_at=invoice.expires_at,
        ), address

    async def open(
        self, amount_sats: int, *, source: str = "api", client_ip: str | None = None
    ) -> tuple[str, SessionCreated]:
        """Create a session; shared by the HTTP API, the 402 challenge and MCP.

        With ``client_ip``, a client already holding ``max_unfunded_sessions_per_ip`` unfunded
        sessions is refused (429) before barkd is asked for an invoice or an address.
        """
        settings = self.settings
        limit = settings.max_unfunded_sessions_per_ip
        track = client_ip is not None and limit > 0 and settings.payment_mode != "free"
        if track and await origins.unfunded_sessions_of(self.database, client_ip or "") >= limit:
            raise RateLimitedError(
                f"this address already holds {limit} unpaid sessions: pay one of them, or wait until they lapse "
                f"({settings.unpaid_session_ttl_s} s after creation)",
                details={"_headers": {"Retry-After": "60"}},
            )
        token = new_token()
        token_hash = hash_token(token)
        invoice: Invoice | None = None
        address: str | None = None
        if settings.payment_mode == "free":
            session_id = await self.ledger.open_session(
                token_hash=token_hash, requested_sats=amount_sats, ark_address=None, source="free"
            )
            await self.ledger.credit_free(session_id, amount_sats)
        else:
            # An anonymous 402 challenge shares a small pool of addresses; a caller who asked for a
            # session gets a fresh one (address hygiene: payments/addresses.py).
            anonymous = source == "l402"
            invoice, address = await self.new_funding(amount_sats, with_address=not anonymous)
            _, book = self._wallet()
            session_id = await self.ledger.open_session(
                token_hash=token_hash,
                requested_sats=amount_sats,
                ark_address=address,
                source=source,
                invoice=_ledger_invoice(invoice, "funding"),
            )
            if anonymous:
                try:
                    address = await book.pooled_address(session_id)
                except ArkgateError:
                    address = None  # the invoice alone pays this session
            elif address is not None:
                await book.assign(address, session_id)
        if track:
            await origins.record_origin(self.database, session_id, client_ip or "")
        session = await self.ledger.session_by_id(session_id)
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

    async def add_topup_invoice(self, session_id: int, amount_sats: int) -> Invoice:
        """A new invoice for an existing session, recorded so its payment credits that session."""
        limit = self.settings.max_open_invoices_per_session
        if limit > 0 and len(await self.open_invoices(session_id)) >= limit:
            raise RateLimitedError(
                f"this session already has {limit} unpaid invoices: pay one of them, send sats to its Ark address, "
                "or wait until one expires",
                details={"_headers": {"Retry-After": "60"}},
            )
        invoice, _ = await self.new_funding(amount_sats, with_address=False)
        await self.ledger.add_invoice(session_id, _ledger_invoice(invoice, "topup"))
        return invoice

    async def open_invoices(self, session_id: int, *, margin: timedelta = timedelta(0)) -> list[Invoice]:
        """The session's pending invoices that stay payable for at least ``margin``, oldest first."""
        cutoff = utcnow() + margin
        return [
            invoice_of_row(row)
            for row in await self.ledger.invoices_of(session_id)
            if row.status == "pending" and row.expires_at > cutoff
        ]

    async def top_up(self, session: SessionInfo, amount_sats: int) -> TopUpCreated:
        """Top up the same token: a fresh invoice plus the session's Ark address (free mode credits at once)."""
        invoice = None
        if self.settings.payment_mode == "free":
            await self.ledger.credit_free(session.id, amount_sats)
        else:
            invoice = await self.add_topup_invoice(session.id, amount_sats)
        session = await self.ledger.session_by_id(session.id) or session
        return TopUpCreated(
            funding=funding_view(invoice, session.ark_address, amount_sats),
            amount_sats=amount_sats,
            balance_sats=session.balance_sats,
            status=session.public_status(),
        )
