"""``/lightning``: invoices we receive on, and Lightning payments we make."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response

from arkgate.simulator.errors import BadRequestError
from arkgate.simulator.http import V1, Field, Router, empty_ok, json_response, parse_json_body
from arkgate.simulator.routes.payments import remember_send, send_fields

if TYPE_CHECKING:
    from arkgate.simulator.app import SimulatorApp


def add_routes(router: Router, sim: SimulatorApp) -> None:
    w = sim.wallet
    cfg = sim.config

    @router.route("POST", V1 + "/lightning/receives/invoice")
    async def invoice(request: Request) -> Response:
        body = await parse_json_body(
            request,
            [Field("amount_sat", (int,), required=True), Field("description", (str,)), Field("token", (str,))],
        )
        return json_response({"invoice": w.create_invoice(body["amount_sat"], body["description"])})

    @router.route("POST", V1 + "/lightning/receives/invoice/for-address")
    async def invoice_for_address(request: Request) -> Response:
        body = await parse_json_body(
            request,
            [
                Field("amount_sat", (int,), required=True),
                Field("address", (str,), required=True),
                Field("description", (str,)),
            ],
        )
        address = body["address"]
        if w.parse_ark_address(address) is None:
            raise BadRequestError(f"bad request: invalid Ark address: {address}")
        invoice_text = w.create_invoice(body["amount_sat"], body["description"], for_address=address)
        return json_response({"invoice": invoice_text})

    @router.route("GET", V1 + "/lightning/receives")
    async def receives(request: Request) -> Response:
        return json_response(w.pending_receives())

    @router.route("GET", V1 + "/lightning/receives/{identifier}")
    async def receive_get(request: Request) -> Response:
        return json_response(w.receive_status(request.path_params["identifier"]))

    @router.route("DELETE", V1 + "/lightning/receives/{identifier}")
    async def receive_cancel(request: Request) -> Response:
        w.cancel_receive(request.path_params["identifier"])
        return empty_ok()

    @router.route("POST", V1 + "/lightning/pay")
    async def lightning_pay(request: Request) -> Response:
        body = await parse_json_body(
            request,
            [
                Field("destination", (str,), required=True),
                Field("amount_sat", (int,)),
                Field("comment", (str,)),
                *send_fields(cfg),
            ],
        )
        remember_send(sim, body)
        if body["comment"] is not None and body["destination"].lower().startswith(("ln", "lno")):
            raise BadRequestError("comment is not supported for BOLT11 invoices or BOLT12 offers")
        result = w.lightning_pay(body["destination"], body["amount_sat"])
        if cfg.legacy:
            result.pop("payment_hash", None)
        return json_response(result)

    @router.route("GET", V1 + "/lightning/sends/{identifier}")
    async def send_status(request: Request) -> Response:
        return json_response(w.send_status(request.path_params["identifier"]))
