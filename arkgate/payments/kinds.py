"""The closed sets of names the money path uses: rails, statuses, purposes, modes.

``Literal`` types, so the values stay the plain strings the tables store and the API sends (JSON
output is unchanged) while mypy rejects a misspelt one. ``as_*`` narrow a string read from a table.
"""

from __future__ import annotations

from typing import Literal, cast, get_args

Rail = Literal["lightning", "ark"]  # how barkd moves money
CreditRail = Literal["lightning", "ark", "free"]  # how a credit arrived (free: test credit, no barkd)
SessionStatus = Literal["awaiting_payment", "active", "closed"]
PublicSessionStatus = Literal["awaiting_payment", "active", "closed", "expired"]
PayoutState = Literal["pending", "completed", "failed"]
PayoutPurpose = Literal["withdraw", "close", "refund_to"]
WatcherMode = Literal["starting", "websocket", "long-poll", "polling", "offline"]
InvoiceStatus = Literal["pending", "paid", "canceled", "expired"]
InvoicePurpose = Literal["funding", "topup", "l402"]
CallKind = Literal["debit", "refund"]  # a call's ledger row


def _check(value: object, kind: object) -> str:
    # A table holding a name outside the set is corrupt: fail loudly rather than carry it on.
    if value not in get_args(kind):
        raise ValueError(f"unexpected value {value!r}, expected one of {get_args(kind)}")
    return str(value)


def as_rail(value: object) -> Rail:
    return cast(Rail, _check(value, Rail))


def as_credit_rail(value: object) -> CreditRail:
    return cast(CreditRail, _check(value, CreditRail))


def as_session_status(value: object) -> SessionStatus:
    return cast(SessionStatus, _check(value, SessionStatus))


def as_payout_state(value: object) -> PayoutState:
    return cast(PayoutState, _check(value, PayoutState))


def as_payout_purpose(value: object) -> PayoutPurpose:
    return cast(PayoutPurpose, _check(value, PayoutPurpose))


def as_invoice_status(value: object) -> InvoiceStatus:
    return cast(InvoiceStatus, _check(value, InvoiceStatus))


def as_invoice_purpose(value: object) -> InvoicePurpose:
    return cast(InvoicePurpose, _check(value, InvoicePurpose))


def as_call_kind(value: object) -> CallKind:
    return cast(CallKind, _check(value, CallKind))
