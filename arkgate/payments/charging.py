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
   A sub-key's token (``session_keys``, issue 17) matches no session: its charge adds the
   price to the key's counters with one conditional UPDATE (total cap, today's cap, not
   revoked or expired) and debits the parent session by id, in the same transaction.
2. ``apply_settlement``: deleting the ``calls_in_flight`` row is the claim; only the one
   caller whose DELETE removed it may refund (at most the recorded debit) and release or
   answer the Idempotency-Key. A second settlement, a crash sweep racing the meter, or two
   sweepers on two instances all find the row gone and change nothing. A refund also gives
   back to the sub-key that spent it (its total and the UTC day of the debit).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, case, delete, func, insert, literal, literal_column, or_, select, text, update
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.exc import IntegrityError

from arkgate.db import tables as t
from arkgate.errors import (
    ArkgateError,
    ForbiddenError,
    IdempotencyConflict,
    InsufficientBalanceError,
    InvalidTokenError,
    KeyLimitError,
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
    # The endpoint's id and category: a sub-key limited to some endpoints must name one of them.
    endpoint_tags: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class Debited:
    session_id: int
    balance_sats: int
    key_id: str | None = None  # the sub-key that spent it


@dataclass(frozen=True, kw_only=True)
class SubKeyLimits:
    """A sub-key as the charge needs it (``session_keys``)."""

    key_id: str
    session_id: int
    cap_sats: int | None
    daily_cap_sats: int | None
    allowed: tuple[str, ...] | None  # endpoint ids or categories; None: every endpoint
    spent_sats: int
    day: str
    day_spent_sats: int
    expires_at: datetime | None
    revoked_at: datetime | None

    def spent_on(self, day: str) -> int:
        """What the key spent on the UTC day ``day`` (YYYY-MM-DD); the counter holds one day only."""
        return self.day_spent_sats if self.day == day else 0


def utc_day(instant: datetime) -> str:
    """The UTC day of a naive UTC instant, the key of a sub-key's per-day counter."""
    return instant.strftime("%Y-%m-%d")


def scoped_idempotency_key(key_id: str | None, key: str) -> str:
    """A sub-key's Idempotency-Keys live apart from its session's and siblings' (no replay across keys)."""
    return key if key_id is None else key_id + idempotency_scope_suffix(key)


def idempotency_scope_suffix(key: str) -> str:
    """What follows the sub-key's id in its scoped key (hashed: the column holds 255 characters)."""
    return ":" + hashlib.sha256(key.encode()).hexdigest()


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
# A closed session's token is dead for good: a payment arriving after the close is credited (the
# ledger stays exact) but can never be spent through that token, which may be the reason it was closed.
_OPEN = _sessions.c.status != "closed"
_DEBIT = (
    update(_sessions)
    .where(
        _sessions.c.token_hash == bindparam("p_token_hash"),
        _sessions.c.balance_sats >= bindparam("p_amount"),
        _OPEN,
    )
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
    _flight.c.session_id,
    _flight.c.endpoint_id,
    _flight.c.debit_sats,
    _flight.c.idem_key,
    _flight.c.key_id,
    _flight.c.started_at,
)
_subkeys = t.session_keys
_SUB_KEY_BY_TOKEN = select(_subkeys).where(_subkeys.c.token_hash == bindparam("p_token_hash"))
_SUB_KEY = select(_subkeys).where(_subkeys.c.key_id == bindparam("p_key_id"))
_SPENT_TODAY = case((_subkeys.c.day == bindparam("p_day"), _subkeys.c.day_spent_sats), else_=literal(0))
# The sub-key's one conditional write: it matches only while both caps hold after this price.
# ``ordered_values``: MySQL assigns left to right with the new values, so ``day`` goes last.
_SPEND_KEY = (
    update(_subkeys)
    .where(
        _subkeys.c.key_id == bindparam("p_key_id"),
        _subkeys.c.revoked_at.is_(None),
        or_(_subkeys.c.expires_at.is_(None), _subkeys.c.expires_at > bindparam("p_now", type_=t.Instant)),
        or_(_subkeys.c.cap_sats.is_(None), _subkeys.c.spent_sats + bindparam("p_amount") <= _subkeys.c.cap_sats),
        or_(
            _subkeys.c.daily_cap_sats.is_(None),
            _SPENT_TODAY + bindparam("p_amount") <= _subkeys.c.daily_cap_sats,
        ),
    )
    .ordered_values(
        (_subkeys.c.spent_sats, _subkeys.c.spent_sats + bindparam("p_amount")),
        (_subkeys.c.day_spent_sats, _SPENT_TODAY + bindparam("p_amount")),
        (_subkeys.c.day, bindparam("p_day")),
    )
)
# Gives back to the day the debit was made; a day since rolled over has nothing to give back to.
_UNSPEND_KEY = (
    update(_subkeys)
    .where(_subkeys.c.key_id == bindparam("p_key_id"))
    .ordered_values(
        (_subkeys.c.spent_sats, _subkeys.c.spent_sats - bindparam("p_amount")),
        (
            _subkeys.c.day_spent_sats,
            case(
                (_subkeys.c.day == bindparam("p_day"), _subkeys.c.day_spent_sats - bindparam("p_amount")),
                else_=_subkeys.c.day_spent_sats,
            ),
        ),
    )
)
_DEBIT_BY_ID = (
    update(_sessions)
    .where(_sessions.c.id == bindparam("p_session_id"), _sessions.c.balance_sats >= bindparam("p_amount"), _OPEN)
    .values(
        balance_sats=_sessions.c.balance_sats - bindparam("p_amount"),
        last_call_at=bindparam("p_now", type_=t.Instant),
        expires_at=bindparam("p_expires_at", type_=t.Instant),
    )
)
_CREDIT_BACK = (
    update(_sessions)
    .where(_sessions.c.id == bindparam("p_session_id"))
    .values(balance_sats=_sessions.c.balance_sats + bindparam("p_amount"))
)
_BALANCE = select(_sessions.c.balance_sats).where(_sessions.c.id == bindparam("p_session_id"))
_STATE_BY_ID = select(_sessions.c.balance_sats, _sessions.c.status).where(_sessions.c.id == bindparam("p_session_id"))
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
        key = sub_key_by_token(conn, request.token_hash)
        if key is None:
            raise refusal(session_state(conn, request.token_hash), request.amount_sats)
        debited = debit_by_sub_key(conn, key, request)
    if request.idempotency is not None:
        claim_idempotency(conn, debited.session_id, request, key_id=debited.key_id)
    record_in_flight(conn, debited, request)
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


def sub_key_by_token(conn: Connection, token_hash: str) -> SubKeyLimits | None:
    row = conn.execute(_SUB_KEY_BY_TOKEN, {"p_token_hash": token_hash}).first()
    return None if row is None else sub_key_limits(row)


def sub_key_limits(row: Any) -> SubKeyLimits:
    return SubKeyLimits(
        key_id=str(row.key_id),
        session_id=int(row.session_id),
        cap_sats=None if row.cap_sats is None else int(row.cap_sats),
        daily_cap_sats=None if row.daily_cap_sats is None else int(row.daily_cap_sats),
        allowed=None if row.allowed is None else tuple(json.loads(row.allowed)),
        spent_sats=int(row.spent_sats),
        day=str(row.day),
        day_spent_sats=int(row.day_spent_sats),
        expires_at=row.expires_at,
        revoked_at=row.revoked_at,
    )


def key_refusal(key: SubKeyLimits, now: datetime, endpoint_tags: tuple[str, ...]) -> ArkgateError | None:
    """Why a sub-key may not be used now for this endpoint (None: it may, caps aside)."""
    if key.revoked_at is not None:
        return InvalidTokenError("this key was revoked by its session")
    if key.expires_at is not None and key.expires_at <= now:
        return InvalidTokenError("this key has expired")
    if key.allowed is not None and endpoint_tags and not set(endpoint_tags) & set(key.allowed):
        return ForbiddenError(
            f"this key may not call {endpoint_tags[0]}; it may call: {', '.join(key.allowed) or 'nothing'}. "
            "Nothing was charged.",
            details={"allowed": list(key.allowed)},
        )
    return None


def cap_refusal(key: SubKeyLimits, amount_sats: int, day: str) -> ArkgateError:
    """Why the key's conditional spend did not match: its total or today's cap."""
    if key.cap_sats is not None and key.spent_sats + amount_sats > key.cap_sats:
        left = max(0, key.cap_sats - key.spent_sats)
        return KeyLimitError(
            f"this key's cap is reached: it may spend {key.cap_sats} sats in all and has {left} left; "
            f"this call costs {amount_sats}. Nothing was charged.",
            details={"price_sats": amount_sats, "cap_sats": key.cap_sats, "remaining_sats": left},
        )
    daily = key.daily_cap_sats or 0
    left = max(0, daily - key.spent_on(day))
    return KeyLimitError(
        f"this key's daily cap is reached: it may spend {daily} sats per UTC day and has {left} left today; "
        f"this call costs {amount_sats}. Nothing was charged.",
        details={"price_sats": amount_sats, "daily_cap_sats": daily, "remaining_today_sats": left},
    )


def debit_by_sub_key(conn: Connection, key: SubKeyLimits, request: ChargeRequest) -> Debited:
    """Spend from the key's caps and debit its session, or raise with nothing written.

    The key's counters and the session's balance are each one conditional UPDATE; when the
    second does not match, the first is undone in the same transaction before raising, so the
    refusal writes nothing (what ``batching.py`` expects of an ``ArkgateError``).
    """
    refused = key_refusal(key, request.now, request.endpoint_tags)
    if refused is not None:
        raise refused
    day = utc_day(request.now)
    spend = {"p_key_id": key.key_id, "p_amount": request.amount_sats, "p_now": request.now, "p_day": day}
    if conn.execute(_SPEND_KEY, spend).rowcount != 1:
        again = conn.execute(_SUB_KEY, {"p_key_id": key.key_id}).first()
        current = key if again is None else sub_key_limits(again)
        raise key_refusal(current, request.now, ()) or cap_refusal(current, request.amount_sats, day)
    params = {
        "p_session_id": key.session_id,
        "p_amount": request.amount_sats,
        "p_now": request.now,
        "p_expires_at": request.session_expires_at,
    }
    if conn.execute(_DEBIT_BY_ID, params).rowcount != 1:
        conn.execute(_UNSPEND_KEY, {"p_key_id": key.key_id, "p_amount": request.amount_sats, "p_day": day})
        state = conn.execute(_STATE_BY_ID, {"p_session_id": key.session_id}).first()
        if state is not None and state.status == "closed":
            raise InvalidTokenError("this key's session was closed")
        balance = None if state is None else state.balance_sats
        # Not a PaymentRequiredError: a sub-key cannot top up, so a payment challenge would not help it.
        raise KeyLimitError(
            f"insufficient balance: this call costs {request.amount_sats} sats and the session this key spends "
            f"from has {int(balance or 0)}. Nothing was charged.",
            details={"price_sats": request.amount_sats, "balance_sats": int(balance or 0)},
        )
    balance = int(conn.execute(_BALANCE, {"p_session_id": key.session_id}).scalar_one())
    return Debited(session_id=key.session_id, balance_sats=balance, key_id=key.key_id)


def claim_idempotency(conn: Connection, session_id: int, request: ChargeRequest, *, key_id: str | None = None) -> None:
    """Claim the Idempotency-Key for this session; the unique key makes a concurrent second claim fail."""
    assert request.idempotency is not None
    raw_key, request_hash = request.idempotency
    key = scoped_idempotency_key(key_id, raw_key)
    # A key past the retention window may be reused.
    conn.execute(_DROP_EXPIRED_KEY, {"p_session_id": session_id, "p_key": key, "p_cutoff": request.idempotency_cutoff})
    try:
        conn.execute(
            _CLAIM_KEY,
            {"session_id": session_id, "idem_key": key, "request_hash": request_hash, "created_at": request.now},
        )
    except IntegrityError as exc:
        raise IdempotencyConflict("a request with this Idempotency-Key is already being processed") from exc


def record_in_flight(conn: Connection, debited: Debited, request: ChargeRequest) -> None:
    """The debit's ledger row and the in-flight marker the settlement (or the crash sweep) removes."""
    conn.execute(_RECORD_CALL, debit_row(request, debited.session_id, debited.key_id))
    conn.execute(_RECORD_IN_FLIGHT, in_flight_row(request, debited.session_id, debited.key_id))


def debit_row(request: ChargeRequest, session_id: int | None, key_id: str | None) -> dict[str, Any]:
    """The call's ``debit`` row in ``calls`` (the ledger)."""
    return {
        "call_id": request.call_id,
        "session_id": session_id,
        "endpoint_id": request.endpoint_id,
        "kind": "debit",
        "amount_sats": request.amount_sats,
        "reason": None,
        "created_at": request.now,
        "key_id": key_id,
    }


def in_flight_row(request: ChargeRequest, session_id: int | None, key_id: str | None) -> dict[str, Any]:
    """The call's ``calls_in_flight`` row: what its one settlement (or the sweep) may give back."""
    return {
        "call_id": request.call_id,
        "session_id": session_id,
        "endpoint_id": request.endpoint_id,
        "debit_sats": request.amount_sats,
        "idem_key": (
            scoped_idempotency_key(key_id, request.idempotency[0]) if request.idempotency is not None else None
        ),
        "key_id": key_id,
        "instance_id": request.instance_id,
        "started_at": request.now,
        "deadline_at": request.deadline_at,
    }


# --- the same rules in one round trip (PostgreSQL, MariaDB) ---------------------------------------
# ``apply_charge`` for a session's own token without an Idempotency-Key is three writes: the
# conditional debit, the debit row and the in-flight row. They are sent in one round trip, built
# from the same statements and rows (``_DEBIT``, ``debit_row``, ``in_flight_row``):
# - PostgreSQL: one statement. The debit (``_DEBIT_RETURNING``) is a data-modifying CTE and both
#   rows are inserted from the debited row, so nothing is inserted when the debit matched nothing.
#   One statement is atomic on its own: no BEGIN/COMMIT round trips.
# - MariaDB (no UPDATE ... RETURNING): three statements of one multi-statement transaction: the
#   debit, then each insert only if the statement before it wrote a row (``ROW_COUNT()``), the second
#   returning the new balance (our UPDATE holds the row lock, so the read sees our own write).
#   Three, not five: asyncmy's cost is mostly per statement result it reads.
# Charges that arrive together go in one round trip and one transaction (``batches.ScriptBatch``:
# a pipeline on PostgreSQL, the copies then COMMIT on MariaDB), each seeing the ones before it.
# When the debit matches nothing (a sub-key's token, an unknown token, too small a balance) nothing
# was written and the caller runs ``apply_charge``, which tells these apart, spends sub-keys and
# raises the refusal.
_DEBITED = _DEBIT_RETURNING.cte("debited")
# MariaDB: the rows the statement before matched (the engine sets CLIENT_FOUND_ROWS): each insert
# below runs only if the one before it wrote, so both follow the debit.
_PREVIOUS_WROTE = func.row_count() == literal_column("1")


def _rows_from(table: Any, name: str, session_id: Any, *where: Any) -> Any:
    """``INSERT INTO table SELECT <the row's binds, session_id from the debited session>``."""
    columns = [column for column in table.c if column.name != "id"]  # ``calls.id``: the database's
    values = [
        session_id if column.name == "session_id" else bindparam(f"{name}_{column.name}", type_=column.type)
        for column in columns
    ]
    return insert(table).from_select([column.name for column in columns], select(*values).where(*where))


# The call id comes back with the balance: a batch of charges (``batches.ScriptBatch``) finds each one's row by it.
_CALL_ID = bindparam("debit_row_call_id", type_=_calls.c.call_id.type).label("call_id")
CHARGE_STATEMENT = select(_DEBITED.c.id, _DEBITED.c.balance_sats, _CALL_ID).add_cte(
    _rows_from(_calls, "debit_row", _DEBITED.c.id).cte("debit_row"),
    _rows_from(_flight, "in_flight_row", _DEBITED.c.id).cte("in_flight_row"),
)
_THIS_TOKEN = _sessions.c.token_hash == bindparam("p_token_hash")
# RETURNING is no FROM clause SQLAlchemy correlates into: the inserted row's column is named as text.
_NEW_BALANCE = (
    select(_sessions.c.balance_sats)
    .where(_sessions.c.id == literal_column(f"{_flight.name}.{_flight.c.session_id.name}"))
    .scalar_subquery()
    .label("balance_sats")
)
CHARGE_SCRIPT_MARIADB = (
    _DEBIT,
    _rows_from(_calls, "debit_row", _sessions.c.id, _THIS_TOKEN, _PREVIOUS_WROTE),
    _rows_from(_flight, "in_flight_row", _sessions.c.id, _THIS_TOKEN, _PREVIOUS_WROTE).returning(
        _flight.c.session_id.label("id"), _NEW_BALANCE, _flight.c.call_id
    ),
)  # no COMMIT: ``batches.ScriptBatch`` ends each batch of charges with one


def charge_script(dialect: Dialect) -> tuple[Any, ...] | None:
    """The statements that charge in one round trip on this database, or None (SQLite: the group commit).

    Run through ``batches.ScriptBatch``: the charges waiting at one moment share a round trip and a
    transaction (on MariaDB it adds the COMMIT)."""
    if dialect.name == "postgresql":
        return (CHARGE_STATEMENT,)
    if dialect.name == "mysql" and getattr(dialect, "is_mariadb", False) and dialect.insert_returning:
        return CHARGE_SCRIPT_MARIADB  # INSERT ... RETURNING: MariaDB 10.5+
    return None


def charge_statement_params(request: ChargeRequest) -> dict[str, Any] | None:
    """``CHARGE_STATEMENT``'s parameters, or None if the charge needs ``apply_charge`` (an Idempotency-Key)."""
    if request.idempotency is not None:
        return None
    params: dict[str, Any] = {
        "p_token_hash": request.token_hash,
        "p_amount": request.amount_sats,
        "p_now": request.now,
        "p_expires_at": request.session_expires_at,
    }
    for name, row in (
        ("debit_row", debit_row(request, None, None)),
        ("in_flight_row", in_flight_row(request, None, None)),
    ):
        params.update({f"{name}_{column}": value for column, value in row.items() if column != "session_id"})
    return params


def charged(row: Any) -> Debited:
    """What ``CHARGE_STATEMENT`` returned (a row: the debit matched)."""
    return Debited(session_id=int(row["id"]), balance_sats=int(row["balance_sats"]))


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
                "key_id": row.key_id,
            },
        )
        if row.key_id is not None:  # the sub-key gets its spend back, on the day it was spent
            unspend = {"p_key_id": row.key_id, "p_amount": refund, "p_day": utc_day(row.started_at)}
            conn.execute(_UNSPEND_KEY, unspend)
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


# The same settlement as one statement, for the common case: nothing to refund and no
# Idempotency-Key on the call. ``apply_settlement`` then only deletes the in-flight row (the claim);
# this is that DELETE, matching only such rows, for many calls at once (``batches.Coalescer`` sends
# the settlements that arrive together in one round trip; each row claims its own call). A call it
# does not return (it had a key, or was settled already) goes to ``apply_settlement``, which handles both.
def settle_script(dialect: Dialect, matches: Callable[[Any], Any]) -> tuple[Any, ...] | None:
    """The plain settlement of the calls ``matches`` selects (MariaDB: the DELETE, then COMMIT), or None."""
    statement = (
        delete(_flight)
        .where(matches(_flight.c.call_id), _flight.c.idem_key.is_(None))
        .returning(_flight.c.call_id, _flight.c.session_id, _flight.c.endpoint_id)
    )
    if dialect.name == "postgresql":
        return (statement,)
    if dialect.name == "mysql" and dialect.delete_returning:  # MariaDB has DELETE ... RETURNING
        return (statement, text("COMMIT"))
    return None


def plainly_settled(request: SettlementRequest) -> bool:
    """Whether ``settle_script`` may end this call: it refunds nothing (else ``apply_settlement``)."""
    return request.refund_sats <= 0


def settled(request: SettlementRequest, row: Any) -> Settled:
    """What ``settle_script`` returned for the call (a row: this settlement claimed it)."""
    return Settled(
        call_id=request.call_id,
        session_id=int(row["session_id"]),
        endpoint_id=str(row["endpoint_id"]),
        refunded_sats=0,
        balance_sats=None,
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
    if session.status == "closed":
        return InvalidTokenError("this session was closed")
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
