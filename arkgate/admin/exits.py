"""Emergency exits through barkd: estimate, start, progress, status, claim (BEHAVIOUR.md section 6).

An exit broadcasts the VTXO's transaction chain with CPFP children paid from the on-chain
wallet's *confirmed* funds, so starting one is refused (unless forced) when the fee estimate
says the on-chain wallet cannot pay, with the amount that is missing. barkd never claims by
itself: ``claim`` sweeps claimable exits to an address (by default a fresh one of barkd's
own on-chain wallet).
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select

from arkgate.admin import oplog
from arkgate.admin.console import Console, barkd_call
from arkgate.db import tables as t
from arkgate.errors import ConflictError, InputError
from arkgate.payments.barkd import BarkdError, ExitStatus

LIVE = ("start", "processing", "awaiting-delta", "claimable", "claim-in-progress")
# barkd 0.8: the server swept the VTXO before its exit committed on-chain; the exit is over, unpaid.
SWEPT = "vtxo-swept"
NOT_CLAIMABLE_YET = ("start", "processing", "awaiting-delta")


class ExitUnfundedError(ConflictError):
    code = "exit_unfunded"


def _kvb(sat_per_vb: int | None) -> int | None:
    return None if sat_per_vb is None else sat_per_vb * 1000


async def _onchain_confirmed(console: Console) -> int | None:
    try:
        balance = await console.barkd.onchain_balance()
    except BarkdError:
        return None  # no on-chain wallet
    return balance.confirmed_sats


async def estimate(
    console: Console, vtxo_ids: list[str] | None = None, *, fee_rate_sat_per_vb: int | None = None
) -> dict[str, Any]:
    """barkd's exit fee estimate against the on-chain wallet's confirmed funds."""
    rate = fee_rate_sat_per_vb or console.settings.exit_fee_rate_sat_per_vb
    fee = await barkd_call(console.barkd.exit_fee(vtxo_ids, fee_rate_sat_per_vb=rate))
    available = await _onchain_confirmed(console)
    vtxos = await console.barkd.vtxo_list()
    chosen = [
        v
        for v in vtxos
        if (vtxo_ids is None and v.state == "spendable") or (vtxo_ids is not None and v.vtxo_id in vtxo_ids)
    ]
    result: dict[str, Any] = {
        "vtxos": [v.vtxo_id for v in chosen],
        "amount_sats": sum(v.amount_sats for v in chosen),
        "estimate": fee.raw if fee is not None else None,
        "onchain_confirmed_sats": available,
        "fundable": None,
        "needed_sats": None,
        "shortfall_sats": None,
    }
    if fee is not None:
        # The broadcast fees are paid up front from confirmed on-chain funds; the claim fee
        # comes out of the exited amount later.
        needed = fee.exit_broadcast_fee_sats
        have = available or 0
        result["needed_sats"] = needed
        result["shortfall_sats"] = max(0, needed - have)
        said = fee.fundable
        result["fundable"] = (have >= needed if said is None else said) and have >= needed
    return result


async def start(
    console: Console,
    vtxo_ids: list[str] | None = None,
    *,
    force: bool = False,
    source: str = "manual",
    fee_rate_sat_per_vb: int | None = None,
) -> dict[str, Any]:
    """Start exits for the given VTXOs (default: all); refused while the on-chain wallet can't pay fees."""
    if vtxo_ids is not None and not vtxo_ids:
        raise InputError("vtxos: give at least one VTXO id, or leave it out to exit every VTXO")
    barkd = console.barkd
    cost = await estimate(console, vtxo_ids, fee_rate_sat_per_vb=fee_rate_sat_per_vb)
    if cost["fundable"] is False and not force:
        raise ExitUnfundedError(
            f"the on-chain wallet cannot pay the exit fees: {cost['needed_sats']} sats of confirmed funds "
            f"are needed and {cost['onchain_confirmed_sats'] or 0} are available; send at least "
            f"{cost['shortfall_sats']} sats to the wallet's on-chain address and wait for a confirmation "
            "(or start anyway with force)",
            details={
                "needed_sats": cost["needed_sats"],
                "available_sats": cost["onchain_confirmed_sats"] or 0,
                "shortfall_sats": cost["shortfall_sats"],
            },
        )
    before = {e.vtxo_id for e in await barkd.exit_statuses("live")}
    async with console.wallet_lock:
        await barkd_call(barkd.start_exits(vtxo_ids))
    live = await barkd.exit_statuses("live")
    started = [e.vtxo_id for e in live if e.vtxo_id not in before]
    amounts = await _amounts(console)
    amount = sum(amounts.get(vtxo_id, 0) for vtxo_id in started)
    await oplog.record(
        console.rt.database,
        "exit",
        "started",
        amount_sats=amount,
        vtxos=started,
        source=source,
        forced=force,
        estimate=cost["estimate"],
    )
    if started:
        await console.alerter.emit(
            "exit_started",
            f"emergency exit started for {len(started)} VTXO(s), {amount} sats ({source})",
            vtxos=started,
            amount_sats=amount,
            source=source,
            fundable=cost["fundable"],
            shortfall_sats=cost["shortfall_sats"],
        )
    await track_states(console)
    return {"started": started, "amount_sats": amount, "estimate": cost, "exits": await statuses(console)}


async def progress(console: Console, *, fee_rate_sat_per_vb: int | None = None) -> dict[str, Any]:
    """One progress step of every exit (barkd also steps them every 60 s by itself)."""
    rate = fee_rate_sat_per_vb or console.settings.exit_fee_rate_sat_per_vb
    async with console.wallet_lock:
        result = await barkd_call(console.barkd.progress_exits(fee_rate_sat_per_kvb=_kvb(rate)))
    errors = result.errors
    for item in errors:
        error = item["error"]
        key = f"{item.get('vtxo_id')}:{error.get('type') if isinstance(error, dict) else error}"
        if key not in console.state.exit_errors:
            console.state.exit_errors.add(key)
            await console.alerter.emit(
                "exit_failed",
                f"exit of {item.get('vtxo_id')} cannot progress: {error}",
                vtxo_id=item.get("vtxo_id"),
                error=error,
            )
    await track_states(console)
    return {
        "done": result.is_done,
        "claimable_height": result.claimable_height,
        "errors": errors,
        "exits": await statuses(console),
    }


async def statuses(console: Console, vtxo_id: str | None = None) -> list[dict[str, Any]]:
    """Every exit (or one) with its state, amount and history as barkd reports them."""
    barkd = console.barkd
    if vtxo_id is not None:
        items = [await barkd_call(barkd.exit_status(vtxo_id, history=True))]
    else:
        items = await fetch_observed(console, history=True)
    amounts = await _amounts(console)
    return [
        {
            "vtxo_id": item.vtxo_id,
            "state": item.state,
            "amount_sats": amounts.get(item.vtxo_id),
            "detail": item.detail,
            "history": [h.get("type") for h in item.history],
            "history_detail": item.history,
        }
        for item in items
    ]


async def claim(
    console: Console,
    *,
    destination: str | None = None,
    vtxo_ids: list[str] | None = None,
    fee_rate_sat_per_vb: int | None = None,
) -> dict[str, Any]:
    """Sweep claimable exits to ``destination`` (default: the setting, else a fresh on-chain address)."""
    barkd = console.barkd
    current = await fetch_observed(console)
    claimable = [e.vtxo_id for e in current if e.state == "claimable"]
    if vtxo_ids is None and not claimable:
        waiting = [e for e in current if e.state in NOT_CLAIMABLE_YET]
        heights = [e.claimable_height for e in waiting if e.claimable_height]
        hint = f"; the first becomes claimable at height {min(heights)}" if heights else ""
        raise ConflictError(f"no exit is claimable yet ({len(waiting)} still in progress{hint})")
    chosen = vtxo_ids if vtxo_ids is not None else claimable
    address = destination or console.settings.exit_claim_address or await barkd.onchain_address()
    rate = fee_rate_sat_per_vb or console.settings.exit_fee_rate_sat_per_vb
    amounts = await _amounts(console)
    async with console.wallet_lock:
        await barkd_call(barkd.claim_exits(address, vtxo_ids, fee_rate_sat_per_kvb=_kvb(rate)))
    amount = sum(amounts.get(v, 0) for v in chosen)
    await oplog.record(
        console.rt.database, "exit", "claim-broadcast", amount_sats=amount, vtxos=chosen, destination=address
    )
    await track_states(console)
    return {"claimed": chosen, "amount_sats": amount, "destination": address, "exits": await statuses(console)}


async def track_states(console: Console) -> None:
    """Record every exit state change barkd reports (once each) and alert on it."""
    await fetch_observed(console)


async def fetch_observed(console: Console, *, history: bool = False) -> list[ExitStatus]:
    """All exit statuses, their changes recorded; the lock keeps a slower, older read from
    being recorded after a newer one (which would look like a step backwards)."""
    async with console.exit_lock:
        items = await console.barkd.exit_statuses("all", history=history)
        await observe(console, items)
    return items


async def observe(console: Console, items: list[ExitStatus]) -> list[dict[str, Any]]:
    """Record the state changes in these exit statuses: whoever reads barkd first reports a change."""
    known = console.state.exit_states
    changes = []
    for item in items:
        vtxo_id = item.vtxo_id
        kind = str(item.state)
        previous = known.get(vtxo_id)
        if previous == kind:
            continue
        known[vtxo_id] = kind
        changes.append({"vtxo_id": vtxo_id, "from": previous, "to": kind})
        await oplog.record(console.rt.database, "exit", kind, vtxo_id=vtxo_id, previous=previous, detail=item.detail)
        await console.alerter.emit(
            "exit_state_changed",
            f"exit of {vtxo_id}: {previous or 'new'} -> {kind}",
            vtxo_id=vtxo_id,
            state=kind,
            previous=previous,
        )
        if kind == SWEPT:
            spent = (item.detail or {}).get("spent_inputs")
            await console.alerter.emit(
                "exit_failed",
                f"the Ark server swept {vtxo_id} before its exit confirmed: refresh earlier than expiry",
                vtxo_id=vtxo_id,
                spent_inputs=spent,
            )
    return changes


async def load_known_states(console: Console) -> None:
    """After a restart, remember the last recorded state of each exit so changes are not re-announced."""
    async with console.rt.database.read() as conn:
        rows = await conn.execute(
            select(t.operator_log.c.status, t.operator_log.c.detail)
            .where(t.operator_log.c.kind == "exit")
            .order_by(t.operator_log.c.id)
        )
        for row in rows:
            detail = json.loads(row.detail or "{}")
            if "vtxo_id" in detail and "previous" in detail:
                console.state.exit_states[str(detail["vtxo_id"])] = row.status


async def _amounts(console: Console) -> dict[str, int]:
    return {v.vtxo_id: v.amount_sats for v in await console.barkd.vtxo_list(all_states=True)}
