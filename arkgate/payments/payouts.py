"""Paying a session's balance out through barkd: withdraw, close, refund_to.

barkd's sends are not idempotent, so a payout is recorded and debited *before* the send (the
ledger's one conditional debit, state ``pending``) and then settled once, from barkd's answer or,
after a crash or a timeout, from barkd's history (``resolve``): a matching successful movement
completes it; a failed one, or none at all once the send cannot still be running, refunds it.
Nothing is ever sent twice for one payout: the only send is in ``withdraw``, right after recording.

Hook point for other parts (webhooks): ``PayoutService.listeners`` are awaited with a
``PayoutEvent`` each time a payout ends (``withdrawal.completed`` / ``withdrawal.failed``); the
same event is also published on the session's ``EventHub`` stream.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Final, Literal

import structlog

from arkgate.db.engine import utcnow
from arkgate.errors import ArkgateError, InputError, InsufficientBalanceError, RateLimitedError, WalletUnavailableError
from arkgate.payments.barkd import BarkdClient, BarkdError, Movement, invoice_details
from arkgate.payments.events import EventHub
from arkgate.payments.kinds import PayoutPurpose, PayoutState, Rail
from arkgate.payments.ledger import Ledger, PayoutRecord, SessionInfo
from arkgate.settings import Settings

log = structlog.get_logger("arkgate.payouts")

ARK_DUST_SATS = 330  # barkd refuses arkoor sends below the dust limit
COMPLETED: Final = "completed"
FAILED: Final = "failed"
PENDING: Final = "pending"
_CLAIM_ATTEMPTS = 20  # payouts of one amount to one address race for their movements


class PayoutsDisabledError(ArkgateError):
    status = 403
    code = "payouts_disabled"


class PayoutFailedError(ArkgateError):
    """barkd could not pay the destination; the whole amount went back to the balance."""

    status = 502
    code = "payout_failed"


@dataclass(frozen=True, kw_only=True)
class PayoutPolicy:
    """The operator's rules for payouts (settings ``payout_*``)."""

    enabled: bool
    min_sats: int
    fee_base_sats: int
    fee_ppm: int
    max_per_hour: int
    send_timeout_s: float
    unknown_grace_s: float
    recover_interval_s: float
    test_pause: str = ""

    @classmethod
    def from_settings(cls, settings: Settings) -> PayoutPolicy:
        return cls(
            enabled=settings.payouts_enabled and settings.payment_mode == "barkd",
            min_sats=settings.payout_min_sats,
            fee_base_sats=settings.payout_fee_base_sats,
            fee_ppm=settings.payout_fee_ppm,
            max_per_hour=settings.payout_max_per_hour,
            send_timeout_s=settings.payout_send_timeout_s,
            unknown_grace_s=settings.payout_unknown_grace_s,
            recover_interval_s=settings.payout_recover_interval_s,
            test_pause=settings.payout_test_pause,
        )

    def operator_fee(self, amount_sats: int) -> int:
        return self.fee_base_sats + amount_sats * self.fee_ppm // 1_000_000


@dataclass(frozen=True, kw_only=True)
class Target:
    """A parsed destination: what barkd is asked to pay."""

    rail: Rail | Literal["lnurl"]  # lnurl: a Lightning address or LNURL, not yet resolved
    value: str  # BOLT11 invoice, Ark address, Lightning address or LNURL
    invoice_sats: int | None = None  # a BOLT11 invoice's own amount (None: any amount)
    payment_hash: str | None = None


@dataclass(frozen=True, kw_only=True)
class Quote:
    target: Target
    amount_sats: int  # taken from the balance
    fee_sats: int  # barkd's estimate plus the operator's fee policy
    net_sats: int  # what the destination receives
    barkd_fee_sats: int


@dataclass(frozen=True, kw_only=True)
class PayoutEvent:
    """One payout's outcome, for listeners (webhooks) and the session's event stream."""

    type: Literal["withdrawal.completed", "withdrawal.failed"]
    payout_id: str
    session_id: int
    rail: Rail
    destination: str
    amount_sats: int
    fee_sats: int
    net_sats: int
    refunded_sats: int
    balance_sats: int | None
    reason: str | None
    purpose: PayoutPurpose


@dataclass(frozen=True, kw_only=True)
class PayoutResult:
    payout_id: str
    state: PayoutState
    rail: Rail
    amount_sats: int
    fee_sats: int
    net_sats: int
    balance_sats: int
    reason: str | None = None


PayoutListener = Callable[[PayoutEvent], Awaitable[None]]
# (Lightning address or LNURL, sats) -> a BOLT11 invoice for exactly that amount (``api/lnurl.py``).
InvoiceResolver = Callable[[str, int], Awaitable[str]]


def parse_target(text: str, *, now: datetime | None = None) -> Target:
    """A BOLT11 invoice or an Ark address; anything else is a clear input error."""
    value = text.strip()
    lowered = value.lower()
    if lowered.startswith("lightning:"):
        value, lowered = value[10:], lowered[10:]
    if lowered.startswith("lno"):
        if len(value) > 2000 or not value.isalnum():
            raise InputError("destination is not a valid BOLT12 offer")
        return Target(rail="lightning", value=value)  # barkd fetches the invoice; the amount is ours to set
    if "@" in value or lowered.startswith("lnurl"):
        return Target(rail="lnurl", value=value)  # resolved to an invoice once the amount is known
    if lowered.startswith("ln"):
        try:
            payment_hash, amount_sats, expires_at = invoice_details(value)
        except Exception as exc:  # the decoder raises many kinds on garbage
            raise InputError("destination is not a valid BOLT11 invoice") from exc
        if expires_at <= (now or utcnow()):
            raise InputError("this invoice has expired: ask the payee for a new one")
        return Target(rail="lightning", value=value, invoice_sats=amount_sats or None, payment_hash=payment_hash)
    if lowered.startswith(("ark1", "tark1")) and len(value) < 255:
        return Target(rail="ark", value=value)
    raise InputError(
        "destination must be a BOLT11 invoice (lnbc...), a BOLT12 offer (lno...), a Lightning address "
        "(name@domain) or an Ark address (ark1... / tark1...)"
    )


@dataclass(kw_only=True)
class PayoutService:
    ledger: Ledger
    barkd: BarkdClient
    events: EventHub
    policy: PayoutPolicy
    listeners: list[PayoutListener] = field(default_factory=list)
    resolve_invoice: InvoiceResolver | None = None
    _sending: set[str] = field(default_factory=set)

    # --- quoting -------------------------------------------------------------------------------
    async def quote(
        self, session: SessionInfo, destination: str, amount_sats: int | None, *, resolve: bool = True
    ) -> Quote:
        """Fees first: what leaves the balance, what the destination gets; refuses what cannot be paid.

        ``resolve``: ask a Lightning address for its invoice (a fee estimate alone does not need it).
        """
        if not self.policy.enabled:
            raise PayoutsDisabledError("withdrawals are disabled on this gateway")
        target = parse_target(destination)
        if target.rail == "lnurl" and self.resolve_invoice is None:
            raise InputError("Lightning addresses are not supported on this gateway: use a BOLT11 invoice")
        if amount_sats is not None and (isinstance(amount_sats, bool) or not isinstance(amount_sats, int)):
            raise InputError("amount_sats must be a whole number of sats")
        if target.invoice_sats is not None:
            net = target.invoice_sats
            barkd_fee = await self._barkd_fee(target, net)
            fee = barkd_fee + self.policy.operator_fee(net)
            amount = net + fee
            if amount_sats is not None and amount_sats != amount:
                raise InputError(
                    f"this invoice asks for {net} sats; with the {fee} sat fee the withdrawal takes {amount} sats: "
                    "leave amount_sats out or send exactly that"
                )
        else:
            amount = session.balance_sats if amount_sats is None else amount_sats
            if amount <= 0:
                raise InsufficientBalanceError("there is nothing to withdraw: the balance is 0 sats")
            barkd_fee = await self._barkd_fee(target, amount)
            fee = barkd_fee + self.policy.operator_fee(amount)
            net = amount - fee
        if amount < self.policy.min_sats:
            raise InputError(f"the smallest withdrawal is {self.policy.min_sats} sats")
        if net <= 0 or (target.rail == "ark" and net < ARK_DUST_SATS):
            floor = ARK_DUST_SATS if target.rail == "ark" else 1
            raise InputError(f"after the {fee} sat fee the destination must receive at least {floor} sats")
        quote = Quote(target=target, amount_sats=amount, fee_sats=fee, net_sats=net, barkd_fee_sats=barkd_fee)
        _require_balance(quote, session.balance_sats)
        if target.rail == "lnurl" and resolve:
            assert self.resolve_invoice is not None
            invoice = await self.resolve_invoice(target.value, net)
            payment_hash, _, _ = invoice_details(invoice)
            target = Target(rail="lightning", value=invoice, invoice_sats=net, payment_hash=payment_hash)
        return Quote(target=target, amount_sats=amount, fee_sats=fee, net_sats=net, barkd_fee_sats=barkd_fee)

    async def _barkd_fee(self, target: Target, amount_sats: int) -> int:
        if target.rail == "ark":
            return 0  # arkoor payments carry no fee; barkd has no estimate for them
        estimate = await self.barkd.fee_lightning_pay(amount_sats)
        return estimate.fee_sats

    # --- paying ----------------------------------------------------------------------------------
    async def withdraw(
        self,
        session: SessionInfo,
        destination: str,
        amount_sats: int | None = None,
        *,
        purpose: PayoutPurpose = "withdraw",
        quote: Quote | None = None,
    ) -> PayoutResult:
        quote = quote or await self.quote(session, destination, amount_sats)
        rail = quote.target.rail
        if rail == "lnurl":  # only a fee estimate leaves it unresolved
            raise InputError("this Lightning address was not resolved to an invoice")
        since = utcnow() - timedelta(hours=1)
        if purpose == "withdraw" and await self.ledger.payouts_since(session.id, since) >= self.policy.max_per_hour:
            raise RateLimitedError(
                f"at most {self.policy.max_per_hour} withdrawals per hour per session: try again later",
                details={"_headers": {"Retry-After": "300"}},
            )
        try:
            await self._check_solvency(quote)
        except WalletUnavailableError:
            # Concurrent spending may be why: then the answer is the balance, not the wallet.
            now = await self.ledger.session_by_id(session.id)
            _require_balance(quote, now.balance_sats if now is not None else 0)
            raise
        payout_id = "po_" + secrets.token_hex(12)
        charge = await self.ledger.record_payout(
            session.token_hash,
            payout_id=payout_id,
            amount_sats=quote.amount_sats,
            fee_sats=quote.fee_sats,
            net_sats=quote.net_sats,
            rail=rail,
            destination=quote.target.value,
            payment_hash=quote.target.payment_hash,
            purpose=purpose,
            deadline_s=self.policy.send_timeout_s + self.policy.unknown_grace_s,
        )
        self._sending.add(payout_id)
        try:
            await self._pause("before_send", payout_id)
            refused: str | None = None
            try:
                await asyncio.wait_for(self._send(quote), self.policy.send_timeout_s)
            except BarkdError as exc:
                refused = _barkd_message(exc)  # barkd answered: the send did not happen as asked
            except (WalletUnavailableError, TimeoutError):
                log.warning("payout.unknown", payout_id=payout_id)  # settled later from barkd's history
                return _result(payout_id, PENDING, rail, quote, charge.balance_sats)
            await self._pause("after_send", payout_id)
            row = await self.ledger.payout(payout_id)
            assert row is not None
            state, reason = await self.resolve(row, refused=refused)
        finally:
            self._sending.discard(payout_id)
        after = await self.ledger.session_by_id(session.id)
        balance = after.balance_sats if after is not None else charge.balance_sats
        return _result(payout_id, state, rail, quote, balance, reason)

    async def _send(self, quote: Quote) -> None:
        target = quote.target
        if target.rail == "lightning":
            amount = None if target.invoice_sats is not None else quote.net_sats
            await self.barkd.lightning_pay(target.value, amount)
        else:
            await self.barkd.send_ark(target.value, quote.net_sats)

    async def _check_solvency(self, quote: Quote) -> None:
        """After the payout the wallet must still cover every balance left (liabilities)."""
        balance = await self.barkd.balance()
        spendable = balance.spendable_sats
        assets = balance.assets_sats  # as the operator overview counts
        liabilities = await self.ledger.liabilities_sats()
        leaves = quote.net_sats + quote.barkd_fee_sats
        if spendable < leaves or assets - leaves < liabilities - quote.amount_sats:
            log.warning("payout.insolvent", assets_sats=assets, spendable_sats=spendable, liabilities_sats=liabilities)
            raise WalletUnavailableError("withdrawals are paused: the gateway's wallet cannot cover this one right now")

    async def _pause(self, point: str, payout_id: str) -> None:
        """Tests only (``payout_test_pause``): hold here until the process is killed."""
        if self.policy.test_pause == point:
            log.warning("payout.paused", point=point, payout_id=payout_id)
            await asyncio.Event().wait()

    # --- settling from barkd's state -----------------------------------------------------------------
    async def resolve(self, payout: PayoutRecord, *, refused: str | None = None) -> tuple[PayoutState, str | None]:
        """Settle a pending payout from barkd's history; returns (state, reason), ``pending`` if still open.

        ``refused``: barkd answered the send with an error, so no movement means nothing was sent.
        """
        for _ in range(_CLAIM_ATTEMPTS):
            movement = await self._find_movement(payout)
            if movement is not None and movement.status == "successful":
                outcome = await self._settle(payout, COMPLETED, None, movement.id)
            elif movement is not None and movement.status in ("failed", "canceled"):
                reason = refused or f"barkd reports the payment {movement.status}"
                outcome = await self._settle(payout, FAILED, reason, movement.id)
            elif movement is None and refused is not None:
                outcome = await self._settle(payout, FAILED, refused, None)
            elif movement is None and utcnow() > payout.deadline_at:
                outcome = await self._settle(payout, FAILED, "barkd never sent it", None)
            else:
                return PENDING, None
            if outcome[0] != PENDING:
                return outcome
            # Still pending: a concurrent payout to the same destination claimed that movement first.
        return PENDING, None

    async def _find_movement(self, payout: PayoutRecord) -> Movement | None:
        destination = payout.destination
        wanted = payout.movement_id
        if payout.rail == "lightning":
            is_offer = destination.lower().startswith("lno")
            net = payout.net_sats
            candidates = [
                m
                for m in await self.barkd.history(type_="offer" if is_offer else "invoice", value=destination)
                if m.subsystem == "bark.lightning_send"
                and (
                    (payout.payment_hash is not None and m.payment_hash == payout.payment_hash)
                    # An offer is paid again and again: its payments differ only by amount (and id).
                    or any(d.value == destination and (not is_offer or d.amount_sats == net) for d in m.sent_to)
                )
            ]
        else:
            candidates = [
                m
                for m in await self.barkd.history(type_="ark", value=destination)
                if m.subsystem == "bark.arkoor"
                and m.kind == "send"
                and any(d.value == destination and d.amount_sats == payout.net_sats for d in m.sent_to)
            ]
        # A movement that settled another payout (the same invoice paid before, an earlier payout to
        # the same address) is never this one's.
        if wanted is not None:
            return next((m for m in candidates if m.id == wanted), None)
        taken = await self.ledger.claimed_movement_ids(m.id for m in candidates)
        free = [m for m in candidates if m.id not in taken]
        return min(free, key=lambda m: m.id) if free else None

    async def _settle(
        self, payout: PayoutRecord, state: Literal["completed", "failed"], reason: str | None, movement_id: int | None
    ) -> tuple[PayoutState, str | None]:
        settled = await self.ledger.settle_payout(payout.payout_id, state=state, reason=reason, movement_id=movement_id)
        if settled is None:  # someone else settled it (or the movement was claimed): read what stands
            row = await self.ledger.payout(payout.payout_id)
            return (row.state, row.reason) if row is not None else (PENDING, None)
        event = PayoutEvent(
            type="withdrawal.completed" if state == COMPLETED else "withdrawal.failed",
            payout_id=payout.payout_id,
            session_id=settled.session_id,
            rail=payout.rail,
            destination=payout.destination,
            amount_sats=payout.amount_sats,
            fee_sats=payout.fee_sats,
            net_sats=payout.net_sats,
            refunded_sats=settled.refunded_sats,
            balance_sats=settled.balance_sats,
            reason=reason,
            purpose=payout.purpose,
        )
        self.events.publish(settled.session_id, asdict(event))
        for listener in list(self.listeners):
            try:
                await listener(event)
            except Exception:  # a listener's failure must not undo a settled payout
                log.exception("payout.listener_failed", payout_id=event.payout_id)
        return state, reason

    # --- recovery ----------------------------------------------------------------------------------
    async def recover(self) -> int:
        """Settle every pending payout this process is not sending right now; returns how many ended."""
        ended = 0
        for payout in await self.ledger.pending_payouts():
            if payout.payout_id in self._sending:
                continue
            try:
                state, _ = await self.resolve(payout)
            except ArkgateError as exc:
                log.warning("payout.recover_failed", payout_id=payout.payout_id, error=str(exc))
                continue
            ended += state != PENDING
        return ended

    async def run(self) -> None:
        """Every ``recover_interval_s``: settle payouts a crash or a timeout left pending."""
        while True:
            try:
                await self.recover()
            except Exception:  # the next round tries again
                log.exception("payout.recover_round_failed")
            await asyncio.sleep(self.policy.recover_interval_s)


def _require_balance(quote: Quote, balance_sats: int) -> None:
    if quote.amount_sats > balance_sats:
        raise InsufficientBalanceError(
            f"insufficient balance: this withdrawal takes {quote.amount_sats} sats ({quote.net_sats} to the "
            f"destination + {quote.fee_sats} fee) and the session has {balance_sats}; at most "
            f"{max(0, balance_sats - quote.fee_sats)} sats can reach the destination",
            details={"amount_sats": quote.amount_sats, "fee_sats": quote.fee_sats, "balance_sats": balance_sats},
        )


def _result(
    payout_id: str, state: PayoutState, rail: Rail, quote: Quote, balance_sats: int, reason: str | None = None
) -> PayoutResult:
    return PayoutResult(
        payout_id=payout_id,
        state=state,
        rail=rail,
        amount_sats=quote.amount_sats,
        fee_sats=quote.fee_sats,
        net_sats=quote.net_sats,
        balance_sats=balance_sats,
        reason=reason,
    )


def _barkd_message(exc: BarkdError) -> str:
    body = exc.body
    message = body.get("message") if isinstance(body, dict) else body
    return f"barkd refused the payment: {str(message or exc.http_status)[:200]}"
