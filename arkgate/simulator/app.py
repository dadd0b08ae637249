"""The simulator's ASGI app: barkd's REST routes, the notification WebSocket and ``/_sim/`` controls."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket

from arkgate.simulator.auth import check_header, load_or_create_token
from arkgate.simulator.config import Faults, SimConfig
from arkgate.simulator.controls import add_control_routes
from arkgate.simulator.errors import ApiError, InternalError, NoWalletError, PlainTextError, UnauthorizedError
from arkgate.simulator.http import V1, Router, json_response
from arkgate.simulator.notifications import NotificationBus
from arkgate.simulator.routes import add_barkd_routes
from arkgate.simulator.state import Store
from arkgate.simulator.wallet import Wallet

WS_PATH = f"{V1}/notifications/ws"
DB_FILE = "simulator.sqlite3"

# Endpoints that did not exist in barkd 0.1.4 (BEHAVIOUR.md section 9): 404 in compat mode.
_ADDED_AFTER_0_1_4 = (
    "/history",
    "/wallet/mnemonic",
    "/notifications/wait",
    "/wallet/bip321",
    "/fees/offboard",
    "/exits/cancel/",
    "/exits/status/all",
    "/exits/status/live",
    "/exits/status/finished",
    "/exits/status/vtxo/",
    "/lightning/receives/invoice/for-address",
    "/wallet/refresh/delegated/vtxos",
    "/lightning/sends/",
    "/exits/fee",
    "/message/",
)


def _request_key(request: Request) -> str:
    """``METHOD path``, plus the query's parameter names (``?type&value``) so filtered reads count apart."""
    names = sorted(set(request.query_params.keys()))
    return f"{request.method} {request.url.path}" + (f"?{'&'.join(names)}" if names else "")


class SimulatorApp:
    """ASGI entry point; one instance per running simulator."""

    def __init__(self, state_dir: Path, config: SimConfig) -> None:
        self.state_dir = state_dir
        self.config = config
        # The last send request's options (retry_for_secs ...), for tests through /_sim/state.
        self.last_send_request: dict[str, Any] = {}
        self.token = load_or_create_token(state_dir)
        self.faults = Faults()
        self.bus = NotificationBus()
        self.request_counts: Counter[str] = Counter()  # /_sim/requests: what a client asked barkd
        self.store = Store(state_dir / DB_FILE)
        self.wallet = Wallet(self.store, config, self.bus, self.faults)
        self.router = Router()
        self.controls = Router()
        add_barkd_routes(self.router, self)
        add_control_routes(self.controls, self)
        self.wallet.startup()

    # -- ASGI --------------------------------------------------------------------------------------
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "websocket":
            await self._websocket(WebSocket(scope, receive, send))
        elif scope["type"] == "http":
            response = await self.dispatch(Request(scope, receive))
            await response(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return

    def shutdown(self) -> None:
        """Wake long-polls and close WebSockets so the server can stop promptly."""
        self.bus.close()

    def restart(self) -> None:
        """What a barkd restart looks like to clients: empty buffer, no tickets, same data."""
        self.bus.reset()
        self.wallet.startup()

    async def dispatch(self, request: Request) -> Response:
        path = request.url.path
        try:
            if path.startswith("/_sim/"):
                route, params, exists = self.controls.match(request.method, path)
                if route is None:
                    return Response(status_code=405) if exists else json_response(f"unknown control {path}", 404)
                request.scope["path_params"] = params
                return await route.handler(request)
            self.request_counts[_request_key(request)] += 1
            if self.faults.latency_ms:
                await asyncio.sleep(self.faults.latency_ms / 1000)
            route, params, exists = self.router.match(request.method, path)
            if route is None or (self.config.legacy and self._added_later(path)):
                if exists and not self.config.legacy:
                    return Response(status_code=405)
                body = (await request.body()).decode("utf-8", "replace")
                word = "round" if self.config.legacy else "found"  # 0.1.4's typo
                return json_response(f"path not {word}: {body}", 404)
            if any(path.startswith(prefix) for prefix in self.faults.fail_routes):
                raise InternalError(f"injected fault on {path}")
            if route.auth and not self.config.no_auth:
                self.check_auth(request)
            request.scope["path_params"] = params
            return await route.handler(request)
        except PlainTextError as exc:
            return PlainTextResponse(exc.text, status_code=exc.status)
        except NoWalletError as exc:
            return json_response(exc.body(), 500 if self.config.legacy else 422)
        except ApiError as exc:
            return json_response(exc.body(), exc.status)

    def _added_later(self, path: str) -> bool:
        tail = path[len(V1) :]
        return any(tail == p or (p.endswith("/") and tail.startswith(p)) for p in _ADDED_AFTER_0_1_4)

    def check_auth(self, request: Request) -> None:
        reason = check_header(request.headers.getlist("authorization"), self.token)
        if reason is not None:
            raise UnauthorizedError(reason)

    # -- WebSocket -----------------------------------------------------------------------------------
    async def _websocket(self, ws: WebSocket) -> None:
        if ws.url.path != WS_PATH:
            await ws.close(code=1008)
            return
        if not self.bus.redeem_ticket(ws.query_params.get("ticket")):
            denial = json_response({"message": "Invalid websocket ticket"}, 401)
            try:
                await ws.send_denial_response(denial)
            except RuntimeError:
                await ws.close(code=1008)
            return
        await ws.accept()
        if not self.wallet.has_wallet:
            await ws.close()
            return
        sub = self.bus.subscribe()
        receiving = asyncio.ensure_future(ws.receive())
        try:
            while True:
                waking = asyncio.ensure_future(sub.wakeup.wait())
                done, _ = await asyncio.wait({receiving, waking}, return_when=asyncio.FIRST_COMPLETED)
                if receiving in done:
                    if receiving.result()["type"] == "websocket.disconnect":
                        waking.cancel()
                        return
                    receiving = asyncio.ensure_future(ws.receive())  # client messages are ignored
                    if waking not in done:
                        waking.cancel()
                        continue
                if self.bus.closed or sub not in self.bus.subscribers:
                    await ws.close()
                    return
                if self.faults.ws_paused:
                    # A slow consumer: events pile up in its bounded queue until it lags.
                    sub.wakeup.clear()
                    continue
                for frame in sub.take():
                    await ws.send_text(json.dumps(frame))
        finally:
            self.bus.unsubscribe(sub)
            receiving.cancel()


def create_simulator_app(
    state_dir: Path,
    network: str = "signet",
    *,
    compat: str = "0.8.0",
    no_auth: bool = False,
    wait_timeout_s: float = 30.0,
    invoice_expiry_s: int = 3600,
    vtxo_lifetime: int = 144,
    exit_delta: int = 12,
    **options: Any,
) -> SimulatorApp:
    """Build the simulator ASGI app; state lives in ``<state_dir>/simulator.sqlite3``.

    Extra ``options`` are :class:`SimConfig` fields (fees, start height, round interval, ...).
    """
    config = SimConfig(
        network=network,
        compat=compat,
        no_auth=no_auth,
        wait_timeout_s=wait_timeout_s,
        invoice_expiry_s=invoice_expiry_s,
        vtxo_lifetime=vtxo_lifetime,
        exit_delta=exit_delta,
        **options,
    )
    return SimulatorApp(Path(state_dir), config)
