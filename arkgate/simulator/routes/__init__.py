"""barkd's REST routes, one module per area, each with ``add_routes(router, sim)``.

``AREAS`` is the registration order. It matters only where two templates of one method overlap
(``/exits/status/all`` before ``/exits/status/{vtxo_id}``), and those stay inside one module.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from arkgate.simulator.http import Router
from arkgate.simulator.routes import (
    boards,
    exits,
    fees,
    history,
    lightning,
    messages,
    notifications,
    onchain,
    payments,
    service,
    wallet,
)

if TYPE_CHECKING:
    from arkgate.simulator.app import SimulatorApp

AREAS: tuple[Callable[[Router, SimulatorApp], None], ...] = (
    service.add_routes,
    wallet.add_routes,
    payments.add_routes,
    lightning.add_routes,
    history.add_routes,
    notifications.add_routes,
    fees.add_routes,
    onchain.add_routes,
    boards.add_routes,
    exits.add_routes,
    messages.add_routes,
)


def add_barkd_routes(router: Router, sim: SimulatorApp) -> None:
    """Register every barkd route on ``router``."""
    for add_routes in AREAS:
        add_routes(router, sim)
