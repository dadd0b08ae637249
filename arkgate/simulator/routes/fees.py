"""``/fees``: estimates for boards, Lightning, offboards and on-chain sends."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response

from arkgate.simulator.errors import PlainTextError
from arkgate.simulator.http import V1, Field, Router, json_response, parse_json_body, query_u64
from arkgate.simulator.onchain import FEE_RATES

if TYPE_CHECKING:
    from arkgate.simulator.app import SimulatorApp


def add_routes(router: Router, sim: SimulatorApp) -> None:
    w = sim.wallet

    @router.route("GET", V1 + "/fees/onchain")
    async def fees_onchain(request: Request) -> Response:
        w.require_wallet()
        return json_response(FEE_RATES)

    @router.route("GET", V1 + "/fees/board")
    async def fees_board(request: Request) -> Response:
        amount = query_u64(request, "amount_sat", required=True) or 0
        w.require_wallet()
        return json_response(w.estimate(amount, 0, []))

    @router.route("GET", V1 + "/fees/lightning/receive")
    async def fees_ln_receive(request: Request) -> Response:
        amount = query_u64(request, "amount_sat", required=True) or 0
        w.require_wallet()
        return json_response(w.estimate(amount, w.receive_fee(amount), []))

    @router.route("GET", V1 + "/fees/lightning/pay")
    async def fees_ln_pay(request: Request) -> Response:
        amount = query_u64(request, "amount_sat", required=True) or 0
        w.require_wallet()
        fee = w.send_fee(amount)
        return json_response(
            {"gross_amount_sat": amount + fee, "fee_sat": fee, "net_amount_sat": amount, "vtxos_spent": []}
        )

    @router.route("GET", V1 + "/fees/offboard-all")
    async def fees_offboard_all(request: Request) -> Response:
        address = request.query_params.get("address")
        if address is None:
            raise PlainTextError(400, "Failed to deserialize query string: missing field `address`")
        return json_response(w.estimate_offboard(address, None))

    @router.route("POST", V1 + "/fees/offboard")
    async def fees_offboard(request: Request) -> Response:
        body = await parse_json_body(
            request, [Field("address", (str,), required=True), Field("vtxos", (list,), required=True)]
        )
        return json_response(w.estimate_offboard(body["address"], body["vtxos"]))

    @router.route("GET", V1 + "/fees/send-onchain")
    async def fees_send_onchain(request: Request) -> Response:
        amount = query_u64(request, "amount_sat", required=True) or 0
        address = request.query_params.get("address")
        if address is None:
            raise PlainTextError(400, "Failed to deserialize query string: missing field `address`")
        return json_response(w.estimate_send_onchain(address, amount))
