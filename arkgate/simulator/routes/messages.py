"""``/message``: signing and verifying messages with a wallet address's key."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response

from arkgate.simulator.http import V1, Field, Router, json_response, parse_json_body

if TYPE_CHECKING:
    from arkgate.simulator.app import SimulatorApp


def add_routes(router: Router, sim: SimulatorApp) -> None:
    w = sim.wallet

    @router.route("POST", V1 + "/message/sign")
    async def message_sign(request: Request) -> Response:
        body = await parse_json_body(
            request, [Field("message", (str,), required=True), Field("address", (str,), required=True)]
        )
        return json_response(w.sign_message(body["message"], body["address"]))

    @router.route("POST", V1 + "/message/verify")
    async def message_verify(request: Request) -> Response:
        body = await parse_json_body(
            request,
            [
                Field("message", (str,), required=True),
                Field("signature", (str,), required=True),
                Field("pubkey", (str,)),
                Field("address", (str,)),
            ],
        )
        return json_response(w.verify_message(body["message"], body["signature"], body["pubkey"], body["address"]))
