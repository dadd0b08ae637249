"""``/_sim/`` control routes: the outside world (payers, miners, the Ark server) and fault switches.

They live outside barkd's namespace and need no token.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response

from arkgate.simulator.errors import ApiError
from arkgate.simulator.http import Router, json_response
from arkgate.simulator.lightning import ControlError

if TYPE_CHECKING:
    from arkgate.simulator.app import SimulatorApp

# A control answers a JSON object; the wrapper turns it (or a ControlError) into the response.
Control = Callable[[Request], Awaitable[dict[str, Any]]]

_FAULT_FIELDS: dict[str, type | tuple[type, ...]] = {
    "latency_ms": int,
    "fail_routes": list,
    "hold_receives": (str, type(None)),
    "mailbox_down": bool,
    "duplicate_arkoor": int,
    "refuse_near_expiry": bool,
    "lightning_send_fail": bool,
    "ws_paused": bool,
    "fail_rounds": (str, type(None)),
    "drop_notifications": int,
    "duplicate_notifications": int,
    "hide_fingerprint": bool,
}


async def _body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except ValueError as exc:
        raise ControlError(f"invalid JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise ControlError("expected a JSON object")
    return body


def _int(body: dict[str, Any], key: str, default: int | None = None) -> int:
    value = body.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool):
        raise ControlError(f"`{key}` must be an integer")
    return value


def add_control_routes(router: Router, sim: SimulatorApp) -> None:
    """Register every control on ``router``."""
    wallet = sim.wallet

    def control(method: str, name: str) -> Callable[[Control], Control]:
        def register(fn: Control) -> Control:
            async def handler(request: Request) -> Response:
                try:
                    return json_response(await fn(request))
                except ControlError as exc:
                    return json_response({"error": str(exc)}, 400)
                except ApiError as exc:
                    return json_response({"error": exc.message}, 400)

            router.add(method, f"/_sim/{name}", handler, auth=False)
            return fn

        return register

    @control("POST", "pay-invoice")
    async def pay_invoice(request: Request) -> dict[str, Any]:
        body = await _body(request)
        if not isinstance(body.get("invoice"), str):
            raise ControlError("`invoice` is required")
        return wallet.pay_invoice(body["invoice"])

    @control("POST", "send-ark")
    async def send_ark(request: Request) -> dict[str, Any]:
        body = await _body(request)
        if not isinstance(body.get("address"), str):
            raise ControlError("`address` is required")
        expiry = body.get("expiry_height")
        if expiry is None and body.get("expires_in") is not None:
            expiry = wallet.tip + _int(body, "expires_in")
        return wallet.send_ark(
            body["address"],
            _int(body, "amount_sat"),
            vtxos=_int(body, "vtxos", 1),
            expiry_height=expiry,
            exit_depth=_int(body, "exit_depth", 2),
        )

    @control("POST", "payee/invoice")
    async def payee_invoice(request: Request) -> dict[str, Any]:
        """An outside node's invoice for ``amount_sat`` (any amount without it) that our wallet can pay."""
        body = await _body(request)
        amount = None if body.get("amount_sat") is None else _int(body, "amount_sat")
        if amount is not None and amount < 1:
            raise ControlError("`amount_sat` must be positive")
        return wallet.payee_invoice(amount, str(body.get("description") or ""))

    @control("POST", "payee/offer")
    async def payee_offer(request: Request) -> dict[str, Any]:
        """An outside node's BOLT12 offer (for ``amount_sat``, or any amount without it)."""
        body = await _body(request)
        amount = None if body.get("amount_sat") is None else _int(body, "amount_sat")
        return wallet.payee_offer(amount)

    @control("POST", "payee/address")
    async def payee_address(request: Request) -> dict[str, Any]:
        """An outside wallet's Ark address on our Ark server."""
        return wallet.payee_address()

    @control("POST", "payee/received")
    async def payee_received(request: Request) -> dict[str, Any]:
        """What reached an outside destination: ``{destination, received_sat, payments}``."""
        body = await _body(request)
        if not isinstance(body.get("destination"), str):
            raise ControlError("`destination` is required")
        return wallet.payee_received(body["destination"])

    @control("POST", "mine")
    async def mine(request: Request) -> dict[str, Any]:
        blocks = _int(await _body(request), "blocks", 1)
        if blocks < 1 or blocks > 10_000:
            raise ControlError("`blocks` must be between 1 and 10000")
        return wallet.mine(blocks)

    @control("POST", "recover")
    async def recover(request: Request) -> dict[str, Any]:
        body = await _body(request)
        return wallet.recover(_int(body, "gap_limit", sim.config.gap_limit))

    @control("POST", "round")
    async def run_round(request: Request) -> dict[str, Any]:
        return wallet.run_round()

    @control("POST", "server")
    async def server(request: Request) -> dict[str, Any]:
        body = await _body(request)
        if not isinstance(body.get("online"), bool):
            raise ControlError("`online` must be a boolean")
        return wallet.set_online(body["online"])

    @control("POST", "advance-time")
    async def advance_time(request: Request) -> dict[str, Any]:
        body = await _body(request)
        seconds = body.get("seconds")
        if not isinstance(seconds, int | float) or isinstance(seconds, bool):
            raise ControlError("`seconds` must be a number")
        return wallet.advance_time(float(seconds))

    @control("POST", "fund-onchain")
    async def fund_onchain(request: Request) -> dict[str, Any]:
        return wallet.fund_onchain(_int(await _body(request), "amount_sat"))

    @control("POST", "faults")
    async def faults(request: Request) -> dict[str, Any]:
        body = await _body(request)
        for key, value in body.items():
            expected = _FAULT_FIELDS.get(key)
            if expected is None:
                raise ControlError(f"unknown fault `{key}`")
            if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
                raise ControlError(f"fault `{key}` has the wrong type")
        if body.get("fail_rounds") not in (None, "failed", "canceled"):
            raise ControlError("`fail_rounds` must be null, 'failed' or 'canceled'")
        if body.get("hold_receives") not in (None, "htlcs-ready", "preimage-revealed"):
            raise ControlError("`hold_receives` must be null, 'htlcs-ready' or 'preimage-revealed'")
        state = sim.faults
        for key, value in body.items():
            if key == "drop_notifications":
                sim.bus.drop_next = value
            elif key == "duplicate_notifications":
                sim.bus.duplicate_next = value
            elif key == "fail_routes":
                state.fail_routes = tuple(str(p) for p in value)
            else:
                setattr(state, key, value)
        if "ws_paused" in body:
            for sub in sim.bus.subscribers:
                sub.wakeup.set()  # let paused consumers catch up
        result = state.as_dict()
        result["drop_notifications"] = sim.bus.drop_next
        result["duplicate_notifications"] = sim.bus.duplicate_next
        return result

    @control("GET", "state")
    async def state(request: Request) -> dict[str, Any]:
        summary = wallet.state_summary()
        summary["notifications_buffered"] = len(sim.bus.since(None))
        summary["ws_subscribers"] = len(sim.bus.subscribers)
        summary["last_send_request"] = sim.last_send_request
        return summary

    @control("GET", "requests")
    async def requests(request: Request) -> dict[str, Any]:
        """barkd API requests served so far, per ``METHOD path`` (``?type&value`` when filtered)."""
        return {"counts": dict(sim.request_counts), "total": sum(sim.request_counts.values())}

    @control("POST", "requests/reset")
    async def reset_requests(request: Request) -> dict[str, Any]:
        sim.request_counts.clear()
        return {"counts": {}, "total": 0}

    @control("POST", "drop-websockets")
    async def drop_websockets(request: Request) -> dict[str, Any]:
        """Close every notification WebSocket now (clients must reconnect), keeping the event buffer."""
        return {"dropped": sim.bus.drop_subscribers()}

    @control("POST", "seed-history")
    async def seed_history(request: Request) -> dict[str, Any]:
        """Add ``count`` old, finished outgoing movements at once (no notifications): a long history."""
        count = _int(await _body(request), "count")
        if count < 1 or count > 100_000:
            raise ControlError("`count` must be between 1 and 100000")
        return wallet.seed_history(count)

    @control("POST", "restart")
    async def restart(request: Request) -> dict[str, Any]:
        sim.restart()
        return {"restarted": True}
