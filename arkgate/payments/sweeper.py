"""The crash sweep: calls a dead gateway left in flight are refunded in full, exactly once.

A paid call is recorded in ``calls_in_flight`` in the transaction that debits it and removed
by its one settlement. Anything still there was interrupted:

* at start-up, this instance's own leftovers (it cannot be running them any more);
* periodically, any instance's call past its deadline (its own timeout plus a grace), which
  covers an instance that died and never came back.

Several instances may sweep the same database at once, with no leader: each refund is a
conditional claim on the in-flight row (``charging.apply_settlement``), so one wins.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from pathlib import Path

import structlog

from arkgate.payments.charging import Settled
from arkgate.payments.ledger import Ledger

log = structlog.get_logger("arkgate.sweeper")

INSTANCE_FILE = "instance-id"


def load_instance_id(data_dir: Path, *, per_process: bool = False) -> str:
    """This installation's stable id (kept in ``data_dir``), so a restart recognises its own calls.

    ``per_process``: worker processes share one ``data_dir``, and a worker the supervisor restarts
    must not take its live siblings' calls for its own; each gets the id plus its PID, and a dead
    worker's calls are swept once past their deadline instead of at once.
    """
    if per_process:
        return f"{load_instance_id(data_dir)[:48]}-{os.getpid()}"
    path = data_dir / INSTANCE_FILE
    try:
        existing = path.read_text().strip()
    except FileNotFoundError:
        existing = ""
    if existing:
        return existing[:64]
    path.parent.mkdir(parents=True, exist_ok=True)
    fresh = secrets.token_hex(8)
    path.write_text(fresh + "\n")
    return fresh


class CallSweeper:
    def __init__(self, ledger: Ledger, *, interval_s: float) -> None:
        self.ledger = ledger
        self.interval_s = interval_s

    async def sweep(self, *, at_startup: bool = False) -> list[Settled]:
        """Refund interrupted calls; returns the ones this sweeper refunded."""
        settled = await self.ledger.sweep_interrupted(include_own=at_startup)
        for call in settled:
            log.info(
                "call.interrupted",
                call_id=call.call_id,
                session_id=call.session_id,
                endpoint_id=call.endpoint_id,
                refunded_sats=call.refunded_sats,
                at_startup=at_startup,
            )
        return settled

    async def run(self) -> None:
        """Sweep every ``interval_s`` until cancelled; a failed sweep is logged and retried."""
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                await self.sweep()
            except Exception as exc:
                log.warning("sweep.failed", error=repr(exc))
