"""The ledger: sessions, credits and call debits/refunds, each change one transaction.

Invariants (asserted by the tests after every scenario):
- a session's ``balance_sats`` equals sum(payments) - sum(debits) + sum(refunds);
- a payment identity (``payment_key``) is credited at most once, whatever races or replays;
- a received VTXO id is credited at most once, whatever movement or wallet id it comes with;
- a debit happens only if the balance covers it (one conditional UPDATE), so it never goes negative;
- a call is settled once: its refunds never exceed its debit (``charging.py`` holds these rules);
- a payout (withdrawal) is debited by the same conditional UPDATE before barkd sends anything, and
  settled once: ``completed``, or ``failed`` and refunded in full exactly once.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from types import SimpleNamespace
from typing import Any, TypeVar

import structlog
from sqlalchemy import bindparam, case, func, insert, or_, select, text, update
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from arkgate.db import batches, prepared
from arkgate.db import tables as t
from arkgate.db.engine import Database, utcnow
from arkgate.payments import charging
from arkgate.payments.batching import GroupCommit
from arkgate.payments.charging import INTERRUPTED, ChargeRequest, Settled, SettlementRequest
from arkgate.payments.kinds import (
    CallKind,
    CreditRail,
    InvoicePurpose,
    InvoiceStatus,
    PayoutPurpose,
    PayoutState,
    PublicSessionStatus,
    Rail,
    SessionStatus,
    as_call_kind,
    as_credit_rail,
    as_invoice_purpose,
    as_invoice_status,
    as_payout_purpose,
    as_payout_state,
    as_rail,
    as_session_status,
)

T = TypeVar("T")
log = structlog.get_logger("arkgate.ledger")

# A call's own timeout ends it; the sweep waits this much longer before refunding it from
# another instance (clock skew between instances, the settlement's own write).
SWEEP_GRACE_S = 30.0
DEFAULT_CALL_TIMEOUT_S = 60.0
_ALL = 2**62  # "refund everything": the settlement clamps a refund to the call's debit

TOKEN_PREFIX = "ak_"  # noqa: S105 - a prefix, not a secret


def new_token() -> str:
    """A session token: ``ak_`` + 256 bits of randomness."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    """Tokens are stored only as their SHA-256 (they carry 256 bits, so no salt or stretching is needed)."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_call_id() -> str:
    return secrets.token_hex(16)


def ark_payment_key(wallet_id: str, movement_id: int, address: str) -> str:
    """The one format of an Ark payment's key: barkd's wallet, its movement id, the receiving address."""
    if not wallet_id:
        raise ValueError("an Ark payment key needs barkd's wallet fingerprint")
    return f"ark:{wallet_id}:{movement_id}:{address}"


def lightning_payment_key(payment_hash: str) -> str:
    return f"ln:{payment_hash}"


@dataclass(frozen=True, kw_only=True)
class SessionInfo:
    id: int
    token_hash: str
    status: SessionStatus
    balance_sats: int
    requested_sats: int
    ark_address: str | None
    source: str  # api | l402 | mcp | free: who opened it (an open set, chosen by the callers)
    created_at: datetime
    expires_at: datetime
    funded_at: datetime | None
    last_call_at: datetime | None

    def public_status(self, now: datetime | None = None) -> PublicSessionStatus:
        """awaiting_payment | active | expired (an unfunded or spent session past its expiry)."""
        now = now or utcnow()
        if self.balance_sats <= 0 and now >= self.expires_at:
            return "expired"
        return self.status


@dataclass(frozen=True, kw_only=True)
class Credit:
    """One payment as barkd identifies it (BEHAVIOUR.md 3.5)."""

    rail: CreditRail
    payment_key: str
    amount_sats: int
    fee_sats: int = 0
    payment_hash: str | None = None
    movement_id: int | None = None
    ark_address: str | None = None


@dataclass(frozen=True, kw_only=True)
class CreditResult:
    credited: bool
    session_id: int | None
    amount_sats: int = 0
    balance_sats: int | None = None
    is_late: bool = False
    payment_key: str | None = None  # the payment's unique key, when credited


@dataclass(frozen=True, kw_only=True)
class Charge:
    session_id: int
    call_id: str
    endpoint_id: str
    amount_sats: int
    balance_sats: int
    key_id: str | None = None  # the sub-key that made the call


@dataclass(frozen=True, kw_only=True)
class PayoutRecord:
    """One withdrawal as the ``payouts`` table holds it (debited before barkd sends anything)."""

    payout_id: str
    session_id: int
    rail: Rail
    destination: str  # what barkd was asked to pay
    amount_sats: int  # taken from the balance
    fee_sats: int  # stated fee, part of amount_sats
    net_sats: int  # what the destination receives
    payment_hash: str | None  # Lightning: known before the send
    movement_id: int | None  # barkd's movement for this send, once matched
    state: PayoutState
    reason: str | None  # why it failed
    purpose: PayoutPurpose
    created_at: datetime
    deadline_at: datetime  # barkd's answer is overdue after this
    settled_at: datetime | None


@dataclass(frozen=True, kw_only=True, slots=True)
class NewInvoice:
    """An invoice barkd just issued, to record so its payment credits the session."""

    payment_hash: str
    bolt11: str
    amount_sats: int
    expires_at: datetime
    purpose: InvoicePurpose = "funding"


@dataclass(frozen=True, kw_only=True, slots=True)
class InvoiceRecord:
    """One row of the ``invoices`` table."""

    payment_hash: str
    session_id: int | None  # None: the session was pruned, or never existed (orphan)
    bolt11: str
    amount_sats: int
    purpose: InvoicePurpose
    status: InvoiceStatus
    created_at: datetime
    expires_at: datetime
    paid_at: datetime | None


@dataclass(frozen=True, kw_only=True, slots=True)
class PaymentRecord:
    """One credit as the ``payments`` table holds it."""

    id: int
    session_id: int | None  # None: an orphan payment, shown to the operator
    rail: CreditRail
    payment_key: str
    amount_sats: int
    fee_sats: int
    payment_hash: str | None
    movement_id: int | None
    ark_address: str | None
    is_late: bool
    created_at: datetime


@dataclass(frozen=True, kw_only=True, slots=True)
class ReceiptRow:
    """One ledger row of a call: its debit or one of its refunds."""

    kind: CallKind
    amount_sats: int
    reason: str | None
    created_at: datetime


@dataclass(kw_only=True)
class IdempotentReplay:
    status_code: int | None
    body: str | None
    request_hash: str


@dataclass(frozen=True, kw_only=True)
class PendingInvoice:
    payment_hash: str
    bolt11: str


@dataclass(frozen=True, kw_only=True)
class PendingReceives:
    """What may still be paid: invoices not yet paid or expired, and unfunded sessions' Ark addresses."""

    invoices: list[PendingInvoice]
    addresses: list[str]

    def __len__(self) -> int:
        return len(self.invoices) + len(self.addresses)


@dataclass(frozen=True, kw_only=True)
class ArkEntry:
    address: str
    amount_sats: int


@dataclass(kw_only=True)
class Receipt:
    call_id: str
    endpoint_id: str
    charged_sats: int = 0
    refunded_sats: int = 0
    created_at: datetime | None = None
    refund_reason: str | None = None
    is_in_flight: bool = False
    key_id: str | None = None  # the sub-key that spent it (None: the session's own token)
    rows: list[ReceiptRow] = field(default_factory=list)

    @property
    def cost_sats(self) -> int:
        return self.charged_sats - self.refunded_sats


class Ledger:
    def __init__(
        self,
        database: Database,
        *,
        session_ttl_s: int,
        unpaid_ttl_s: int = 3600,
        idempotency_ttl_s: int = 86400,
        instance_id: str = "local",
        group_commit: bool = True,
    ) -> None:
        self.db = database
        self.session_ttl = timedelta(seconds=session_ttl_s)
        self.unpaid_ttl = timedelta(seconds=unpaid_ttl_s)
        self.idempotency_ttl = timedelta(seconds=idempotency_ttl_s)
        self.instance_id = instance_id
        # Told of every refund once it committed (customer webhooks: call.refunded); must not block.
        self.on_refund: Callable[[Settled, str | None], None] | None = None
        self._group: GroupCommit | None = None
        if group_commit and database.sqlite_path is not None and database.write_lock is not None:
            self._group = GroupCommit(  # ``_write``'s operations are ``charging``'s rules
                database.sqlite_path, database.write_lock, synchronous=database.sqlite_synchronous
            )
        # PostgreSQL and MariaDB: the common charge in one round trip (``charging.py``); the charges that
        # arrive together share that round trip and its commit.
        self._charges = batches.ScriptBatch(database, prepared.DriverScript(charging.charge_script), key="call_id")
        self._session_script = prepared.DriverScript(_session_by_token_script)  # SQLite's reader
        # On a server, concurrent lookups and plain settlements go in one round trip per batch.
        self._sessions_by_token = batches.Coalescer(
            database, batches.KeyedScript(_sessions_by_token_script, key="token_hash"), claim=False
        )
        self._settlements = batches.Coalescer(
            database, batches.KeyedScript(charging.settle_script, key="call_id"), claim=True
        )

    def close(self) -> None:
        if self._group is not None:
            self._group.close()

    async def _write(self, operation: Callable[[Connection], T], *, savepoint: bool = False) -> T:
        """Run one of ``charging``'s rules in a write transaction (group-committed on SQLite).

        ``savepoint``: the rule may fail after writing, so a shared batch must isolate it.
        """
        if self._group is not None:
            return await self._group.run(operation, savepoint=savepoint)
        async with self.db.write() as conn:
            return await conn.run_sync(operation)

    # --- sessions ---------------------------------------------------------------------
    async def open_session(
        self,
        *,
        token_hash: str,
        requested_sats: int,
        ark_address: str | None,
        source: str = "api",
        invoice: NewInvoice | None = None,
    ) -> int:
        """Create an unfunded session (and its first invoice) in one transaction."""
        now = utcnow()
        async with self.db.write() as conn:
            result = await conn.execute(
                insert(t.sessions).values(
                    token_hash=token_hash,
                    status="awaiting_payment",
                    balance_sats=0,
                    requested_sats=requested_sats,
                    ark_address=ark_address,
                    source=source,
                    created_at=now,
                    expires_at=now + self.unpaid_ttl,
                )
            )
            session_id = int(result.inserted_primary_key[0])  # type: ignore[index]
            if invoice is not None:
                await self._insert_invoice(conn, session_id, invoice, now)
        return session_id

    async def add_invoice(self, session_id: int | None, invoice: NewInvoice) -> None:
        async with self.db.write() as conn:
            await self._insert_invoice(conn, session_id, invoice, utcnow())

    async def _insert_invoice(
        self, conn: AsyncConnection, session_id: int | None, invoice: NewInvoice, now: datetime
    ) -> None:
        await conn.execute(
            insert(t.invoices).values(
                payment_hash=invoice.payment_hash,
                session_id=session_id,
                bolt11=invoice.bolt11,
                amount_sats=invoice.amount_sats,
                purpose=invoice.purpose,
                status="pending",
                created_at=now,
                expires_at=invoice.expires_at,
            )
        )

    async def session_by_token(self, token_hash: str) -> SessionInfo | None:
        try:  # every paid call's and balance poll's lookup: one round trip on the driver where it can
            if self.db.is_sqlite:
                found = await prepared.fetchrow(self.db, self._session_script, {"p_token_hash": token_hash})
            else:
                found = await self._sessions_by_token.fetch(token_hash)
            row: Any = None if found is None else SimpleNamespace(**found)
        except prepared.NotApplicable:
            async with self.db.read() as conn:
                row = (await conn.execute(_SESSION_BY_TOKEN, {"p_token_hash": token_hash})).first()
        if row is None or not hmac.compare_digest(row.token_hash, token_hash):
            return None
        return _session(row)

    async def session_by_id(self, session_id: int) -> SessionInfo | None:
        async with self.db.read() as conn:
            row = (await conn.execute(select(t.sessions).where(t.sessions.c.id == session_id))).first()
        return None if row is None else _session(row)

    async def session_ids_by_address(self, addresses: Iterable[str]) -> dict[str, int]:
        wanted = list(set(addresses))
        if not wanted:
            return {}
        async with self.db.read() as conn:
            rows = await conn.execute(
                select(t.sessions.c.ark_address, t.sessions.c.id).where(t.sessions.c.ark_address.in_(wanted))
            )
            return {row.ark_address: row.id for row in rows}

    async def invoices_of(self, session_id: int) -> list[InvoiceRecord]:
        async with self.db.read() as conn:
            rows = await conn.execute(
                select(t.invoices).where(t.invoices.c.session_id == session_id).order_by(t.invoices.c.created_at)
            )
            return [_invoice(row) for row in rows]

    async def invoice(self, payment_hash: str) -> InvoiceRecord | None:
        async with self.db.read() as conn:
            row = (await conn.execute(select(t.invoices).where(t.invoices.c.payment_hash == payment_hash))).first()
        return None if row is None else _invoice(row)

    async def expire_invoices(self, now: datetime | None = None) -> int:
        """Mark pending invoices past their expiry as expired (they can still credit if barkd says paid)."""
        async with self.db.write() as conn:
            result = await conn.execute(
                update(t.invoices)
                .where(t.invoices.c.status == "pending", t.invoices.c.expires_at < (now or utcnow()))
                .values(status="expired")
            )
            return int(result.rowcount or 0)

    async def pending_receives(self, now: datetime | None = None) -> PendingReceives:
        """Receives a payment may still arrive on; the watcher's sync and catch-up cost grows with these.

        Addresses: unfunded sessions not yet lapsed, and sessions with a pending top-up invoice
        (a top-up may come over Ark too).
        """
        now = now or utcnow()
        async with self.db.read() as conn:
            invoices = [
                PendingInvoice(payment_hash=row.payment_hash, bolt11=row.bolt11)
                for row in await conn.execute(
                    select(t.invoices.c.payment_hash, t.invoices.c.bolt11, t.invoices.c.session_id)
                    .where(t.invoices.c.status == "pending", t.invoices.c.expires_at >= now)
                    .order_by(t.invoices.c.created_at)
                )
            ]
            topping_up = (
                select(t.invoices.c.session_id)
                .where(t.invoices.c.status == "pending", t.invoices.c.expires_at >= now)
                .scalar_subquery()
            )
            addresses = [
                row.ark_address
                for row in await conn.execute(
                    select(t.sessions.c.ark_address)
                    .where(
                        t.sessions.c.ark_address.is_not(None),
                        or_(
                            (t.sessions.c.status == "awaiting_payment") & (t.sessions.c.expires_at >= now),
                            t.sessions.c.id.in_(topping_up),
                        ),
                    )
                    .order_by(t.sessions.c.id)
                )
            ]
        return PendingReceives(invoices=invoices, addresses=addresses)

    async def cursor(self, name: str) -> str | None:
        """A watcher cursor (``watcher_cursors``); None if never written."""
        async with self.db.read() as conn:
            row = (
                await conn.execute(select(t.watcher_cursors.c.value).where(t.watcher_cursors.c.name == name))
            ).first()
        return None if row is None else str(row.value)

    async def set_cursor(self, name: str, value: str) -> None:
        try:
            async with self.db.write() as conn:
                result = await conn.execute(
                    update(t.watcher_cursors).where(t.watcher_cursors.c.name == name).values(value=value)
                )
                if not result.rowcount:
                    await conn.execute(insert(t.watcher_cursors).values(name=name, value=value))
        except IntegrityError:  # another instance inserted it first; its value is as good as ours
            return

    async def known_payment_keys(self) -> set[str]:
        async with self.db.read() as conn:
            return {row.payment_key for row in await conn.execute(select(t.payments.c.payment_key))}

    async def credit_free(self, session_id: int, amount_sats: int) -> CreditResult:
        """Free mode: a test balance, still recorded as a ledger row."""
        return await self.credit_lightning(
            Credit(rail="free", payment_key=f"free:{session_id}:{new_call_id()}", amount_sats=amount_sats),
            session_id=session_id,
        )

    async def credit_lightning(self, credit: Credit, *, session_id: int | None = None) -> CreditResult:
        """Credit a paid invoice (or a free grant) once; its session comes from the invoice row."""
        try:
            async with self.db.write() as conn:
                if session_id is None and credit.payment_hash is not None:
                    row = (
                        await conn.execute(
                            select(t.invoices.c.session_id).where(t.invoices.c.payment_hash == credit.payment_hash)
                        )
                    ).first()
                    session_id = row.session_id if row is not None else None
                result, _ = await self._credit(conn, credit, session_id)
                if credit.payment_hash is not None:
                    await conn.execute(
                        update(t.invoices)
                        .where(t.invoices.c.payment_hash == credit.payment_hash)
                        .values(status="paid", paid_at=utcnow())
                    )
                return result
        except IntegrityError:
            return CreditResult(credited=False, session_id=session_id)

    async def credit_ark_movement(
        self,
        *,
        wallet_id: str,
        movement_id: int,
        entries: Sequence[ArkEntry],
        vtxo_ids: Sequence[str],
    ) -> list[CreditResult]:
        """Credit one arkoor receive movement (possibly several addresses) in one transaction.

        A received VTXO id is credited at most once, whatever movement id or wallet id comes
        with it: if any of ``vtxo_ids`` is already recorded, the movement is a replay (the same
        movement under another wallet id, or a pre-0.3.0 duplicate) and credits nothing. The
        payment key (``ark_payment_key``) covers movements without VTXO ids.
        """
        keys = {entry.address: ark_payment_key(wallet_id, movement_id, entry.address) for entry in entries}
        try:
            async with self.db.write() as conn:
                if vtxo_ids:
                    seen = await conn.execute(
                        select(t.payment_vtxos.c.vtxo_id).where(t.payment_vtxos.c.vtxo_id.in_(list(vtxo_ids)))
                    )
                    if seen.first() is not None:
                        return []
                existing = {
                    row.payment_key
                    for row in await conn.execute(
                        select(t.payments.c.payment_key).where(t.payments.c.payment_key.in_(list(keys.values())))
                    )
                }
                owners = {
                    row.ark_address: row.id
                    for row in await conn.execute(
                        select(t.sessions.c.ark_address, t.sessions.c.id).where(
                            t.sessions.c.ark_address.in_(list(keys))
                        )
                    )
                }
                results: list[CreditResult] = []
                first_payment_id: int | None = None
                for entry in entries:
                    if keys[entry.address] in existing:
                        continue
                    credit = Credit(
                        rail="ark",
                        payment_key=keys[entry.address],
                        amount_sats=entry.amount_sats,
                        movement_id=movement_id,
                        ark_address=entry.address,
                    )
                    result, payment_id = await self._credit(conn, credit, owners.get(entry.address))
                    results.append(result)
                    if first_payment_id is None:
                        first_payment_id = payment_id
                if first_payment_id is not None and vtxo_ids:
                    # The VTXOs' primary key: a concurrent credit of the same VTXO fails here and rolls back.
                    await conn.execute(
                        insert(t.payment_vtxos),
                        [{"vtxo_id": v, "payment_id": first_payment_id} for v in dict.fromkeys(vtxo_ids)],
                    )
                return results
        except IntegrityError:
            return []  # another worker committed the same movement or VTXO first

    async def _credit(self, conn: AsyncConnection, credit: Credit, session_id: int | None) -> tuple[CreditResult, int]:
        now = utcnow()
        is_late = False
        if session_id is not None:
            row = (await conn.execute(select(t.sessions.c.expires_at).where(t.sessions.c.id == session_id))).first()
            if row is None:
                session_id = None
            else:
                is_late = row.expires_at < now
        result = await conn.execute(
            insert(t.payments).values(
                session_id=session_id,
                rail=credit.rail,
                payment_key=credit.payment_key,
                amount_sats=credit.amount_sats,
                fee_sats=credit.fee_sats,
                payment_hash=credit.payment_hash,
                movement_id=credit.movement_id,
                ark_address=credit.ark_address,
                is_late=is_late,
                created_at=now,
            )
        )
        payment_id = int(result.inserted_primary_key[0])  # type: ignore[index]
        if session_id is None:
            orphan = CreditResult(credited=True, session_id=None, amount_sats=credit.amount_sats, is_late=is_late)
            return orphan, payment_id
        await conn.execute(
            update(t.sessions)
            .where(t.sessions.c.id == session_id)
            .values(
                balance_sats=t.sessions.c.balance_sats + credit.amount_sats,
                # Credited, but a closed session stays closed (``charging._OPEN``).
                status=case((t.sessions.c.status == "closed", "closed"), else_="active"),
                funded_at=func.coalesce(t.sessions.c.funded_at, now),
                expires_at=now + self.session_ttl,
            )
        )
        balance = (
            await conn.execute(select(t.sessions.c.balance_sats).where(t.sessions.c.id == session_id))
        ).scalar_one()
        credited = CreditResult(
            credited=True,
            session_id=session_id,
            amount_sats=credit.amount_sats,
            balance_sats=int(balance),
            is_late=is_late,
            payment_key=credit.payment_key,
        )
        return credited, payment_id

    # --- debits -----------------------------------------------------------------------
    async def charge(
        self,
        token_hash: str,
        endpoint_id: str,
        amount_sats: int,
        *,
        call_id: str | None = None,
        idempotency: tuple[str, str] | None = None,
        timeout_s: float = DEFAULT_CALL_TIMEOUT_S,
        endpoint_tags: tuple[str, ...] = (),
    ) -> Charge:
        """Debit ``amount_sats`` if, and only if, the balance covers it, and record the call as in flight.

        With ``idempotency=(key, request_hash)`` the key is claimed in the same transaction, so
        two concurrent retries cannot both be charged (the loser gets ``IdempotencyConflict``).
        ``timeout_s`` is the call's own time budget: past it (plus a grace) any instance's sweep
        may refund the call as interrupted. ``token_hash`` may be a sub-key's: its caps and
        ``endpoint_tags`` (the endpoint's id and category) are checked in the same transaction.
        """
        call_id = call_id or new_call_id()
        now = utcnow()
        request = ChargeRequest(
            token_hash=token_hash,
            endpoint_id=endpoint_id,
            amount_sats=amount_sats,
            call_id=call_id,
            now=now,
            session_expires_at=now + self.session_ttl,
            idempotency=idempotency,
            idempotency_cutoff=now - self.idempotency_ttl,
            instance_id=self.instance_id,
            deadline_at=now + timedelta(seconds=timeout_s + SWEEP_GRACE_S),
            endpoint_tags=endpoint_tags or (endpoint_id,),
        )
        debited = await self._charge_in_one_statement(request)
        if debited is None:
            debited = await self._write(
                partial(charging.apply_charge, request=request), savepoint=idempotency is not None
            )
        return Charge(
            session_id=debited.session_id,
            call_id=call_id,
            endpoint_id=endpoint_id,
            amount_sats=amount_sats,
            balance_sats=debited.balance_sats,
            key_id=debited.key_id,
        )

    async def settle(
        self,
        call_id: str,
        *,
        refund_sats: int = 0,
        reason: str | None = None,
        release_idempotency: bool = False,
        idempotent_reply: tuple[int, str] | None = None,
    ) -> Settled | None:
        """End an in-flight call, refunding ``refund_sats`` (at most its debit); None if already settled."""
        request = SettlementRequest(
            call_id=call_id,
            refund_sats=refund_sats,
            reason=reason,
            now=utcnow(),
            release_idempotency=release_idempotency,
            idempotent_reply=idempotent_reply,
        )
        settled = await self._settle_in_one_statement(request)
        if settled is None:
            settled = await self._write(partial(charging.apply_settlement, request=request))
        if settled is not None and settled.refunded_sats > 0:
            # Every refund passes here (failed calls, unused reservations, the crash sweep).
            log.info(
                "call.refunded",
                endpoint_id=settled.endpoint_id,
                call_id=call_id,
                session_id=settled.session_id,
                amount_sats=settled.refunded_sats,
                reason=reason,
                balance_sats=settled.balance_sats,
            )
            if self.on_refund is not None:
                self.on_refund(settled, reason)
        return settled

    async def _charge_in_one_statement(self, request: ChargeRequest) -> charging.Debited | None:
        """The debit, its ledger row and in-flight row in one round trip, where that applies; else None."""
        if self.db.is_sqlite:  # its group commit charges (``_write``): no parameters to build for nothing
            return None
        params = charging.charge_statement_params(request)
        if params is None:
            return None
        try:
            # Ordered by token: instances batching the same sessions lock their rows in one order.
            row = await self._charges.fetchrow(params, key=request.call_id, order=request.token_hash)
        except prepared.NotApplicable:
            return None
        return None if row is None else charging.charged(row)

    async def _settle_in_one_statement(self, request: SettlementRequest) -> Settled | None:
        if self.db.is_sqlite or not charging.plainly_settled(request):  # SQLite: its group commit settles
            return None
        try:
            row = await self._settlements.fetch(request.call_id)
        except prepared.NotApplicable:
            return None
        return None if row is None else charging.settled(request, row)

    async def refund(self, charge: Charge, amount_sats: int, *, reason: str, release_idempotency: bool = False) -> int:
        """Settle the call giving back ``amount_sats`` of it; returns the session's balance.

        Only the call's first settlement refunds anything, and never more than its debit.
        """
        settled = await self.settle(
            charge.call_id,
            refund_sats=amount_sats,
            reason=reason,
            release_idempotency=release_idempotency,
        )
        if settled is not None and settled.balance_sats is not None:
            return settled.balance_sats
        session = await self.session_by_id(charge.session_id)
        return session.balance_sats if session is not None else charge.balance_sats

    # --- payouts ------------------------------------------------------------------------
    async def record_payout(
        self,
        token_hash: str,
        *,
        payout_id: str,
        amount_sats: int,
        fee_sats: int,
        net_sats: int,
        rail: Rail,
        destination: str,
        payment_hash: str | None,
        purpose: PayoutPurpose,
        deadline_s: float,
    ) -> Charge:
        """Debit ``amount_sats`` (the one conditional debit) and record the payout ``pending``, before the send."""
        now = utcnow()
        charge = ChargeRequest(
            token_hash=token_hash,
            endpoint_id=charging.PAYOUT_ENDPOINT,
            amount_sats=amount_sats,
            call_id=payout_id,
            now=now,
            session_expires_at=now + self.session_ttl,
            idempotency=None,
            idempotency_cutoff=now,
            instance_id=self.instance_id,
            deadline_at=now + timedelta(seconds=deadline_s),
        )
        request = charging.PayoutRequest(
            charge=charge,
            rail=rail,
            destination=destination,
            fee_sats=fee_sats,
            net_sats=net_sats,
            payment_hash=payment_hash,
            purpose=purpose,
        )
        debited = await self._write(partial(charging.apply_payout, request=request))
        log.info(
            "payout.recorded",
            payout_id=payout_id,
            session_id=debited.session_id,
            amount_sats=amount_sats,
            fee_sats=fee_sats,
            rail=rail,
        )
        return Charge(
            session_id=debited.session_id,
            call_id=payout_id,
            endpoint_id=charging.PAYOUT_ENDPOINT,
            amount_sats=amount_sats,
            balance_sats=debited.balance_sats,
        )

    async def settle_payout(
        self, payout_id: str, *, state: PayoutState, reason: str | None = None, movement_id: int | None = None
    ) -> Settled | None:
        """End a pending payout once (``completed``, or ``failed`` and refunded); None if already settled."""
        request = charging.PayoutSettlement(
            payout_id=payout_id, state=state, reason=reason, movement_id=movement_id, now=utcnow()
        )
        try:
            settled = await self._write(partial(charging.apply_payout_settlement, request=request), savepoint=True)
        except IntegrityError:
            return None  # that movement already settled another payout: this one stays pending
        if settled is not None:
            log.info(
                "payout.settled",
                payout_id=payout_id,
                session_id=settled.session_id,
                state=state,
                reason=reason,
                refunded_sats=settled.refunded_sats,
                balance_sats=settled.balance_sats,
            )
        return settled

    async def close_session(self, session_id: int) -> None:
        """Mark a session closed: its token is refused from now on, even if a late payment credits it."""
        async with self.db.write() as conn:
            await conn.execute(update(t.sessions).where(t.sessions.c.id == session_id).values(status="closed"))

    async def payout(self, payout_id: str) -> PayoutRecord | None:
        async with self.db.read() as conn:
            row = (await conn.execute(select(t.payouts).where(t.payouts.c.payout_id == payout_id))).first()
        return None if row is None else _payout(row)

    async def payouts_of(self, session_id: int, *, limit: int = 100) -> list[PayoutRecord]:
        async with self.db.read() as conn:
            rows = await conn.execute(
                select(t.payouts)
                .where(t.payouts.c.session_id == session_id)
                .order_by(t.payouts.c.id.desc())
                .limit(limit)
            )
            return [_payout(row) for row in rows]

    async def pending_payouts(self) -> list[PayoutRecord]:
        async with self.db.read() as conn:
            rows = await conn.execute(select(t.payouts).where(t.payouts.c.state == "pending").order_by(t.payouts.c.id))
            return [_payout(row) for row in rows]

    async def claimed_movement_ids(self, movement_ids: Iterable[int]) -> set[int]:
        wanted = list(set(movement_ids))
        if not wanted:
            return set()
        async with self.db.read() as conn:
            rows = await conn.execute(select(t.payouts.c.movement_id).where(t.payouts.c.movement_id.in_(wanted)))
            return {int(row.movement_id) for row in rows}

    async def payouts_since(self, session_id: int, since: datetime) -> int:
        async with self.db.read() as conn:
            total = (
                await conn.execute(
                    select(func.count()).where(t.payouts.c.session_id == session_id, t.payouts.c.created_at >= since)
                )
            ).scalar_one()
        return int(total)

    # --- interrupted calls ----------------------------------------------------------------
    async def interrupted_calls(self, *, include_own: bool, now: datetime | None = None) -> list[str]:
        """In-flight calls past their deadline; with ``include_own``, also this instance's (a restart's)."""
        flight = t.calls_in_flight
        condition = flight.c.deadline_at < (now or utcnow())
        if include_own:
            condition = or_(condition, flight.c.instance_id == self.instance_id)
        async with self.db.read() as conn:
            rows = await conn.execute(select(flight.c.call_id).where(condition).order_by(flight.c.started_at))
            return [row.call_id for row in rows]

    async def sweep_interrupted(self, *, include_own: bool, now: datetime | None = None) -> list[Settled]:
        """Refund every interrupted call in full (reason ``interrupted``) and release its Idempotency-Key.

        Safe with several instances sweeping at once: each settlement is a conditional claim,
        so exactly one sweeper refunds a given call.
        """
        settled: list[Settled] = []
        for call_id in await self.interrupted_calls(include_own=include_own, now=now):
            result = await self.settle(call_id, refund_sats=_ALL, reason=INTERRUPTED, release_idempotency=True)
            if result is not None:
                settled.append(result)
        return settled

    async def in_flight_call_ids(self, session_id: int) -> set[str]:
        async with self.db.read() as conn:
            rows = await conn.execute(
                select(t.calls_in_flight.c.call_id).where(t.calls_in_flight.c.session_id == session_id)
            )
            return {row.call_id for row in rows}

    # --- idempotency --------------------------------------------------------------------
    async def idempotent_replay(self, token_hash: str, key: str, ttl_s: int) -> IdempotentReplay | None:
        cutoff = utcnow() - timedelta(seconds=ttl_s)
        columns = (t.idempotency_keys.c.status_code, t.idempotency_keys.c.body, t.idempotency_keys.c.request_hash)
        async with self.db.read() as conn:
            row = (
                await conn.execute(
                    select(*columns)
                    .select_from(t.idempotency_keys.join(t.sessions))
                    .where(
                        t.sessions.c.token_hash == token_hash,
                        t.idempotency_keys.c.idem_key == key,
                        t.idempotency_keys.c.created_at >= cutoff,
                    )
                )
            ).first()
            if row is None:  # a sub-key's token: its keys are scoped to it (charging.scoped_idempotency_key)
                sub = t.session_keys
                row = (
                    await conn.execute(
                        select(*columns)
                        .select_from(t.idempotency_keys.join(sub, sub.c.session_id == t.idempotency_keys.c.session_id))
                        .where(
                            sub.c.token_hash == token_hash,
                            t.idempotency_keys.c.idem_key == sub.c.key_id + charging.idempotency_scope_suffix(key),
                            t.idempotency_keys.c.created_at >= cutoff,
                        )
                    )
                ).first()
        if row is None:
            return None
        return IdempotentReplay(status_code=row.status_code, body=row.body, request_hash=row.request_hash)

    # --- reading the ledger ---------------------------------------------------------------
    async def payments_of(self, session_id: int) -> list[PaymentRecord]:
        async with self.db.read() as conn:
            rows = await conn.execute(
                select(t.payments).where(t.payments.c.session_id == session_id).order_by(t.payments.c.id)
            )
            return [_payment(row) for row in rows]

    async def receipts_of(self, session_id: int, *, limit: int = 100, key_id: str | None = None) -> list[Receipt]:
        """The session's calls (with ``key_id``, only that sub-key's), newest first, with debit and refunds."""
        async with self.db.read() as conn:
            recent = (
                select(t.calls.c.call_id)
                .where(t.calls.c.session_id == session_id, t.calls.c.kind == "debit")
                .order_by(t.calls.c.id.desc())
                .limit(limit)
            )
            if key_id is not None:
                recent = recent.where(t.calls.c.key_id == key_id)
            call_ids = [row.call_id for row in await conn.execute(recent)]
            if not call_ids:
                return []
            rows = await conn.execute(select(t.calls).where(t.calls.c.call_id.in_(call_ids)).order_by(t.calls.c.id))
            receipts: dict[str, Receipt] = {cid: Receipt(call_id=cid, endpoint_id="") for cid in call_ids}
            for row in rows:
                receipt = receipts[row.call_id]
                receipt.endpoint_id = row.endpoint_id
                receipt.rows.append(
                    ReceiptRow(
                        kind=as_call_kind(row.kind),
                        amount_sats=int(row.amount_sats),
                        reason=row.reason,
                        created_at=row.created_at,
                    )
                )
                if row.kind == "debit":
                    receipt.charged_sats += int(row.amount_sats)
                    receipt.created_at = row.created_at
                    receipt.key_id = row.key_id
                else:
                    receipt.refunded_sats += int(row.amount_sats)
                    receipt.refund_reason = row.reason
            flying = await conn.execute(
                select(t.calls_in_flight.c.call_id).where(t.calls_in_flight.c.call_id.in_(call_ids))
            )
            for row in flying:
                receipts[row.call_id].is_in_flight = True
        return [receipts[cid] for cid in call_ids]

    async def spent_today(self, session_id: int, endpoint_ids: Iterable[str]) -> int:
        since = utcnow().replace(hour=0, minute=0, second=0, microsecond=0)
        signed = case((t.calls.c.kind == "debit", t.calls.c.amount_sats), else_=-t.calls.c.amount_sats)
        async with self.db.read() as conn:
            total = (
                await conn.execute(
                    select(func.coalesce(func.sum(signed), 0)).where(
                        t.calls.c.session_id == session_id,
                        t.calls.c.endpoint_id.in_(list(endpoint_ids)),
                        t.calls.c.created_at >= since,
                    )
                )
            ).scalar_one()
        return int(total)

    async def ledger_sums(self) -> dict[int, tuple[int, int]]:
        """Per session: (cached balance, sum of its ledger rows). Equal for every session, always."""
        signed = case((t.calls.c.kind == "debit", -t.calls.c.amount_sats), else_=t.calls.c.amount_sats)
        async with self.db.read() as conn:
            balances = {row.id: int(row.balance_sats) for row in await conn.execute(select(t.sessions))}
            credits = {
                row.session_id: int(row.total)
                for row in await conn.execute(
                    select(t.payments.c.session_id, func.sum(t.payments.c.amount_sats).label("total"))
                    .where(t.payments.c.session_id.is_not(None))
                    .group_by(t.payments.c.session_id)
                )
            }
            calls = {
                row.session_id: int(row.total)
                for row in await conn.execute(
                    select(t.calls.c.session_id, func.sum(signed).label("total")).group_by(t.calls.c.session_id)
                )
            }
        return {sid: (bal, credits.get(sid, 0) + calls.get(sid, 0)) for sid, bal in balances.items()}

    async def inconsistent_sessions(self) -> list[tuple[int, int, int]]:
        return [
            (sid, bal, total) for sid, (bal, total) in (await self.ledger_sums()).items() if bal != total or bal < 0
        ]

    async def liabilities_sats(self) -> int:
        async with self.db.read() as conn:
            total = (await conn.execute(select(func.coalesce(func.sum(t.sessions.c.balance_sats), 0)))).scalar_one()
        return int(total)


_SESSION_BY_TOKEN = select(t.sessions).where(t.sessions.c.token_hash == bindparam("p_token_hash"))


def _session_by_token_script(dialect: Dialect) -> tuple[Any, ...]:
    return (_SESSION_BY_TOKEN,)


def _sessions_by_token_script(dialect: Dialect, matches: Callable[[Any], Any]) -> tuple[Any, ...]:
    lookup = select(t.sessions).where(matches(t.sessions.c.token_hash))
    # MariaDB: the SELECT opens a transaction (no autocommit); its COMMIT goes in the same round trip.
    return (lookup, text("COMMIT")) if dialect.name == "mysql" else (lookup,)


def _session(row: Any) -> SessionInfo:
    return SessionInfo(
        id=row.id,
        token_hash=row.token_hash,
        status=as_session_status(row.status),
        balance_sats=int(row.balance_sats),
        requested_sats=int(row.requested_sats),
        ark_address=row.ark_address,
        source=row.source,
        created_at=row.created_at,
        expires_at=row.expires_at,
        funded_at=row.funded_at,
        last_call_at=row.last_call_at,
    )


def _payout(row: Any) -> PayoutRecord:
    return PayoutRecord(
        payout_id=str(row.payout_id),
        session_id=int(row.session_id),
        rail=as_rail(row.rail),
        destination=str(row.destination),
        amount_sats=int(row.amount_sats),
        fee_sats=int(row.fee_sats),
        net_sats=int(row.net_sats),
        payment_hash=row.payment_hash,
        movement_id=None if row.movement_id is None else int(row.movement_id),
        state=as_payout_state(row.state),
        reason=row.reason,
        purpose=as_payout_purpose(row.purpose),
        created_at=row.created_at,
        deadline_at=row.deadline_at,
        settled_at=row.settled_at,
    )


def _invoice(row: Any) -> InvoiceRecord:
    return InvoiceRecord(
        payment_hash=str(row.payment_hash),
        session_id=None if row.session_id is None else int(row.session_id),
        bolt11=str(row.bolt11),
        amount_sats=int(row.amount_sats),
        purpose=as_invoice_purpose(row.purpose),
        status=as_invoice_status(row.status),
        created_at=row.created_at,
        expires_at=row.expires_at,
        paid_at=row.paid_at,
    )


def _payment(row: Any) -> PaymentRecord:
    return PaymentRecord(
        id=int(row.id),
        session_id=None if row.session_id is None else int(row.session_id),
        rail=as_credit_rail(row.rail),
        payment_key=str(row.payment_key),
        amount_sats=int(row.amount_sats),
        fee_sats=int(row.fee_sats),
        payment_hash=row.payment_hash,
        movement_id=None if row.movement_id is None else int(row.movement_id),
        ark_address=row.ark_address,
        is_late=bool(row.is_late),
        created_at=row.created_at,
    )
