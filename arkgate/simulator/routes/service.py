"""Routes outside ``/api/v1`` that barkd serves without a token: the health ping and its OpenAPI stub."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from arkgate.simulator.http import Router, json_response

if TYPE_CHECKING:
    from arkgate.simulator.app import SimulatorApp


def add_routes(router: Router, sim: SimulatorApp) -> None:
    @router.route("GET", "/ping", auth=False)
    async def ping(request: Request) -> Response:
        return PlainTextResponse("pong")

    @router.route("GET", "/api-docs/openapi.json", auth=False)
    async def api_docs(request: Request) -> Response:
        # barkd serves its OpenAPI document without a token; clients read the version from it.
        return json_response({"openapi": "3.1.0", "info": {"title": "barkd REST API", "version": sim.config.compat}})
