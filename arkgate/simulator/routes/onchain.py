"""``/onchain`` and ``/bitcoin/tip``: the on-chain wallet beside the Ark one, and the chain it watches."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response

from arkgate.simulator.http import V1, Field, Router, empty_ok, json_response, parse_json_body

if TYPE_CHECKING:
    from arkgate.simulator.app import SimulatorApp


def add_routes(router: Router, sim: SimulatorApp) -> None:
    w = sim.wallet

    @router.route("GET", V1 + "/bitcoin/tip")
    async def tip(request: Request) -> Response:
        return json_response({"tip_height": w.tip})

    @router.route("GET", V1 + "/onchain/balance")
    async def onchain_balance(request: Request) -> Response:
        return json_response(w.onchain_balance())

    @router.route("POST", V1 + "/onchain/addresses/next")
    async def onchain_address(request: Request) -> Response:
        return json_response({"address": w.new_onchain_address()})

    @router.route("POST", V1 + "/onchain/send")
    async def onchain_send(request: Request) -> Response:
        body = await parse_json_body(
            request, [Field("destination", (str,), required=True), Field("amount_sat", (int,), required=True)]
        )
        return json_response(w.onchain_send(body["destination"], body["amount_sat"]))

    @router.route("POST", V1 + "/onchain/drain")
    async def onchain_drain(request: Request) -> Response:
        body = await parse_json_body(request, [Field("destination", (str,), required=True)])
        return json_response(w.onchain_drain(body["destination"]))

    @router.route("POST", V1 + "/onchain/send-many")
    async def onchain_send_many(request: Request) -> Response:
        body = await parse_json_body(
            request, [Field("destinations", (list,), required=True), Field("immediate", (bool,))]
        )
        return json_response(w.onchain_send_many(body["destinations"]))

    @router.route("GET", V1 + "/onchain/utxos")
    async def onchain_utxos(request: Request) -> Response:
        return json_response(w.onchain_utxos())

    @router.route("GET", V1 + "/onchain/transactions")
    async def onchain_transactions(request: Request) -> Response:
        return json_response(w.onchain_transactions())

    @router.route("POST", V1 + "/onchain/sync")
    async def onchain_sync(request: Request) -> Response:
        w.require_wallet()
        return empty_ok()
