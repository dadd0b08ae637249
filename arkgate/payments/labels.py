"""Movement labels: each credited barkd movement carries the session it credited.

barkd keeps free-form metadata on every movement (``POST /history/{id}/metadata``, an RFC 7396
merge patch), so barkd's own history explains arkgate's ledger. A label is written after the
credit commits; a label that failed (barkd away, a crash in between) is reported and re-written
by ``arkgate admin reconcile --apply``.
"""

from __future__ import annotations

from typing import TypedDict

import structlog

from arkgate.errors import ArkgateError
from arkgate.payments.barkd import BarkdClient, Movement
from arkgate.payments.kinds import Rail
from arkgate.payments.ledger import CreditResult

log = structlog.get_logger("arkgate.labels")

LABEL_KEY = "arkgate"


class Label(TypedDict):
    session_ids: list[int]
    rail: Rail


# The merge patch barkd applies to the movement's metadata: ``{"arkgate": Label}``.
class LabelPatch(TypedDict):
    arkgate: Label


def label_for(session_ids: list[int], rail: Rail) -> LabelPatch:
    return {"arkgate": {"session_ids": sorted(set(session_ids)), "rail": rail}}  # LABEL_KEY


def labelled_sessions(movement: Movement) -> list[int] | None:
    """The session ids a movement's label names, or None when it carries no arkgate label."""
    label = movement.metadata.get(LABEL_KEY)
    if not isinstance(label, dict):
        return None
    ids = label.get("session_ids")
    return [int(i) for i in ids if isinstance(i, int)] if isinstance(ids, list) else None


async def label_credits(barkd: BarkdClient, movement: Movement, results: list[CreditResult], rail: Rail) -> None:
    """Stamp ``movement`` with the sessions ``results`` credited; never raises (crediting already happened)."""
    session_ids = [r.session_id for r in results if r.credited and r.session_id is not None]
    if not session_ids:
        return
    try:
        await barkd.label_movement(movement.id, label_for(session_ids, rail))
    except ArkgateError as exc:
        log.warning("labels.not_written", movement_id=movement.id, reason=exc.message)
