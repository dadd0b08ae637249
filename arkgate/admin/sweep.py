"""Sweeps: move revenue out of the hot Ark wallet, keeping the customers' balances covered.

The wallet keeps ``reserve = max(sweep_floor_sats, liabilities + sweep_margin_sats)`` in
spendable VTXOs; everything above it is the surplus. A sweep sends the surplus minus the fee
barkd quotes, so that amount + fee == surplus and the wallet ends exactly at the reserve.
Funds in rounds, boards or exits are not counted as spendable: while a refresh is under way
a sweep moves less, never more.
"""

from __future__ import annotations

from typing import Any

from arkgate.admin import oplog
from arkgate.admin.console import Console, barkd_call
from arkgate.errors import ArkgateError, InputError
from arkgate.payments.barkd import invoice_details

DUST_SATS = 330
_INVOICE_PREFIXES = ("lnbc", "lntb", "lntbs", "lnbcrt", "lnsb", "lntbt")


def classify(destination: str) -> str:
    """bitcoin | lightning_invoice | lightning_offer | lightning_address | lnurl | ark."""
    value = destination.strip().lower().removeprefix("lightning:")
    if value.startswith("lnurl"):
        return "lnurl"
    if value.startswith("lno"):
        return "lightning_offer"
    if value.startswith(_INVOICE_PREFIXES):
        return "lightning_invoice"
    if "@" in value:
        return "lightning_address"
    if value.startswith(("ark1", "tark1")):
        return "ark"
    return "bitcoin"


async def plan(console: Console, destination: str, *, amount_sats: int | None = None) -> dict[str, Any]:
    """What a sweep to ``destination`` would move, with barkd's fee quote; moves nothing."""
    settings = console.settings
    barkd = console.barkd
    kind = classify(destination)
    balance = await barkd.balance()
    spendable = balance.spendable_sats
    liabilities = await console.rt.ledger.liabilities_sats()
    reserve = max(settings.sweep_floor_sats, liabilities + settings.sweep_margin_sats)
    surplus = spendable - reserve
    result: dict[str, Any] = {
        "destination": destination,
        "destination_type": kind,
        "spendable_sats": spendable,
        "liabilities_sats": liabilities,
        "margin_sats": settings.sweep_margin_sats,
        "floor_sats": settings.sweep_floor_sats,
        "reserve_sats": reserve,
        "surplus_sats": surplus,
        "amount_sats": 0,
        "fee_sats": 0,
        "sweepable": False,
        "reason": None,
    }
    if amount_sats is not None and amount_sats < 1:
        raise InputError("amount_sats must be a positive number of sats")
    budget = surplus if amount_sats is None else min(surplus, amount_sats)
    if budget <= 0:
        result["reason"] = f"no surplus: {spendable} sats spendable, {reserve} sats must stay in the wallet"
        return _finish(result)
    if kind == "bitcoin":
        # The fee comes on top of the amount (BEHAVIOUR.md 7); quote, then quote again for the net amount.
        fee = (await barkd_call(barkd.fee_send_onchain(destination, budget))).fee_sats
        amount = budget - fee
        if amount > 0:
            fee = (await barkd_call(barkd.fee_send_onchain(destination, amount))).fee_sats
            amount = min(amount, budget - fee)
    elif kind == "lightning_invoice":
        try:
            _, invoice_amount, _ = invoice_details(destination.strip().removeprefix("lightning:"))
        except Exception as exc:  # any decoding failure is bad input
            raise InputError("destination: not a valid BOLT11 invoice") from exc
        if invoice_amount <= 0:
            raise InputError("destination: the invoice has no amount; use a Lightning address or LNURL instead")
        fee = (await barkd_call(barkd.fee_lightning_pay(invoice_amount))).fee_sats
        amount = invoice_amount
        if amount + fee > budget:
            result.update(amount_sats=amount, fee_sats=fee)
            result["reason"] = f"the invoice asks {amount} sats (+{fee} fee), only {budget} sats can be swept"
            return _finish(result)
    elif kind in ("lightning_address", "lnurl", "lightning_offer"):
        fee = (await barkd_call(barkd.fee_lightning_pay(budget))).fee_sats
        amount = budget - fee
        if amount > 0:
            fee = (await barkd_call(barkd.fee_lightning_pay(amount))).fee_sats
            amount = min(amount, budget - fee)
    else:  # ark: an arkoor payment has no fee
        fee = 0
        amount = budget
    result.update(amount_sats=max(0, amount), fee_sats=fee)
    if amount < DUST_SATS and kind in ("bitcoin", "ark"):
        result["reason"] = f"the surplus after fees ({amount} sats) is below the {DUST_SATS}-sat dust limit"
    elif amount <= 0:
        result["reason"] = "the surplus does not cover the fee"
    else:
        result["sweepable"] = True
    return _finish(result)


def _finish(result: dict[str, Any]) -> dict[str, Any]:
    moved = result["amount_sats"] + result["fee_sats"] if result["sweepable"] else 0
    result["remaining_sats"] = result["spendable_sats"] - moved
    return result


async def sweep(
    console: Console,
    *,
    destination: str | None = None,
    amount_sats: int | None = None,
    dry_run: bool = False,
    source: str = "manual",
) -> dict[str, Any]:
    """Sweep the surplus (or ``amount_sats`` of it); every sweep, dry run or skip is recorded."""
    barkd = console.barkd  # free mode: refused before anything else
    target = (destination or console.settings.sweep_destination).strip()
    if not target:
        raise InputError("destination: give one, or set ARKGATE_SWEEP_DESTINATION")
    database = console.rt.database
    async with console.wallet_lock:
        quote = await plan(console, target, amount_sats=amount_sats)
        if dry_run:
            await oplog.record(database, "sweep", "dry_run", amount_sats=quote["amount_sats"], plan=quote)
            return {"swept": False, "dry_run": True, "plan": quote}
        if not quote["sweepable"]:
            await oplog.record(database, "sweep", "skipped", amount_sats=0, plan=quote, source=source)
            return {"swept": False, "dry_run": False, "plan": quote, "reason": quote["reason"]}
        kind = quote["destination_type"]
        try:
            retry = console.settings.send_retry_for_secs  # barkd 0.8 only; left out for 0.6
            if kind == "bitcoin":
                reference: dict[str, Any] = {"txid": await barkd_call(barkd.send_onchain(target, quote["amount_sats"]))}
            elif kind == "ark":
                reference = (await barkd_call(barkd.send_ark(target, quote["amount_sats"], retry_for_secs=retry))).raw
            elif kind == "lightning_invoice":
                reference = (await barkd_call(barkd.lightning_pay(target, None, retry_for_secs=retry))).raw
            else:
                sent = await barkd_call(barkd.lightning_pay(target, quote["amount_sats"], retry_for_secs=retry))
                reference = sent.raw
        except ArkgateError as exc:
            await oplog.record(
                database, "sweep", "failed", amount_sats=quote["amount_sats"], plan=quote, error=exc.message
            )
            await console.alerter.emit(
                "sweep_failed", f"sweep of {quote['amount_sats']} sats failed: {exc.message}", plan=quote
            )
            raise
        await oplog.record(
            database, "sweep", "sent", amount_sats=quote["amount_sats"], plan=quote, reference=reference, source=source
        )
        after = await barkd.balance()
    return {
        "swept": True,
        "dry_run": False,
        "plan": quote,
        "reference": reference,
        "spendable_after_sats": after.spendable_sats,
    }
