"""``/notifications``: the long-poll, WebSocket tickets, and the WebSocket path asked over plain HTTP."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from arkgate.simulator.errors import InternalError, PlainTextError, UnauthorizedError
from arkgate.simulator.http import V1, Router, json_response
from arkgate.simulator.notifications import format_key, parse_rfc3339_ns

if TYPE_CHECKING:
    from arkgate.simulator.app import SimulatorApp


def add_routes(router: Router, sim: SimulatorApp) -> None:
    w = sim.wallet
    cfg = sim.config

    @router.route("GET", V1 + "/notifications/wait", auth=False)
    async def wait(request: Request) -> Response:
        since_text = request.query_params.get("since")
        since_ns: int | None = None
        if since_text is not None:
            try:
                since_ns = parse_rfc3339_ns(since_text)
            except ValueError as exc:
                raise PlainTextError(400, f"Failed to deserialize query string: since: {exc}") from exc
        # barkd checks the token inside this handler, after the query is parsed.
        if not cfg.no_auth:
            sim.check_auth(request)
        w.require_wallet()
        found = await sim.bus.wait(since_ns, cfg.wait_timeout_s)
        if sim.bus.closed:
            raise InternalError("Notification manager stopped")
        w.require_wallet()
        if not found:
            last = format_key(since_ns) if since_ns is not None else None
            return json_response({"notifications": [], "last_pushed_at": last})
        return json_response(
            {"notifications": [event for _, event in found], "last_pushed_at": format_key(found[-1][0])}
        )

    @router.route("GET", V1 + "/notifications/ws/ticket", auth=False)
    async def ticket(request: Request) -> Response:
        if not cfg.no_auth:
            sim.check_auth(request)
        return json_response(sim.bus.new_ticket())

    @router.route("GET", V1 + "/notifications/ws", auth=False)
    async def ws_over_http(request: Request) -> Response:
        if not sim.bus.redeem_ticket(request.query_params.get("ticket")):
            raise UnauthorizedError("Invalid websocket ticket")
        return PlainTextResponse("Connection header did not include 'upgrade'", status_code=400)
