"""The events a webhook carries, each a frozen dataclass: its name, its session, its dedupe key, its data.

A delivery's body follows the Standard Webhooks shape: ``{"type", "timestamp", "data"}``. The
dedupe key names the fact, not the notice: two instances that both notice it enqueue one row.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, Literal

from arkgate.payments.kinds import CreditRail
from arkgate.timestamps import format_instant, to_naive_utc

PAYMENT_CREDITED = "payment.credited"
BALANCE_LOW = "balance.low"
SESSION_EXPIRING = "session.expiring"
CALL_REFUNDED = "call.refunded"
WITHDRAWAL_COMPLETED = "withdrawal.completed"
WITHDRAWAL_FAILED = "withdrawal.failed"

SESSION_EVENTS = (
    PAYMENT_CREDITED,
    BALANCE_LOW,
    SESSION_EXPIRING,
    CALL_REFUNDED,
    WITHDRAWAL_COMPLETED,
    WITHDRAWAL_FAILED,
)
# What the operator's webhook receives besides its alerts.
OPERATOR_EVENTS = (PAYMENT_CREDITED, WITHDRAWAL_COMPLETED, WITHDRAWAL_FAILED)


def _key_instant(instant: datetime) -> str:
    # Dedupe keys keep the microseconds (and the form rows already stored use), unlike the wire.
    return to_naive_utc(instant).isoformat() + "Z"


@dataclass(frozen=True, kw_only=True)
class PaymentCredited:
    type: ClassVar[str] = PAYMENT_CREDITED
    session_id: int
    payment_key: str
    rail: CreditRail
    amount_sats: int
    balance_sats: int | None
    is_late: bool = False

    @property
    def dedupe_key(self) -> str:
        return self.payment_key

    def data(self) -> dict[str, Any]:
        return {
            "rail": self.rail,
            "amount_sats": self.amount_sats,
            "balance_sats": self.balance_sats,
            "late": self.is_late,
        }


@dataclass(frozen=True, kw_only=True)
class BalanceLow:
    type: ClassVar[str] = BALANCE_LOW
    session_id: int
    balance_sats: int
    threshold_sats: int
    crossing: str  # distinguishes one crossing below the threshold from the next

    @property
    def dedupe_key(self) -> str:
        return f"{self.session_id}:{self.crossing}"

    def data(self) -> dict[str, Any]:
        return {"balance_sats": self.balance_sats, "threshold_sats": self.threshold_sats}


@dataclass(frozen=True, kw_only=True)
class SessionExpiring:
    type: ClassVar[str] = SESSION_EXPIRING
    session_id: int
    expires_at: datetime
    balance_sats: int

    @property
    def dedupe_key(self) -> str:
        return f"{self.session_id}:{_key_instant(self.expires_at)}"

    def data(self) -> dict[str, Any]:
        return {"expires_at": format_instant(self.expires_at), "balance_sats": self.balance_sats}


@dataclass(frozen=True, kw_only=True)
class CallRefunded:
    type: ClassVar[str] = CALL_REFUNDED
    session_id: int
    call_id: str
    endpoint_id: str
    refunded_sats: int
    reason: str | None
    balance_sats: int | None

    @property
    def dedupe_key(self) -> str:
        return self.call_id  # a call is refunded at most once (its first settlement)

    def data(self) -> dict[str, Any]:
        return {
            "call_id": self.call_id,
            "endpoint_id": self.endpoint_id,
            "refunded_sats": self.refunded_sats,
            "reason": self.reason,
            "balance_sats": self.balance_sats,
        }


@dataclass(frozen=True, kw_only=True)
class WithdrawalFinished:
    """A payout's outcome (the payouts part calls ``Webhooks.emit_withdrawal`` with one)."""

    session_id: int
    withdrawal_id: str
    status: Literal["completed", "failed"]
    amount_sats: int
    fee_sats: int
    destination_kind: str  # bolt11 | lightning_address | bolt12 | ark
    reason: str | None = None  # why it failed

    @property
    def type(self) -> str:
        return WITHDRAWAL_COMPLETED if self.status == "completed" else WITHDRAWAL_FAILED

    @property
    def dedupe_key(self) -> str:
        return self.withdrawal_id

    def data(self) -> dict[str, Any]:
        return {
            "withdrawal_id": self.withdrawal_id,
            "status": self.status,
            "amount_sats": self.amount_sats,
            "fee_sats": self.fee_sats,
            "destination_kind": self.destination_kind,
            "reason": self.reason,
        }


WebhookEvent = PaymentCredited | BalanceLow | SessionExpiring | CallRefunded | WithdrawalFinished


def body(event: WebhookEvent, created_at: datetime, *, include_session: bool = False) -> dict[str, Any]:
    """The Standard Webhooks payload; the operator's copy also says which session it concerns."""
    data = event.data()
    if include_session:
        data = {"session_id": event.session_id, **data}
    return {"type": event.type, "timestamp": format_instant(created_at), "data": data}
