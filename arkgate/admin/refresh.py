"""The refresh policy: refresh VTXOs a configurable number of blocks before they expire.

barkd refreshes by itself only inside its own threshold (144 blocks on mainnet, 12 on test
networks) and only while rounds happen; in 0.6.0 an expired VTXO still looks spendable. So
arkgate compares ``expiry_height`` with the tip itself, earlier than barkd would, and records
every refresh it registers and how its round ended.

Like a merchant with many small payments should (issue 18):
- on barkd 0.8 a due refresh is *delegated* to the server and scheduled at a block height
  ``refresh_schedule_margin_blocks`` before the soonest expiry, so it needs no round timing from
  us and the server carries it through; on 0.6 it joins the next round interactively;
- VTXOs smaller than ``refresh_batch_below_sats`` ride along, consolidating small payments;
- a refresh whose estimated fee (ark-info ``fees.refresh``) exceeds ``refresh_max_fee_ppm`` of
  the amount waits, unless a VTXO is within half the refresh window of expiry;
- every round that fails or is canceled raises an alert, whoever registered it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from arkgate.admin import oplog
from arkgate.admin.console import Console, barkd_call
from arkgate.admin.health import vtxo_rows
from arkgate.errors import ArkgateError, InputError
from arkgate.payments.barkd import ArkInfo

# Round statuses after which a participation is over (BEHAVIOUR.md section 5).
_ROUND_FAILED = ("failed", "canceled", "sync-error")
_ROUND_DONE = ("unconfirmed", "confirmed")


async def due_vtxos(console: Console) -> tuple[int, list[dict[str, Any]]]:
    """(tip, the spendable VTXOs within ``refresh_before_blocks`` of expiry)."""
    barkd = console.barkd
    tip = await barkd.tip_height()
    rows = vtxo_rows(await barkd.vtxo_list(), tip, console.settings.effective_refresh_before_blocks)
    return tip, [row for row in rows if row["refresh_due"]]


@dataclass(kw_only=True)
class RefreshPlan:
    tip: int
    due: list[dict[str, Any]]
    batch: list[dict[str, Any]] = field(default_factory=list)
    amount_sats: int = 0
    fee_sats: int = 0
    urgent: bool = False
    delegated: bool = False
    height: int | None = None
    skip_reason: str | None = None

    @property
    def vtxo_ids(self) -> list[str]:
        return [str(row["id"]) for row in (*self.due, *self.batch)]


def refresh_fee_estimate(ark_info: ArkInfo, rows: list[dict[str, Any]]) -> int:
    """ark-info ``fees.refresh``: a base fee plus, per VTXO, the ppm of the highest expiry bracket it reaches.

    A bracket ``{expiry_blocks_threshold: N, ppm: P}`` applies to a VTXO with at least N blocks
    left: refreshing early gives the server back less of the VTXO's life, so it costs more.
    """
    fees = ark_info.refresh_fees
    table = sorted(fees.get("ppm_expiry_table") or [], key=lambda e: int(e.get("expiry_blocks_threshold") or 0))
    total = int(fees.get("base_fee_sat") or 0)
    for row in rows:
        left = max(0, int(row.get("blocks_left") or 0))
        ppm = 0
        for entry in table:
            if left >= int(entry.get("expiry_blocks_threshold") or 0):
                ppm = int(entry.get("ppm") or 0)
        total += -(-int(row["amount_sats"]) * ppm // 1_000_000)  # rounded up: never under-estimate
    return total


async def plan_refresh(console: Console) -> RefreshPlan:
    """What the policy would refresh now, how (delegated or interactive) and whether the fee allows it."""
    barkd = console.barkd
    settings = console.settings
    window = settings.effective_refresh_before_blocks
    tip = await barkd.tip_height()
    info = await barkd.ark_info()
    max_depth = info.max_vtxo_exit_depth
    rows = vtxo_rows(await barkd.vtxo_list(), tip, window)
    spendable = [r for r in rows if r["state"] == "spendable" and r["policy_type"] == "pubkey"]
    # 0.8 moves too-deep VTXOs to needs_refresh_sat: they can no longer be sent, whatever their expiry.
    due = [
        r
        for r in spendable
        if r["refresh_due"] or (isinstance(max_depth, int) and int(r.get("exit_depth") or 0) >= max_depth)
    ]
    plan = RefreshPlan(tip=tip, due=due)
    if not due:
        return plan
    plan.batch = [r for r in spendable if r not in due and r["amount_sats"] < settings.refresh_batch_below_sats]
    chosen = [*due, *plan.batch]
    plan.amount_sats = sum(r["amount_sats"] for r in chosen)
    plan.fee_sats = refresh_fee_estimate(info, chosen)
    plan.urgent = any((r["blocks_left"] or 0) <= window // 2 for r in due)
    if plan.fee_sats * 1_000_000 > settings.refresh_max_fee_ppm * plan.amount_sats and not plan.urgent:
        plan.skip_reason = (
            f"estimated fee {plan.fee_sats} sats exceeds {settings.refresh_max_fee_ppm} ppm of {plan.amount_sats} sats"
        )
        return plan
    plan.delegated = await barkd.speaks_08()
    if plan.delegated:
        soonest = min(int(r["expiry_height"]) for r in due if isinstance(r["expiry_height"], int))
        plan.height = max(tip + 1, soonest - settings.effective_refresh_schedule_margin_blocks)
    return plan


async def run_policy(console: Console) -> dict[str, Any] | None:
    """One policy pass (the operator task): refresh what is due, batched, within the fee limit."""
    plan = await plan_refresh(console)
    if not plan.due:
        return None
    if plan.skip_reason is not None:
        key = ",".join(sorted(plan.vtxo_ids))
        if console.state.refresh_skipped != key:  # record a skip once, not every check
            console.state.refresh_skipped = key
            await oplog.record(
                console.rt.database,
                "refresh",
                "skipped",
                amount_sats=plan.amount_sats,
                vtxos=plan.vtxo_ids,
                fee_sats=plan.fee_sats,
                reason=plan.skip_reason,
                tip_height=plan.tip,
                source="policy",
            )
        return {"refreshed": False, "reason": plan.skip_reason, "tip_height": plan.tip}
    console.state.refresh_skipped = None
    return await refresh(console, vtxo_ids=plan.vtxo_ids, source="policy", plan=plan)


async def refresh(
    console: Console,
    *,
    vtxo_ids: list[str] | None = None,
    everything: bool = False,
    source: str = "manual",
    plan: RefreshPlan | None = None,
) -> dict[str, Any]:
    """Refresh the due VTXOs (default), the given ones, or all; records the outcome and alerts on failure."""
    barkd = console.barkd
    tip, due = await due_vtxos(console)
    if vtxo_ids is not None and not vtxo_ids:
        raise InputError("vtxos: give at least one VTXO id, or leave it out to refresh the due ones")
    if everything:
        chosen: list[str] | None = None
    elif vtxo_ids is not None:
        chosen = list(dict.fromkeys(vtxo_ids))
    else:
        chosen = [row["id"] for row in due]
        if not chosen:
            return {"refreshed": False, "reason": "no VTXO is due for refresh", "tip_height": tip, "due": []}
    amount = sum(row["amount_sats"] for row in due if chosen is None or row["id"] in chosen)
    if plan is not None:
        amount = plan.amount_sats
    try:
        async with console.wallet_lock:
            if chosen is None:
                round_info = await barkd_call(barkd.refresh_all())
            elif plan is not None and plan.delegated:
                try:
                    round_info = await barkd_call(barkd.refresh_delegated(chosen, plan.height))
                except ArkgateError:
                    # The server would not take the delegation: join a round ourselves instead.
                    plan.delegated, plan.height = False, None
                    round_info = await barkd_call(barkd.refresh_vtxos(chosen))
            else:
                round_info = await barkd_call(barkd.refresh_vtxos(chosen))
    except ArkgateError as exc:
        await oplog.record(
            console.rt.database, "refresh", "failed", amount_sats=amount, vtxos=chosen, source=source, error=exc.message
        )
        if not console.state.refresh_failing:
            console.state.refresh_failing = True
            await console.alerter.emit(
                "refresh_failed", f"VTXO refresh failed: {exc.message}", vtxos=chosen, tip_height=tip
            )
        raise
    console.state.refresh_failing = False
    inputs = round_info.inputs or list(chosen or [])
    if plan is None:
        amount = sum(row["amount_sats"] for row in due if row["id"] in inputs) or amount
    round_id = round_info.round_id
    scheduled = round_info.raw.get("scheduled_height", plan.height if plan is not None else None)
    await oplog.record(
        console.rt.database,
        "refresh",
        "registered",
        amount_sats=amount,
        vtxos=inputs,
        round_id=round_info.raw.get("id"),  # as barkd numbers it, as the operator log always showed it
        output_sats=round_info.output_sats,
        tip_height=tip,
        source=source,
        mode="delegated" if plan is not None and plan.delegated else "interactive",
        scheduled_height=scheduled,
        fee_estimate_sats=plan.fee_sats if plan is not None else None,
    )
    if round_id is not None:
        console.state.pending_refresh_rounds[str(round_id)] = inputs
    book = console.rt.sessions.address_book
    if book is not None:
        # The output lands on a freshly derived key that will hold money: it closes the address gap.
        await book.note_refresh(f"round:{round_id}:{inputs[0] if inputs else ''}")
    return {
        "refreshed": True,
        "round": round_info.raw,
        "vtxos": inputs,
        "tip_height": tip,
        "scheduled_height": scheduled,
    }


async def follow_rounds(console: Console) -> None:
    """Record how the rounds we registered ended; alert when any round failed or was canceled."""
    tracked = console.state.pending_refresh_rounds
    pending = await console.barkd.pending_rounds()
    for item in pending:
        round_id = str(item.round_id)
        outcome = item.outcome
        if outcome in _ROUND_FAILED and round_id not in tracked and round_id not in console.state.alerted_rounds:
            # barkd's own maintenance refresh (or one registered before a restart) failed.
            console.state.alerted_rounds.add(round_id)
            await console.alerter.emit(
                "refresh_failed", f"round {round_id} ended {outcome}", round_id=round_id, error=item.error
            )
    if not tracked:
        return
    rounds = {str(item.round_id): item for item in pending}
    for round_id, inputs in list(tracked.items()):
        info = rounds.get(round_id)
        status = info.outcome if info is not None else None
        if info is None or status in _ROUND_DONE:
            # barkd drops confirmed participations, so "gone" means the round went through.
            del tracked[round_id]
            await oplog.record(console.rt.database, "refresh", "completed", round_id=round_id, vtxos=inputs)
        elif status in _ROUND_FAILED:
            del tracked[round_id]
            console.state.alerted_rounds.add(round_id)
            await oplog.record(
                console.rt.database, "refresh", "failed", round_id=round_id, vtxos=inputs, error=info.error
            )
            await console.alerter.emit(
                "refresh_failed", f"refresh round {round_id} ended {status}", round_id=round_id, error=info.error
            )
