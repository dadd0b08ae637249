"""Money leaving the wallet: ``/wallet/send``, ``/wallet/send-onchain`` and offboards."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response

from arkgate.simulator.config import SimConfig
from arkgate.simulator.errors import BadRequestError
from arkgate.simulator.http import V1, Field, Router, json_response, parse_json_body

if TYPE_CHECKING:
    from arkgate.simulator.app import SimulatorApp


def send_fields(cfg: SimConfig) -> list[Field]:
    """0.8.0 reads ``retry_for_secs`` on sends; 0.6.0 ignores unknown fields, as serde does."""
    return [Field("retry_for_secs", (int,))] if cfg.v08 else []


def remember_send(sim: SimulatorApp, body: dict[str, Any]) -> None:
    """Keep the send's options for tests, read back through ``/_sim/state``."""
    sim.last_send_request = {
        "destination": body["destination"],
        "amount_sat": body["amount_sat"],
        "retry_for_secs": body.get("retry_for_secs") if sim.config.v08 else None,
        "fields": sorted(key for key, value in body.items() if value is not None),
    }


def add_routes(router: Router, sim: SimulatorApp) -> None:
    w = sim.wallet

    @router.route("POST", V1 + "/wallet/offboard/all")
    async def offboard_all(request: Request) -> Response:
        body = await parse_json_body(request, [Field("address", (str,))])
        return json_response(w.offboard(body["address"], None))

    @router.route("POST", V1 + "/wallet/offboard/vtxos")
    async def offboard_vtxos(request: Request) -> Response:
        body = await parse_json_body(request, [Field("address", (str,)), Field("vtxos", (list,), required=True)])
        return json_response(w.offboard(body["address"], body["vtxos"]))

    @router.route("POST", V1 + "/wallet/send")
    async def send(request: Request) -> Response:
        body = await parse_json_body(
            request,
            [
                Field("destination", (str,), required=True),
                Field("amount_sat", (int,)),
                Field("comment", (str,)),
                *send_fields(sim.config),
            ],
        )
        remember_send(sim, body)
        if body["comment"] is not None and body["destination"].lower().startswith("ln"):
            raise BadRequestError("comment is not supported for BOLT11 invoices")
        result = w.send(body["destination"], body["amount_sat"])
        return json_response(result)

    @router.route("POST", V1 + "/wallet/send-onchain")
    async def send_onchain(request: Request) -> Response:
        body = await parse_json_body(
            request, [Field("destination", (str,), required=True), Field("amount_sat", (int,), required=True)]
        )
        return json_response(w.send_onchain(body["destination"], body["amount_sat"]))
