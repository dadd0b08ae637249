"""The ledger: sessions, credits and call debits/refunds, each change one transaction.

Invariants (asserted by the tests after every scenario):
- a session's ``balance_sats`` equals sum(payments) - sum(debits) + sum(refunds);
- a payment identity (``payment_key``) is credited at most once, whatever races or replays;
- a debit happens only if the balance covers it (one conditional UPDATE), so it never goes negative.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from arkgate.db import tables as t
from arkgate.db.engine import Database, utcnow
from arkgate.payments.batching import ChargeRequest, IdempotencyConflict, SqliteChargeBatcher, refusal

TOKEN_PREFIX = "ak_"  # noqa: S105 - a prefix, not a secret


def new_token() -> str:
    """A session token: ``ak_`` + 256 bits of randomness."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    """Tokens are stored only as their SHA-256 (they carry 256 bits, so no salt or stretching is needed)."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_call_id() -> str:
    return secrets.token_hex(16)


@dataclass(frozen=True, kw_only=True)
class SessionInfo:
    id: int
    token_hash: str
    status: str
    balance_sats: int
    requested_sats: int
    ark_address: str | None
    source: str
    created_at: datetime
    expires_at: datetime
    funded_at: datetime | None
    last_call_at: datetime | None

    def public_status(self, now: datetime | None = None) -> str:
        """awaiting_payment | active | expired (an unfunded or spent session past its expiry)."""
        now = now or utcnow()
        if self.balance_sats <= 0 and now >= self.expires_at:
            return "expired"
        return self.status


@dataclass(frozen=True, kw_only=True)
class Credit:
    """One payment as barkd identifies it (BEHAVIOUR.md 3.5)."""

    rail: str  # lightning | ark | free
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


@dataclass(frozen=True, kw_only=True)
class Charge:
    session_id: int
    call_id: str
    endpoint_id: str
    amount_sats: int
    balance_sats: int


@dataclass(kw_only=True)
class IdempotentReplay:
    status_code: int | None
    body: str | None
    request_hash: str


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
    rows: list[dict[str, Any]] = field(default_factory=list)

    @property
    def cost_sats(self) -> int:
        return self.charged_sats - self.refunded_sats


class Ledger:
    def __init__(
        self, database: Database, *, session_ttl_s: int, unpaid_ttl_s: int = 3600, idempotency_ttl_s: int = 86400
    ) -> None:
        self.db = database
        self.session_ttl = timedelta(seconds=session_ttl_s)
        self.unpaid_ttl = timedelta(seconds=unpaid_ttl_s)
        self.idempotency_ttl = timedelta(seconds=idempotency_ttl_s)
        self._batcher: SqliteChargeBatcher | None = None
        if database.sqlite_path is not None and database.write_lock is not None:
            self._batcher = SqliteChargeBatcher(database.sqlite_path, database.write_lock)

    def close(self) -> None:
        if self._batcher is not None:
            self._batcher.close()

    # --- sessions ---------------------------------------------------------------------
    async def open_session(
        self,
        *,
        token_hash: str,
        requested_sats: int,
        ark_address: str | None,
        source: str = "api",
        invoice: dict[str, Any] | None = None,
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

    async def add_invoice(self, session_id: int | None, invoice: dict[str, Any]) -> None:
        async with self.db.write() as conn:
            await self._insert_invoice(conn, session_id, invoice, utcnow())

    async def _insert_invoice(
        self, conn: AsyncConnection, session_id: int | None, invoice: dict[str, Any], now: datetime
    ) -> None:
        await conn.execute(
            insert(t.invoices).values(
                payment_hash=invoice["payment_hash"],
                session_id=session_id,
                bolt11=invoice["bolt11"],
                amount_sats=invoice["amount_sats"],
                purpose=invoice.get("purpose", "funding"),
                status="pending",
                created_at=now,
                expires_at=invoice["expires_at"],
            )
        )

    async def session_by_token(self, token_hash: str) -> SessionInfo | None:
        async with self.db.read() as conn:
            row = (await conn.execute(select(t.sessions).where(t.sessions.c.token_hash == token_hash))).first()
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

    async def invoices_of(self, session_id: int) -> list[dict[str, Any]]:
        async with self.db.read() as conn:
            rows = await conn.execute(
                select(t.invoices).where(t.invoices.c.session_id == session_id).order_by(t.invoices.c.created_at)
            )
            return [dict(row._mapping) for row in rows]

    async def invoice(self, payment_hash: str) -> dict[str, Any] | None:
        async with self.db.read() as conn:
            row = (await conn.execute(select(t.invoices).where(t.invoices.c.payment_hash == payment_hash))).first()
        return None if row is None else dict(row._mapping)

    async def expire_invoices(self, now: datetime | None = None) -> int:
        """Mark pending invoices past their expiry as expired (they can still credit if barkd says paid)."""
        async with self.db.write() as conn:
            result = await conn.execute(
                update(t.invoices)
                .where(t.invoices.c.status == "pending", t.invoices.c.expires_at < (now or utcnow()))
                .values(status="expired")
            )
            return int(result.rowcount or 0)

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

        Keys: (wallet, movement id, address) per entry, and each received VTXO id once, so a
        duplicated movement with the same ``output_vtxos`` (barkd before 0.3.0) credits nothing.
        """
        keys = {entry.address: f"ark:{wallet_id}:{movement_id}:{entry.address}" for entry in entries}
        try:
            async with self.db.write() as conn:
                if vtxo_ids:
                    seen = await conn.execute(
                        select(t.payments.c.movement_id)
                        .select_from(t.payment_vtxos.join(t.payments))
                        .where(t.payment_vtxos.c.vtxo_id.in_(list(vtxo_ids)))
                    )
                    if any(row.movement_id != movement_id for row in seen):
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
                    recorded = {
                        row.vtxo_id
                        for row in await conn.execute(
                            select(t.payment_vtxos.c.vtxo_id).where(t.payment_vtxos.c.vtxo_id.in_(list(vtxo_ids)))
                        )
                    }
                    fresh = [v for v in dict.fromkeys(vtxo_ids) if v not in recorded]
                    if fresh:
                        await conn.execute(
                            insert(t.payment_vtxos),
                            [{"vtxo_id": v, "payment_id": first_payment_id} for v in fresh],
                        )
                return results
        except IntegrityError:
            return []  # another worker committed the same movement first

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
                status="active",
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
    ) -> Charge:
        """Debit ``amount_sats`` if, and only if, the balance covers it: one conditional UPDATE.

        With ``idempotency=(key, request_hash)`` the key is claimed in the same transaction, so
        two concurrent retries cannot both be charged.
        """
        call_id = call_id or new_call_id()
        now = utcnow()
        if self._batcher is not None:
            request = ChargeRequest(
                token_hash=token_hash,
                endpoint_id=endpoint_id,
                amount_sats=amount_sats,
                call_id=call_id,
                now=now,
                expires_at=now + self.session_ttl,
                idempotency=idempotency,
                idempotency_cutoff=now - self.idempotency_ttl,
            )
            try:
                session_id, balance = await self._batcher.charge(request)
            except IdempotencyConflict:
                raise IntegrityError("idempotency key already claimed", None, Exception()) from None
            return Charge(
                session_id=session_id,
                call_id=call_id,
                endpoint_id=endpoint_id,
                amount_sats=amount_sats,
                balance_sats=balance,
            )
        covered = and_(t.sessions.c.token_hash == token_hash, t.sessions.c.balance_sats >= amount_sats)
        values = {
            "balance_sats": t.sessions.c.balance_sats - amount_sats,
            "last_call_at": now,
            "expires_at": now + self.session_ttl,
        }
        async with self.db.write() as conn:
            if self.db.supports_update_returning:
                row = (
                    await conn.execute(
                        update(t.sessions)
                        .where(covered)
                        .values(**values)
                        .returning(t.sessions.c.id, t.sessions.c.balance_sats)
                    )
                ).first()
            else:
                result = await conn.execute(update(t.sessions).where(covered).values(**values))
                row = None
                if result.rowcount:
                    row = (
                        await conn.execute(
                            select(t.sessions.c.id, t.sessions.c.balance_sats).where(
                                t.sessions.c.token_hash == token_hash
                            )
                        )
                    ).first()
            if row is None:
                await self._explain_refusal(conn, token_hash, amount_sats)
            assert row is not None
            session_id, balance = int(row[0]), int(row[1])
            if idempotency is not None:
                key, request_hash = idempotency
                await conn.execute(
                    delete(t.idempotency_keys).where(
                        t.idempotency_keys.c.session_id == session_id,
                        t.idempotency_keys.c.idem_key == key,
                        t.idempotency_keys.c.created_at < now - self.idempotency_ttl,
                    )
                )
                await conn.execute(
                    insert(t.idempotency_keys).values(
                        session_id=session_id, idem_key=key, request_hash=request_hash, created_at=now
                    )
                )
            await conn.execute(
                insert(t.calls).values(
                    call_id=call_id,
                    session_id=session_id,
                    endpoint_id=endpoint_id,
                    kind="debit",
                    amount_sats=amount_sats,
                    created_at=now,
                )
            )
        return Charge(
            session_id=session_id,
            call_id=call_id,
            endpoint_id=endpoint_id,
            amount_sats=amount_sats,
            balance_sats=balance,
        )

    async def _explain_refusal(self, conn: AsyncConnection, token_hash: str, amount_sats: int) -> None:
        row = (
            await conn.execute(
                select(t.sessions.c.balance_sats, t.sessions.c.status).where(t.sessions.c.token_hash == token_hash)
            )
        ).first()
        session = None if row is None else {"balance_sats": int(row.balance_sats), "status": row.status}
        raise refusal(session, amount_sats)

    async def refund(
        self, charge: Charge, amount_sats: int, *, reason: str, forget_idempotency: str | None = None
    ) -> int:
        """Give back part or all of a charge as a refund row; returns the new balance."""
        if amount_sats <= 0:
            return charge.balance_sats
        amount_sats = min(amount_sats, charge.amount_sats)
        async with self.db.write() as conn:
            await conn.execute(
                update(t.sessions)
                .where(t.sessions.c.id == charge.session_id)
                .values(balance_sats=t.sessions.c.balance_sats + amount_sats)
            )
            await conn.execute(
                insert(t.calls).values(
                    call_id=charge.call_id,
                    session_id=charge.session_id,
                    endpoint_id=charge.endpoint_id,
                    kind="refund",
                    amount_sats=amount_sats,
                    reason=reason[:64],
                    created_at=utcnow(),
                )
            )
            if forget_idempotency is not None:
                await conn.execute(
                    delete(t.idempotency_keys).where(
                        t.idempotency_keys.c.session_id == charge.session_id,
                        t.idempotency_keys.c.idem_key == forget_idempotency,
                    )
                )
            balance = (
                await conn.execute(select(t.sessions.c.balance_sats).where(t.sessions.c.id == charge.session_id))
            ).scalar_one()
        return int(balance)

    # --- idempotency --------------------------------------------------------------------
    async def idempotent_replay(self, token_hash: str, key: str, ttl_s: int) -> IdempotentReplay | None:
        cutoff = utcnow() - timedelta(seconds=ttl_s)
        async with self.db.read() as conn:
            row = (
                await conn.execute(
                    select(
                        t.idempotency_keys.c.status_code,
                        t.idempotency_keys.c.body,
                        t.idempotency_keys.c.request_hash,
                    )
                    .select_from(t.idempotency_keys.join(t.sessions))
                    .where(
                        t.sessions.c.token_hash == token_hash,
                        t.idempotency_keys.c.idem_key == key,
                        t.idempotency_keys.c.created_at >= cutoff,
                    )
                )
            ).first()
        if row is None:
            return None
        return IdempotentReplay(status_code=row.status_code, body=row.body, request_hash=row.request_hash)

    async def store_idempotent(self, session_id: int, key: str, status_code: int, body: str) -> None:
        async with self.db.write() as conn:
            await conn.execute(
                update(t.idempotency_keys)
                .where(t.idempotency_keys.c.session_id == session_id, t.idempotency_keys.c.idem_key == key)
                .values(status_code=status_code, body=body)
            )

    # --- reading the ledger ---------------------------------------------------------------
    async def payments_of(self, session_id: int) -> list[dict[str, Any]]:
        async with self.db.read() as conn:
            rows = await conn.execute(
                select(t.payments).where(t.payments.c.session_id == session_id).order_by(t.payments.c.id)
            )
            return [dict(row._mapping) for row in rows]

    async def receipts_of(self, session_id: int, *, limit: int = 100) -> list[Receipt]:
        """The session's calls, newest first, each with its debit and any refunds."""
        async with self.db.read() as conn:
            recent = (
                select(t.calls.c.call_id)
                .where(t.calls.c.session_id == session_id, t.calls.c.kind == "debit")
                .order_by(t.calls.c.id.desc())
                .limit(limit)
            )
            call_ids = [row.call_id for row in await conn.execute(recent)]
            if not call_ids:
                return []
            rows = await conn.execute(select(t.calls).where(t.calls.c.call_id.in_(call_ids)).order_by(t.calls.c.id))
            receipts: dict[str, Receipt] = {cid: Receipt(call_id=cid, endpoint_id="") for cid in call_ids}
            for row in rows:
                receipt = receipts[row.call_id]
                receipt.endpoint_id = row.endpoint_id
                receipt.rows.append(
                    {
                        "kind": row.kind,
                        "amount_sats": int(row.amount_sats),
                        "reason": row.reason,
                        "created_at": row.created_at,
                    }
                )
                if row.kind == "debit":
                    receipt.charged_sats += int(row.amount_sats)
                    receipt.created_at = row.created_at
                else:
                    receipt.refunded_sats += int(row.amount_sats)
                    receipt.refund_reason = row.reason
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


def _session(row: Any) -> SessionInfo:
    return SessionInfo(
        id=row.id,
        token_hash=row.token_hash,
        status=row.status,
        balance_sats=int(row.balance_sats),
        requested_sats=int(row.requested_sats),
        ark_address=row.ark_address,
        source=row.source,
        created_at=row.created_at,
        expires_at=row.expires_at,
        funded_at=row.funded_at,
        last_call_at=row.last_call_at,
    )
