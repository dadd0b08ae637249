"""``/exits``: unilateral exits, from start through progress and status to the claim."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response

from arkgate.simulator.http import V1, Field, Router, json_response, parse_json_body, query_bool, query_u64

if TYPE_CHECKING:
    from arkgate.simulator.app import SimulatorApp


def add_routes(router: Router, sim: SimulatorApp) -> None:
    w = sim.wallet
    cfg = sim.config

    @router.route("POST", V1 + "/exits/start/all")
    async def exits_start_all(request: Request) -> Response:
        return json_response(w.start_exits(None))

    @router.route("POST", V1 + "/exits/start/vtxos")
    async def exits_start_vtxos(request: Request) -> Response:
        body = await parse_json_body(request, [Field("vtxos", (list,), required=True)])
        return json_response(w.start_exits(body["vtxos"]))

    @router.route("POST", V1 + "/exits/progress")
    async def exits_progress(request: Request) -> Response:
        await parse_json_body(request, [Field("fee_rate", (int,)), Field("wait", (bool,))])
        return json_response(w.progress_exits())

    def status_flags(request: Request) -> dict[str, bool]:
        return {
            "history": query_bool(request, "history") or False,
            "transactions": query_bool(request, "transactions") or False,
        }

    for which in ("all", "live", "finished"):

        async def exits_status(request: Request, which: str = which) -> Response:
            return json_response(w.exit_status(which, **status_flags(request)))

        router.add("GET", f"{V1}/exits/status/{which}", exits_status)

    @router.route("GET", V1 + "/exits/status")
    async def exits_status_legacy(request: Request) -> Response:
        if cfg.legacy:
            return json_response(w.exit_status("all", history=False, transactions=False))
        return Response(status_code=308, headers={"location": f"{V1}/exits/status/all"})

    @router.route("GET", V1 + "/exits/status/vtxo/{vtxo_id}")
    async def exit_status_vtxo(request: Request) -> Response:
        return json_response(w.exit_status_one(request.path_params["vtxo_id"], **status_flags(request)))

    @router.route("GET", V1 + "/exits/status/{vtxo_id}")
    async def exit_status_alias(request: Request) -> Response:
        return json_response(w.exit_status_one(request.path_params["vtxo_id"], **status_flags(request)))

    @router.route("POST", V1 + "/exits/claim/all")
    async def exits_claim_all(request: Request) -> Response:
        body = await parse_json_body(request, [Field("destination", (str,), required=True), Field("fee_rate", (int,))])
        return json_response(w.claim_exits(body["destination"], None, body["fee_rate"]))

    @router.route("POST", V1 + "/exits/claim/vtxos")
    async def exits_claim_vtxos(request: Request) -> Response:
        body = await parse_json_body(
            request,
            [
                Field("destination", (str,), required=True),
                Field("vtxos", (list,), required=True),
                Field("fee_rate", (int,)),
            ],
        )
        return json_response(w.claim_exits(body["destination"], body["vtxos"], body["fee_rate"]))

    @router.route("POST", V1 + "/exits/cancel/{vtxo_id}")
    async def exits_cancel(request: Request) -> Response:
        return json_response(w.cancel_exit(request.path_params["vtxo_id"]))

    @router.route("GET", V1 + "/exits/fee")
    async def exits_fee(request: Request) -> Response:
        ids_text = request.query_params.get("vtxo_ids")
        ids = [i for i in ids_text.split(",") if i] if ids_text else None
        rate = query_u64(request, "fee_rate_sat_per_vb")
        destination = request.query_params.get("destination")
        if destination is not None:
            w.validate_bitcoin_address(destination)
        return json_response(w.exit_fee(ids, rate))
