"""The refresh policy: refresh VTXOs a configurable number of blocks before they expire.

barkd refreshes by itself only inside its own threshold (144 blocks on mainnet, 12 on test
networks) and only while rounds happen; in 0.6.0 an expired VTXO still looks spendable. So
arkgate compares ``expiry_height`` with the tip itself, earlier than barkd would, and records
every refresh it registers and how its round ended.
"""

from __future__ import annotations

from typing import Any

from arkgate.admin import oplog
from arkgate.admin.console import Console, barkd_call
from arkgate.admin.health import vtxo_rows
from arkgate.errors import ArkgateError, InputError

# Round statuses after which a participation is over (BEHAVIOUR.md section 5).
_ROUND_FAILED = ("failed", "canceled", "sync-error")
_ROUND_DONE = ("unconfirmed", "confirmed")


async def due_vtxos(console: Console) -> tuple[int, list[dict[str, Any]]]:
    """(tip, the spendable VTXOs within ``refresh_before_blocks`` of expiry)."""
    barkd = console.barkd
    tip = await barkd.tip_height()
    rows = vtxo_rows(await barkd.vtxo_list(), tip, console.settings.effective_refresh_before_blocks)
    return tip, [row for row in rows if row["refresh_due"]]


async def refresh(
    console: Console, *, vtxo_ids: list[str] | None = None, everything: bool = False, source: str = "manual"
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
    try:
        async with console.wallet_lock:
            if chosen is None:
                round_info = await barkd_call(barkd.refresh_all())
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
    inputs = list((round_info.get("participation") or {}).get("inputs") or chosen or [])
    outputs = (round_info.get("participation") or {}).get("outputs") or []
    amount = sum(row["amount_sats"] for row in due if row["id"] in inputs) or amount
    round_id = round_info.get("id")
    await oplog.record(
        console.rt.database,
        "refresh",
        "registered",
        amount_sats=amount,
        vtxos=inputs,
        round_id=round_id,
        output_sats=sum(int(o.get("amount_sats") or 0) for o in outputs),
        tip_height=tip,
        source=source,
    )
    if round_id is not None:
        console.state.pending_refresh_rounds[str(round_id)] = inputs
    return {"refreshed": True, "round": round_info, "vtxos": inputs, "tip_height": tip}


async def follow_rounds(console: Console) -> None:
    """Record how the rounds we registered ended; alert when one failed."""
    tracked = console.state.pending_refresh_rounds
    if not tracked:
        return
    rounds = {str(item.get("id")): item for item in await console.barkd.pending_rounds()}
    for round_id, inputs in list(tracked.items()):
        info = rounds.get(round_id)
        status = ((info or {}).get("status") or {}).get("status")
        if info is None or status in _ROUND_DONE:
            # barkd drops confirmed participations, so "gone" means the round went through.
            del tracked[round_id]
            await oplog.record(console.rt.database, "refresh", "completed", round_id=round_id, vtxos=inputs)
        elif status in _ROUND_FAILED:
            del tracked[round_id]
            error = (info.get("status") or {}).get("error")
            await oplog.record(console.rt.database, "refresh", "failed", round_id=round_id, vtxos=inputs, error=error)
            await console.alerter.emit(
                "refresh_failed", f"refresh round {round_id} ended {status}", round_id=round_id, error=error
            )
