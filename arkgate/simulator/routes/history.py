"""``/history``: the wallet's movements, filtered by payment method, and their metadata."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response

from arkgate.simulator.addresses import decode_ark_address
from arkgate.simulator.errors import BadRequestError
from arkgate.simulator.http import V1, Router, empty_ok, json_response, parse_json_body, path_u32
from arkgate.simulator.invoices import looks_like_invoice
from arkgate.simulator.wallet import Wallet

if TYPE_CHECKING:
    from arkgate.simulator.app import SimulatorApp


def normalise_method(w: Wallet, method_type: str, value: str) -> str:
    """barkd parses then re-serialises the value, so a bad address or invoice is a 400."""
    if method_type == "ark":
        try:
            decode_ark_address(value)
        except ValueError as exc:
            raise BadRequestError(f"bad request: invalid payment method: {exc}") from exc
    elif method_type == "invoice":
        if not looks_like_invoice(value):
            raise BadRequestError("bad request: invalid payment method: invalid invoice")
    elif method_type == "bitcoin":
        try:
            w.validate_bitcoin_address(value)
        except BadRequestError as exc:
            raise BadRequestError(f"bad request: invalid payment method: {exc.message}") from exc
    elif method_type not in ("output-script", "offer", "lightning-address", "lnurl", "custom"):
        raise BadRequestError(f"bad request: invalid payment method: unknown type {method_type}")
    return value


def add_routes(router: Router, sim: SimulatorApp) -> None:
    w = sim.wallet

    @router.route("GET", V1 + "/history")
    async def history(request: Request) -> Response:
        method_type = request.query_params.get("type")
        value = request.query_params.get("value")
        if (method_type is None) != (value is None):
            raise BadRequestError("`type` and `value` must be supplied together")
        if method_type is None or value is None:
            return json_response(w.history())
        return json_response(w.history_by_method(method_type, normalise_method(w, method_type, value)))

    @router.route("GET", V1 + "/wallet/history")
    async def wallet_history(request: Request) -> Response:
        return json_response(w.history())

    @router.route("GET", V1 + "/wallet/movements")
    async def wallet_movements(request: Request) -> Response:
        return json_response(w.history())

    @router.route("POST", V1 + "/history/{id}/metadata")
    async def metadata(request: Request) -> Response:
        raw_id = request.path_params["id"]
        movement_id = path_u32(raw_id, "id")
        patch = await parse_json_body(request, [], any_json=True)
        w.patch_metadata(movement_id, patch)
        return empty_ok()
