"""The money rules of a paid call, written once: charge (debit + claim + in-flight record) and settle.

Each rule is a small SQLAlchemy Core statement run on a *sync* ``Connection``, so the same
functions serve every path: PostgreSQL and MariaDB run them through ``AsyncConnection.run_sync``;
SQLite's group commit (``batching.py``) runs many of them in one transaction in its thread.
A faster driver path (prepared statements, one CTE per database) can replace how a statement is
sent without a second copy of the rules.

A call's life cycle:

1. ``apply_charge``: the conditional debit (the balance must cover the price), the
   Idempotency-Key claim (unique per session), the ``debit`` ledger row and the
   ``calls_in_flight`` row, all in one transaction.
2. ``apply_settlement``: deleting the ``calls_in_flight`` row is the claim; only the one
   caller whose DELETE removed it may refund (at most the recorded debit) and release or
   answer the Idempotency-Key. A second settlement, a crash sweep racing the meter, or two
   sweepers on two instances all find the row gone and change nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, bindparam, delete, insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from arkgate.db import tables as t
from arkgate.errors import (
    ArkgateError,
    IdempotencyConflict,
    InsufficientBalanceError,
    InvalidTokenError,
    PaymentRequiredError,
)

INTERRUPTED = "interrupted"  # the refund reason of a call the crash sweep settles


@dataclass(frozen=True, kw_only=True)
class ChargeRequest:
    token_hash: str
    endpoint_id: str
    amount_sats: int
    call_id: str
    now: datetime
    session_expires_at: datetime
    idempotency: tuple[str, str] | None  # (key, request hash)
    idempotency_cutoff: datetime  # keys older than this may be reused
    instance_id: str
    deadline_at: datetime  # after this, any instance's sweep may refund the call


@dataclass(frozen=True, kw_only=True)
class Debited:
    session_id: int
    balance_sats: int


@dataclass(frozen=True, kw_only=True)
class SettlementRequest:
    call_id: str
    refund_sats: int
    reason: str | None
    now: datetime
    release_idempotency: bool = False  # failed calls free their key so a retry runs
    # (status, body) stored as the key's replay, in the same transaction as the settlement.
    idempotent_reply: tuple[int, str] | None = None


@dataclass(frozen=True, kw_only=True)
class Settled:
    call_id: str
    session_id: int
    endpoint_id: str
    refunded_sats: int
    balance_sats: int | None  # read only when something was refunded


# --- the statements ------------------------------------------------------------------------------
# Built once with bound parameters: SQLAlchemy then only looks up its compiled form per call, and a
# faster driver path can prepare exactly these statements.
_sessions, _keys, _calls, _flight = t.sessions, t.idempotency_keys, t.calls, t.calls_in_flight
_DEBIT = (
    update(_sessions)
    .where(_sessions.c.token_hash == bindparam("p_token_hash"), _sessions.c.balance_sats >= bindparam("p_amount"))
    .values(
        balance_sats=_sessions.c.balance_sats - bindparam("p_amount"),
        last_call_at=bindparam("p_now", type_=t.Instant),
        expires_at=bindparam("p_expires_at", type_=t.Instant),
    )
)
_DEBIT_RETURNING = _DEBIT.returning(_sessions.c.id, _sessions.c.balance_sats)
_SESSION_BY_TOKEN = select(_sessions.c.id, _sessions.c.balance_sats).where(
    _sessions.c.token_hash == bindparam("p_token_hash")
)
_SESSION_STATE = select(_sessions.c.balance_sats, _sessions.c.status).where(
    _sessions.c.token_hash == bindparam("p_token_hash")
)
_DROP_EXPIRED_KEY = delete(_keys).where(
    _keys.c.session_id == bindparam("p_session_id"),
    _keys.c.idem_key == bindparam("p_key"),
    _keys.c.created_at < bindparam("p_cutoff", type_=t.Instant),
)
_CLAIM_KEY = insert(_keys)
_RECORD_CALL = insert(_calls)
_RECORD_IN_FLIGHT = insert(_flight)
_IN_FLIGHT = select(_flight).where(_flight.c.call_id == bindparam("p_call_id"))
_END_IN_FLIGHT = delete(_flight).where(_flight.c.call_id == bindparam("p_call_id"))
_END_IN_FLIGHT_RETURNING = _END_IN_FLIGHT.returning(
    _flight.c.session_id, _flight.c.endpoint_id, _flight.c.debit_sats, _flight.c.idem_key
)
_CREDIT_BACK = (
    update(_sessions)
    .where(_sessions.c.id == bindparam("p_session_id"))
    .values(balance_sats=_sessions.c.balance_sats + bindparam("p_amount"))
)
_BALANCE = select(_sessions.c.balance_sats).where(_sessions.c.id == bindparam("p_session_id"))
_THIS_KEY = and_(_keys.c.session_id == bindparam("p_session_id"), _keys.c.idem_key == bindparam("p_key"))
_RELEASE_KEY = delete(_keys).where(_THIS_KEY)
_STORE_REPLY = update(_keys).where(_THIS_KEY).values(status_code=bindparam("p_status"), body=bindparam("p_body"))


# --- charge ------------------------------------------------------------------------------------
def apply_charge(conn: Connection, request: ChargeRequest) -> Debited:
    """Debit, claim the key, record the call as in flight; raises a refusal or ``IdempotencyConflict``.

    The caller owns the transaction (or savepoint): an exception here must roll it back. A refusal
    is raised before anything is written; ``IdempotencyConflict`` after the debit.
    """
    debited = debit(conn, request)
    if debited is None:
        raise refusal(session_state(conn, request.token_hash), request.amount_sats)
    if request.idempotency is not None:
        claim_idempotency(conn, debited.session_id, request)
    record_in_flight(conn, debited.session_id, request)
    return debited


def debit(conn: Connection, request: ChargeRequest) -> Debited | None:
    """The one conditional UPDATE: it matches only if the balance covers the price."""
    params = {
        "p_token_hash": request.token_hash,
        "p_amount": request.amount_sats,
        "p_now": request.now,
        "p_expires_at": request.session_expires_at,
    }
    if conn.dialect.update_returning:
        row = conn.execute(_DEBIT_RETURNING, params).first()
    else:  # MariaDB: our UPDATE holds the row lock, so the read that follows sees our own result
        if not conn.execute(_DEBIT, params).rowcount:
            return None
        row = conn.execute(_SESSION_BY_TOKEN, {"p_token_hash": request.token_hash}).first()
    return None if row is None else Debited(session_id=int(row[0]), balance_sats=int(row[1]))


def claim_idempotency(conn: Connection, session_id: int, request: ChargeRequest) -> None:
    """Claim the Idempotency-Key for this session; the unique key makes a concurrent second claim fail."""
    assert request.idempotency is not None
    key, request_hash = request.idempotency
    # A key past the retention window may be reused.
    conn.execute(_DROP_EXPIRED_KEY, {"p_session_id": session_id, "p_key": key, "p_cutoff": request.idempotency_cutoff})
    try:
        conn.execute(
            _CLAIM_KEY,
            {"session_id": session_id, "idem_key": key, "request_hash": request_hash, "created_at": request.now},
        )
    except IntegrityError as exc:
        raise IdempotencyConflict("a request with this Idempotency-Key is already being processed") from exc


def record_in_flight(conn: Connection, session_id: int, request: ChargeRequest) -> None:
    """The debit's ledger row and the in-flight marker the settlement (or the crash sweep) removes."""
    conn.execute(
        _RECORD_CALL,
        {
            "call_id": request.call_id,
            "session_id": session_id,
            "endpoint_id": request.endpoint_id,
            "kind": "debit",
            "amount_sats": request.amount_sats,
            "reason": None,
            "created_at": request.now,
        },
    )
    conn.execute(
        _RECORD_IN_FLIGHT,
        {
            "call_id": request.call_id,
            "session_id": session_id,
            "endpoint_id": request.endpoint_id,
            "debit_sats": request.amount_sats,
            "idem_key": request.idempotency[0] if request.idempotency is not None else None,
            "instance_id": request.instance_id,
            "started_at": request.now,
            "deadline_at": request.deadline_at,
        },
    )


# --- settle ------------------------------------------------------------------------------------
def apply_settlement(conn: Connection, request: SettlementRequest) -> Settled | None:
    """End an in-flight call once: None if it was already settled (by the meter or a sweep).

    Deleting the in-flight row is the claim: only the settler whose DELETE removed it goes on.
    """
    params = {"p_call_id": request.call_id}
    if conn.dialect.delete_returning:
        row = conn.execute(_END_IN_FLIGHT_RETURNING, params).first()
        if row is None:
            return None
    else:
        row = conn.execute(_IN_FLIGHT, params).first()
        if row is None or conn.execute(_END_IN_FLIGHT, params).rowcount != 1:
            return None  # already settled, or a concurrent settler claimed it between our read and delete
    refund = max(0, min(int(request.refund_sats), int(row.debit_sats)))  # never more than the debit
    balance: int | None = None
    if refund:
        conn.execute(_CREDIT_BACK, {"p_session_id": row.session_id, "p_amount": refund})
        conn.execute(
            _RECORD_CALL,
            {
                "call_id": request.call_id,
                "session_id": row.session_id,
                "endpoint_id": row.endpoint_id,
                "kind": "refund",
                "amount_sats": refund,
                "reason": (request.reason or "refund")[:64],
                "created_at": request.now,
            },
        )
        balance = int(conn.execute(_BALANCE, {"p_session_id": row.session_id}).scalar_one())
    if row.idem_key is not None:
        key = {"p_session_id": row.session_id, "p_key": row.idem_key}
        if request.release_idempotency:
            conn.execute(_RELEASE_KEY, key)
        elif request.idempotent_reply is not None:
            status_code, body = request.idempotent_reply
            conn.execute(_STORE_REPLY, {**key, "p_status": status_code, "p_body": body})
    return Settled(
        call_id=request.call_id,
        session_id=int(row.session_id),
        endpoint_id=str(row.endpoint_id),
        refunded_sats=refund,
        balance_sats=balance,
    )


# --- refusals ----------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class SessionState:
    balance_sats: int
    status: str


def session_state(conn: Connection, token_hash: str) -> SessionState | None:
    row = conn.execute(_SESSION_STATE, {"p_token_hash": token_hash}).first()
    return None if row is None else SessionState(balance_sats=int(row.balance_sats), status=str(row.status))


def refusal(session: SessionState | None, amount_sats: int) -> ArkgateError:
    """Why a charge was refused: unknown token, unfunded session, or not enough sats."""
    if session is None:
        return InvalidTokenError("invalid or unknown session token")
    details = {"price_sats": amount_sats, "balance_sats": session.balance_sats}
    if session.status == "awaiting_payment":
        return PaymentRequiredError(
            "this session is not funded yet: pay its Lightning invoice or send sats to its Ark address",
            details=details,
        )
    return InsufficientBalanceError(
        f"insufficient balance: this call costs {amount_sats} sats and the session has {session.balance_sats}",
        details=details,
    )


# --- payouts (withdraw, close, refund_to) -------------------------------------------------------
# A payout spends the balance like a call does: the same conditional ``debit`` and a ``debit``
# ledger row (endpoint ``withdraw``), so concurrent withdrawals and paid calls share one rule and
# can never overdraw. It has no ``calls_in_flight`` row: the call sweep must never refund a send
# whose outcome is unknown; ``apply_payout_settlement`` settles it from barkd's answer instead.
PAYOUT_ENDPOINT = "withdraw"
_payouts = t.payouts
_RECORD_PAYOUT = insert(_payouts)
_SETTLE_PAYOUT = (
    update(_payouts)
    .where(_payouts.c.payout_id == bindparam("p_payout_id"), _payouts.c.state == "pending")
    .values(
        state=bindparam("p_state"),
        reason=bindparam("p_reason"),
        movement_id=bindparam("p_movement_id"),
        settled_at=bindparam("p_now", type_=t.Instant),
    )
)
_PAYOUT = select(_payouts.c.session_id, _payouts.c.amount_sats).where(_payouts.c.payout_id == bindparam("p_payout_id"))


@dataclass(frozen=True, kw_only=True)
class PayoutRequest:
    charge: ChargeRequest  # the debit: call_id is the payout id, endpoint_id ``withdraw``
    rail: str
    destination: str
    fee_sats: int
    net_sats: int
    payment_hash: str | None
    purpose: str


@dataclass(frozen=True, kw_only=True)
class PayoutSettlement:
    payout_id: str
    state: str  # completed | failed (failed refunds the whole amount)
    reason: str | None
    movement_id: int | None
    now: datetime


def apply_payout(conn: Connection, request: PayoutRequest) -> Debited:
    """Debit the balance and record the payout as ``pending``, in one transaction, before any send."""
    charge = request.charge
    debited = debit(conn, charge)
    if debited is None:
        raise refusal(session_state(conn, charge.token_hash), charge.amount_sats)
    conn.execute(
        _RECORD_CALL,
        {
            "call_id": charge.call_id,
            "session_id": debited.session_id,
            "endpoint_id": PAYOUT_ENDPOINT,
            "kind": "debit",
            "amount_sats": charge.amount_sats,
            "reason": None,
            "created_at": charge.now,
        },
    )
    conn.execute(
        _RECORD_PAYOUT,
        {
            "payout_id": charge.call_id,
            "session_id": debited.session_id,
            "rail": request.rail,
            "destination": request.destination,
            "amount_sats": charge.amount_sats,
            "fee_sats": request.fee_sats,
            "net_sats": request.net_sats,
            "payment_hash": request.payment_hash,
            "movement_id": None,
            "state": "pending",
            "reason": None,
            "purpose": request.purpose,
            "instance_id": charge.instance_id,
            "created_at": charge.now,
            "deadline_at": charge.deadline_at,
            "settled_at": None,
        },
    )
    return debited


def apply_payout_settlement(conn: Connection, request: PayoutSettlement) -> Settled | None:
    """Move a pending payout to its end state once; a failed one is refunded in full, once.

    The conditional UPDATE (``state = 'pending'``) is the claim: a second settlement (the sender and
    the recovery job racing, two instances) matches nothing and changes nothing.
    """
    params = {
        "p_payout_id": request.payout_id,
        "p_state": request.state,
        "p_reason": (request.reason or None) and str(request.reason)[:255],
        "p_movement_id": request.movement_id,
        "p_now": request.now,
    }
    if conn.execute(_SETTLE_PAYOUT, params).rowcount != 1:
        return None
    row = conn.execute(_PAYOUT, {"p_payout_id": request.payout_id}).one()
    refund = int(row.amount_sats) if request.state == "failed" else 0
    balance: int | None = None
    if refund:
        conn.execute(_CREDIT_BACK, {"p_session_id": row.session_id, "p_amount": refund})
        conn.execute(
            _RECORD_CALL,
            {
                "call_id": request.payout_id,
                "session_id": row.session_id,
                "endpoint_id": PAYOUT_ENDPOINT,
                "kind": "refund",
                "amount_sats": refund,
                "reason": "payout_failed",
                "created_at": request.now,
            },
        )
    balance = int(conn.execute(_BALANCE, {"p_session_id": row.session_id}).scalar_one())
    return Settled(
        call_id=request.payout_id,
        session_id=int(row.session_id),
        endpoint_id=PAYOUT_ENDPOINT,
        refunded_sats=refund,
        balance_sats=balance,
    )
