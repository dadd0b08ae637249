"""``arkgate admin reconcile``: arkgate's ledger against barkd's own history.

Every credit arkgate makes is stamped on barkd's movement with the session it went to
(payments/labels.py), so the two can be compared movement by movement. The report lists:

- ``unknown_receives``: money barkd received that no session was credited for, and no label
  claims (a payment to an address or invoice arkgate never handed out, or an orphan);
- ``missing_credits``: movements whose label names a session but the ledger has no credit for
  (a credit lost or deleted);
- ``unlabelled_credits``: credits whose movement carries no label (a label write that failed);
- ``amount_mismatches``: credits whose amount differs from what the movement received;
- ``ledger_only``: credits whose movement barkd no longer lists (a recreated wallet).

Nothing changes unless ``apply`` is set: then missing labels are written and the payment
watcher re-reads barkd's history to credit what it missed, by its own exactly-once rules.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from arkgate.admin import oplog
from arkgate.admin.console import Console, barkd_call
from arkgate.db import tables as t
from arkgate.payments.barkd import Movement
from arkgate.payments.kinds import Rail, as_rail
from arkgate.payments.labels import label_for, labelled_sessions


@dataclass(frozen=True, kw_only=True)
class LedgerCredit:
    movement_id: int | None
    session_id: int | None
    rail: Rail
    amount_sats: int
    payment_hash: str | None


def received_sats(movement: Movement) -> int:
    """What a receive movement brought in, as arkgate credits it (gross for Lightning)."""
    if movement.is_lightning_receive:
        return movement.intended_sats or sum(d.amount_sats for d in movement.received_on)
    return sum(d.amount_sats for d in movement.received_on if d.type == "ark")


async def _ledger_credits(console: Console) -> list[LedgerCredit]:
    async with console.rt.database.read() as conn:
        rows = (
            await conn.execute(
                select(
                    t.payments.c.movement_id,
                    t.payments.c.session_id,
                    t.payments.c.rail,
                    t.payments.c.amount_sats,
                    t.payments.c.payment_hash,
                ).where(t.payments.c.rail.in_(("ark", "lightning")))
            )
        ).all()
    return [
        LedgerCredit(
            movement_id=None if row.movement_id is None else int(row.movement_id),
            session_id=row.session_id,
            rail=as_rail(row.rail),
            amount_sats=int(row.amount_sats),
            payment_hash=row.payment_hash,
        )
        for row in rows
    ]


async def compare(console: Console) -> dict[str, Any]:
    movements = await barkd_call(console.barkd.history())
    receives = {
        m.id: m
        for m in movements
        if m.status == "successful" and (m.is_ark_receive or (m.is_lightning_receive and m.payment_hash))
    }
    credits = await _ledger_credits(console)
    by_movement: dict[int, list[LedgerCredit]] = {}
    by_hash: dict[str, list[LedgerCredit]] = {}
    for credit in credits:
        if credit.movement_id is not None:
            by_movement.setdefault(credit.movement_id, []).append(credit)
        if credit.payment_hash:
            by_hash.setdefault(credit.payment_hash, []).append(credit)
    report: dict[str, list[dict[str, Any]]] = {
        "unknown_receives": [],
        "missing_credits": [],
        "unlabelled_credits": [],
        "amount_mismatches": [],
        "ledger_only": [],
    }
    for movement in sorted(receives.values(), key=lambda m: m.id):
        found = by_movement.get(movement.id) or (by_hash.get(movement.payment_hash or "") or [])
        owned = [c for c in found if c.session_id is not None]
        labelled = labelled_sessions(movement)
        item = {
            "movement_id": movement.id,
            "rail": "lightning" if movement.is_lightning_receive else "ark",
            "amount_sats": received_sats(movement),
            "received_on": [d.value for d in movement.received_on],
        }
        if not owned:
            if labelled:
                report["missing_credits"].append({**item, "session_ids": labelled})
            else:
                report["unknown_receives"].append({**item, "orphan_credit": bool(found)})
            continue
        session_ids = sorted({int(c.session_id) for c in owned if c.session_id is not None})
        if labelled is None:
            report["unlabelled_credits"].append({**item, "session_ids": session_ids})
        credited = sum(c.amount_sats for c in found)
        if credited != item["amount_sats"]:
            report["amount_mismatches"].append({**item, "credited_sats": credited, "session_ids": session_ids})
    for credit in credits:
        in_history = (credit.movement_id is not None and credit.movement_id in receives) or any(
            m.payment_hash == credit.payment_hash for m in receives.values() if credit.payment_hash
        )
        if not in_history:
            report["ledger_only"].append(
                {
                    "movement_id": credit.movement_id,
                    "session_id": credit.session_id,
                    "rail": credit.rail,
                    "amount_sats": credit.amount_sats,
                }
            )
    differences = sum(len(items) for items in report.values())
    return {"consistent": differences == 0, "differences": differences, "movements_checked": len(receives), **report}


async def reconcile(console: Console, *, apply: bool = False) -> dict[str, Any]:
    report = await compare(console)
    if not apply:
        return {"applied": False, **report}
    labelled = 0
    for item in report["unlabelled_credits"]:
        await barkd_call(
            console.barkd.label_movement(item["movement_id"], label_for(item["session_ids"], item["rail"]))
        )
        labelled += 1
    credited = 0
    watcher = console.rt.watcher
    if watcher is not None and (report["missing_credits"] or report["unknown_receives"]):
        credited = await watcher.reconcile()
    await oplog.record(
        console.rt.database,
        "reconcile",
        "applied",
        labels_written=labelled,
        credits_made=credited,
        differences=report["differences"],
    )
    after = await compare(console)
    return {"applied": True, "labels_written": labelled, "credits_made": credited, "before": report, **after}
