"""``/boards``: moving on-chain funds into Ark."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response

from arkgate.simulator.http import V1, Field, Router, json_response, parse_json_body

if TYPE_CHECKING:
    from arkgate.simulator.app import SimulatorApp


def add_routes(router: Router, sim: SimulatorApp) -> None:
    w = sim.wallet

    @router.route("POST", V1 + "/boards/board-amount")
    async def board_amount(request: Request) -> Response:
        body = await parse_json_body(request, [Field("amount_sat", (int,), required=True)])
        return json_response(w.board(body["amount_sat"]))

    @router.route("POST", V1 + "/boards/board-all")
    async def board_all(request: Request) -> Response:
        return json_response(w.board(None))

    @router.route("GET", V1 + "/boards/pending")
    async def boards_pending(request: Request) -> Response:
        return json_response(w.pending_boards())
