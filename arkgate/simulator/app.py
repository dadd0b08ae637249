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

from arkgate.simulator import keys
from arkgate.simulator.auth import check_header, load_or_create_token
from arkgate.simulator.config import Faults, SimConfig
from arkgate.simulator.controls import add_control_routes
from arkgate.simulator.core import vtxo_json
from arkgate.simulator.errors import (
    ApiError,
    BadRequestError,
    InternalError,
    NotFoundError,
    NoWalletError,
    PlainTextError,
    UnauthorizedError,
)
from arkgate.simulator.http import (
    Field,
    Router,
    empty_ok,
    json_response,
    parse_json_body,
    path_u32,
    query_bool,
    query_u64,
)
from arkgate.simulator.notifications import NotificationBus, format_key, parse_rfc3339_ns
from arkgate.simulator.onchain import FEE_RATES
from arkgate.simulator.state import Store
from arkgate.simulator.wallet import Wallet

V1 = "/api/v1"
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


def _humantime_seconds(text: str) -> int:
    units = {"s": 1, "m": 60, "h": 3600}
    total = 0
    for part in text.split():
        total += int(part[:-1]) * units[part[-1]]
    return total


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
        self._add_routes()
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

    # -- routes ------------------------------------------------------------------------------------
    def _add_routes(self) -> None:
        r = self.router
        w = self.wallet
        cfg = self.config

        async def ping(request: Request) -> Response:
            return PlainTextResponse("pong")

        r.add("GET", "/ping", ping, auth=False)

        async def api_docs(request: Request) -> Response:
            # barkd serves its OpenAPI document without a token; clients read the version from it.
            return json_response({"openapi": "3.1.0", "info": {"title": "barkd REST API", "version": cfg.compat}})

        r.add("GET", "/api-docs/openapi.json", api_docs, auth=False)

        def add(method: str, path: str, auth: bool = True):  # type: ignore[no-untyped-def]
            def register(fn):  # type: ignore[no-untyped-def]
                r.add(method, V1 + path, fn, auth=auth)
                return fn

            return register

        # -- wallet ----------------------------------------------------------------------
        @add("GET", "/wallet")
        async def wallet_exists(request: Request) -> Response:
            return json_response({"fingerprint": None if self.faults.hide_fingerprint else w.fingerprint()})

        @add("POST", "/wallet/create")
        async def wallet_create(request: Request) -> Response:
            await parse_json_body(request, [Field("network", (str,), required=True)])
            return json_response({"fingerprint": w.create_wallet()})

        @add("DELETE", "/wallet")
        async def wallet_delete(request: Request) -> Response:
            body = await parse_json_body(
                request, [Field("dangerous", (bool,), required=True), Field("fingerprint", (str,), required=True)]
            )
            return json_response(w.delete_wallet(body["fingerprint"], body["dangerous"]))

        @add("GET", "/wallet/mnemonic")
        async def mnemonic(request: Request) -> Response:
            w.require_wallet()
            raise NotFoundError(["mnemonic"], "Mnemonic is not exposed; start barkd with --expose-mnemonic")

        @add("POST", "/wallet/addresses/next")
        async def address_next(request: Request) -> Response:
            return json_response({"address": w.next_address()})

        @add("GET", "/wallet/addresses/index/{index}")
        async def address_index(request: Request) -> Response:
            return json_response({"address": w.address_at(path_u32(request.path_params["index"], "index"))})

        @add("POST", "/wallet/bip321")
        async def bip321(request: Request) -> Response:
            uppercase = query_bool(request, "uppercase") or False
            body = await parse_json_body(
                request,
                [
                    Field("amount_sat", (int,)),
                    Field("onchain", (bool,)),
                    Field("label", (str,)),
                    Field("message", (str,)),
                ],
            )
            return json_response(self._bip321(body, uppercase))

        @add("GET", "/wallet/balance")
        async def balance(request: Request) -> Response:
            return json_response(w.balance())

        @add("GET", "/wallet/vtxos")
        async def vtxos(request: Request) -> Response:
            everything = query_bool(request, "all") or False
            return json_response([vtxo_json(d) for d in w.list_vtxos(everything)])

        @add("GET", "/wallet/vtxos/{id}")
        async def vtxo_one(request: Request) -> Response:
            w.require_wallet()
            return json_response(vtxo_json(w.vtxo_or_404(request.path_params["id"])))

        @add("GET", "/wallet/vtxos/{id}/encoded")
        async def vtxo_encoded(request: Request) -> Response:
            return json_response(w.encoded_vtxo(request.path_params["id"]))

        @add("POST", "/wallet/import-vtxo")
        async def import_vtxo(request: Request) -> Response:
            body = await parse_json_body(request, [Field("vtxos", (list,), required=True)])
            return json_response([vtxo_json(d) for d in w.import_vtxos(body["vtxos"])])

        @add("GET", "/wallet/ark-info")
        async def ark_info(request: Request) -> Response:
            w.require_wallet()
            if not w.online:
                raise NotFoundError(["ark server"], "Wallet not connected to an Ark server")
            return json_response(self._ark_info())

        @add("GET", "/wallet/connected")
        async def connected(request: Request) -> Response:
            w.require_wallet()
            return json_response({"connected": w.online})

        @add("GET", "/wallet/next-round")
        async def next_round(request: Request) -> Response:
            w.require_wallet()
            if not w.online:
                raise NotFoundError(["ark server"], "Wallet not connected to an Ark server")
            from datetime import UTC, datetime, timedelta

            start = datetime.now(UTC) + timedelta(seconds=_humantime_seconds(cfg.round_interval))
            return json_response({"start_time": start.isoformat()})

        @add("POST", "/wallet/sync")
        async def sync(request: Request) -> Response:
            w.sync()
            return empty_ok()

        @add("POST", "/wallet/sync/mailbox")
        async def sync_mailbox(request: Request) -> Response:
            return json_response(w.sync_mailbox())

        @add("POST", "/wallet/refresh/all")
        async def refresh_all(request: Request) -> Response:
            return json_response(w.refresh(None))

        @add("POST", "/wallet/refresh/vtxos")
        async def refresh_vtxos(request: Request) -> Response:
            body = await parse_json_body(request, [Field("vtxos", (list,), required=True)])
            return json_response(w.refresh(body["vtxos"]))

        @add("POST", "/wallet/refresh/delegated/vtxos")
        async def refresh_delegated(request: Request) -> Response:
            body = await parse_json_body(request, [Field("vtxos", (list,), required=True), Field("height", (int,))])
            return json_response(w.refresh(body["vtxos"], height=body["height"]))

        @add("POST", "/wallet/refresh/counterparty")
        async def refresh_counterparty(request: Request) -> Response:
            return json_response(w.refresh(None, counterparty=True))

        @add("GET", "/wallet/rounds")
        async def rounds(request: Request) -> Response:
            return json_response(w.rounds())

        @add("POST", "/wallet/offboard/all")
        async def offboard_all(request: Request) -> Response:
            body = await parse_json_body(request, [Field("address", (str,))])
            return json_response(w.offboard(body["address"], None))

        @add("POST", "/wallet/offboard/vtxos")
        async def offboard_vtxos(request: Request) -> Response:
            body = await parse_json_body(request, [Field("address", (str,)), Field("vtxos", (list,), required=True)])
            return json_response(w.offboard(body["address"], body["vtxos"]))

        @add("POST", "/wallet/send")
        async def send(request: Request) -> Response:
            body = await parse_json_body(
                request,
                [
                    Field("destination", (str,), required=True),
                    Field("amount_sat", (int,)),
                    Field("comment", (str,)),
                    *self._send_fields(),
                ],
            )
            self._remember_send(body)
            if body["comment"] is not None and body["destination"].lower().startswith("ln"):
                raise BadRequestError("comment is not supported for BOLT11 invoices")
            result = w.send(body["destination"], body["amount_sat"])
            return json_response(result)

        @add("POST", "/wallet/send-onchain")
        async def send_onchain(request: Request) -> Response:
            body = await parse_json_body(
                request, [Field("destination", (str,), required=True), Field("amount_sat", (int,), required=True)]
            )
            return json_response(w.send_onchain(body["destination"], body["amount_sat"]))

        # -- lightning -------------------------------------------------------------------
        @add("POST", "/lightning/receives/invoice")
        async def invoice(request: Request) -> Response:
            body = await parse_json_body(
                request,
                [Field("amount_sat", (int,), required=True), Field("description", (str,)), Field("token", (str,))],
            )
            return json_response({"invoice": w.create_invoice(body["amount_sat"], body["description"])})

        @add("POST", "/lightning/receives/invoice/for-address")
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

        @add("GET", "/lightning/receives")
        async def receives(request: Request) -> Response:
            return json_response(w.pending_receives())

        @add("GET", "/lightning/receives/{identifier}")
        async def receive_get(request: Request) -> Response:
            return json_response(w.receive_status(request.path_params["identifier"]))

        @add("DELETE", "/lightning/receives/{identifier}")
        async def receive_cancel(request: Request) -> Response:
            w.cancel_receive(request.path_params["identifier"])
            return empty_ok()

        @add("POST", "/lightning/pay")
        async def lightning_pay(request: Request) -> Response:
            body = await parse_json_body(
                request,
                [
                    Field("destination", (str,), required=True),
                    Field("amount_sat", (int,)),
                    Field("comment", (str,)),
                    *self._send_fields(),
                ],
            )
            self._remember_send(body)
            if body["comment"] is not None and body["destination"].lower().startswith(("ln", "lno")):
                raise BadRequestError("comment is not supported for BOLT11 invoices or BOLT12 offers")
            result = w.lightning_pay(body["destination"], body["amount_sat"])
            if cfg.legacy:
                result.pop("payment_hash", None)
            return json_response(result)

        @add("GET", "/lightning/sends/{identifier}")
        async def send_status(request: Request) -> Response:
            return json_response(w.send_status(request.path_params["identifier"]))

        # -- history ---------------------------------------------------------------------
        @add("GET", "/history")
        async def history(request: Request) -> Response:
            method_type = request.query_params.get("type")
            value = request.query_params.get("value")
            if (method_type is None) != (value is None):
                raise BadRequestError("`type` and `value` must be supplied together")
            if method_type is None or value is None:
                return json_response(w.history())
            return json_response(w.history_by_method(method_type, self._normalise_method(method_type, value)))

        @add("GET", "/wallet/history")
        async def wallet_history(request: Request) -> Response:
            return json_response(w.history())

        @add("GET", "/wallet/movements")
        async def wallet_movements(request: Request) -> Response:
            return json_response(w.history())

        @add("POST", "/history/{id}/metadata")
        async def metadata(request: Request) -> Response:
            raw_id = request.path_params["id"]
            movement_id = path_u32(raw_id, "id")
            patch = await parse_json_body(request, [], any_json=True)
            w.patch_metadata(movement_id, patch)
            return empty_ok()

        # -- notifications ---------------------------------------------------------------
        @add("GET", "/notifications/wait", auth=False)
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
                self.check_auth(request)
            w.require_wallet()
            found = await self.bus.wait(since_ns, cfg.wait_timeout_s)
            if self.bus.closed:
                raise InternalError("Notification manager stopped")
            w.require_wallet()
            if not found:
                last = format_key(since_ns) if since_ns is not None else None
                return json_response({"notifications": [], "last_pushed_at": last})
            return json_response(
                {"notifications": [event for _, event in found], "last_pushed_at": format_key(found[-1][0])}
            )

        @add("GET", "/notifications/ws/ticket", auth=False)
        async def ticket(request: Request) -> Response:
            if not cfg.no_auth:
                self.check_auth(request)
            return json_response(self.bus.new_ticket())

        @add("GET", "/notifications/ws", auth=False)
        async def ws_over_http(request: Request) -> Response:
            if not self.bus.redeem_ticket(request.query_params.get("ticket")):
                raise UnauthorizedError("Invalid websocket ticket")
            return PlainTextResponse("Connection header did not include 'upgrade'", status_code=400)

        # -- chain and fees --------------------------------------------------------------
        @add("GET", "/bitcoin/tip")
        async def tip(request: Request) -> Response:
            return json_response({"tip_height": w.tip})

        @add("GET", "/fees/onchain")
        async def fees_onchain(request: Request) -> Response:
            w.require_wallet()
            return json_response(FEE_RATES)

        @add("GET", "/fees/board")
        async def fees_board(request: Request) -> Response:
            amount = query_u64(request, "amount_sat", required=True) or 0
            w.require_wallet()
            return json_response(w.estimate(amount, 0, []))

        @add("GET", "/fees/lightning/receive")
        async def fees_ln_receive(request: Request) -> Response:
            amount = query_u64(request, "amount_sat", required=True) or 0
            w.require_wallet()
            return json_response(w.estimate(amount, w.receive_fee(amount), []))

        @add("GET", "/fees/lightning/pay")
        async def fees_ln_pay(request: Request) -> Response:
            amount = query_u64(request, "amount_sat", required=True) or 0
            w.require_wallet()
            fee = w.send_fee(amount)
            return json_response(
                {"gross_amount_sat": amount + fee, "fee_sat": fee, "net_amount_sat": amount, "vtxos_spent": []}
            )

        @add("GET", "/fees/offboard-all")
        async def fees_offboard_all(request: Request) -> Response:
            address = request.query_params.get("address")
            if address is None:
                raise PlainTextError(400, "Failed to deserialize query string: missing field `address`")
            return json_response(w.estimate_offboard(address, None))

        @add("POST", "/fees/offboard")
        async def fees_offboard(request: Request) -> Response:
            body = await parse_json_body(
                request, [Field("address", (str,), required=True), Field("vtxos", (list,), required=True)]
            )
            return json_response(w.estimate_offboard(body["address"], body["vtxos"]))

        @add("GET", "/fees/send-onchain")
        async def fees_send_onchain(request: Request) -> Response:
            amount = query_u64(request, "amount_sat", required=True) or 0
            address = request.query_params.get("address")
            if address is None:
                raise PlainTextError(400, "Failed to deserialize query string: missing field `address`")
            return json_response(w.estimate_send_onchain(address, amount))

        # -- on-chain wallet -------------------------------------------------------------
        @add("GET", "/onchain/balance")
        async def onchain_balance(request: Request) -> Response:
            return json_response(w.onchain_balance())

        @add("POST", "/onchain/addresses/next")
        async def onchain_address(request: Request) -> Response:
            return json_response({"address": w.new_onchain_address()})

        @add("POST", "/onchain/send")
        async def onchain_send(request: Request) -> Response:
            body = await parse_json_body(
                request, [Field("destination", (str,), required=True), Field("amount_sat", (int,), required=True)]
            )
            return json_response(w.onchain_send(body["destination"], body["amount_sat"]))

        @add("POST", "/onchain/drain")
        async def onchain_drain(request: Request) -> Response:
            body = await parse_json_body(request, [Field("destination", (str,), required=True)])
            return json_response(w.onchain_drain(body["destination"]))

        @add("POST", "/onchain/send-many")
        async def onchain_send_many(request: Request) -> Response:
            body = await parse_json_body(
                request, [Field("destinations", (list,), required=True), Field("immediate", (bool,))]
            )
            return json_response(w.onchain_send_many(body["destinations"]))

        @add("GET", "/onchain/utxos")
        async def onchain_utxos(request: Request) -> Response:
            return json_response(w.onchain_utxos())

        @add("GET", "/onchain/transactions")
        async def onchain_transactions(request: Request) -> Response:
            return json_response(w.onchain_transactions())

        @add("POST", "/onchain/sync")
        async def onchain_sync(request: Request) -> Response:
            w.require_wallet()
            return empty_ok()

        # -- boards ----------------------------------------------------------------------
        @add("POST", "/boards/board-amount")
        async def board_amount(request: Request) -> Response:
            body = await parse_json_body(request, [Field("amount_sat", (int,), required=True)])
            return json_response(w.board(body["amount_sat"]))

        @add("POST", "/boards/board-all")
        async def board_all(request: Request) -> Response:
            return json_response(w.board(None))

        @add("GET", "/boards/pending")
        async def boards_pending(request: Request) -> Response:
            return json_response(w.pending_boards())

        # -- exits -----------------------------------------------------------------------
        @add("POST", "/exits/start/all")
        async def exits_start_all(request: Request) -> Response:
            return json_response(w.start_exits(None))

        @add("POST", "/exits/start/vtxos")
        async def exits_start_vtxos(request: Request) -> Response:
            body = await parse_json_body(request, [Field("vtxos", (list,), required=True)])
            return json_response(w.start_exits(body["vtxos"]))

        @add("POST", "/exits/progress")
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

            r.add("GET", f"{V1}/exits/status/{which}", exits_status)

        @add("GET", "/exits/status")
        async def exits_status_legacy(request: Request) -> Response:
            if cfg.legacy:
                return json_response(w.exit_status("all", history=False, transactions=False))
            return Response(status_code=308, headers={"location": f"{V1}/exits/status/all"})

        @add("GET", "/exits/status/vtxo/{vtxo_id}")
        async def exit_status_vtxo(request: Request) -> Response:
            return json_response(w.exit_status_one(request.path_params["vtxo_id"], **status_flags(request)))

        @add("GET", "/exits/status/{vtxo_id}")
        async def exit_status_alias(request: Request) -> Response:
            return json_response(w.exit_status_one(request.path_params["vtxo_id"], **status_flags(request)))

        @add("POST", "/exits/claim/all")
        async def exits_claim_all(request: Request) -> Response:
            body = await parse_json_body(
                request, [Field("destination", (str,), required=True), Field("fee_rate", (int,))]
            )
            return json_response(w.claim_exits(body["destination"], None, body["fee_rate"]))

        @add("POST", "/exits/claim/vtxos")
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

        @add("POST", "/exits/cancel/{vtxo_id}")
        async def exits_cancel(request: Request) -> Response:
            return json_response(w.cancel_exit(request.path_params["vtxo_id"]))

        @add("GET", "/exits/fee")
        async def exits_fee(request: Request) -> Response:
            ids_text = request.query_params.get("vtxo_ids")
            ids = [i for i in ids_text.split(",") if i] if ids_text else None
            rate = query_u64(request, "fee_rate_sat_per_vb")
            destination = request.query_params.get("destination")
            if destination is not None:
                w.validate_bitcoin_address(destination)
            return json_response(w.exit_fee(ids, rate))

        # -- messages --------------------------------------------------------------------
        @add("POST", "/message/sign")
        async def message_sign(request: Request) -> Response:
            body = await parse_json_body(
                request, [Field("message", (str,), required=True), Field("address", (str,), required=True)]
            )
            return json_response(w.sign_message(body["message"], body["address"]))

        @add("POST", "/message/verify")
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

    # -- helpers -------------------------------------------------------------------------------------
    def _normalise_method(self, method_type: str, value: str) -> str:
        """barkd parses then re-serialises the value, so a bad address or invoice is a 400."""
        if method_type == "ark":
            try:
                from arkgate.simulator.addresses import decode_ark_address

                decode_ark_address(value)
            except ValueError as exc:
                raise BadRequestError(f"bad request: invalid payment method: {exc}") from exc
        elif method_type == "invoice":
            from arkgate.simulator.invoices import looks_like_invoice

            if not looks_like_invoice(value):
                raise BadRequestError("bad request: invalid payment method: invalid invoice")
        elif method_type == "bitcoin":
            try:
                self.wallet.validate_bitcoin_address(value)
            except BadRequestError as exc:
                raise BadRequestError(f"bad request: invalid payment method: {exc.message}") from exc
        elif method_type not in ("output-script", "offer", "lightning-address", "lnurl", "custom"):
            raise BadRequestError(f"bad request: invalid payment method: unknown type {method_type}")
        return value

    def _bip321(self, body: dict[str, Any], uppercase: bool) -> dict[str, Any]:
        w = self.wallet
        if uppercase and any(body.get(k) and body[k] != body[k].upper() for k in ("label", "message")):
            raise BadRequestError("bad request: cannot upper-case a URI with case-sensitive label or message")
        ark = w.next_address()
        out: dict[str, Any] = {"ark": ark}
        params = [f"ark={ark}"]
        onchain = w.new_onchain_address() if body.get("onchain") else None
        if body.get("amount_sat") is not None:
            bolt11 = w.create_invoice(body["amount_sat"], body.get("message"))
            out["bolt11"] = bolt11
            params.insert(0, f"amount={body['amount_sat'] / 100_000_000:.8f}".rstrip("0").rstrip("."))
            params.append(f"lightning={bolt11}")
        if onchain is not None:
            out["onchain"] = onchain
        for key in ("label", "message"):
            if body.get(key):
                from urllib.parse import quote

                params.append(f"{key}={quote(body[key])}")
        uri = f"bitcoin:{onchain or ''}?{'&'.join(params)}"
        out["bip321"] = uri.upper() if uppercase else uri
        return out

    def _send_fields(self) -> list[Field]:
        """0.8.0 reads ``retry_for_secs`` on sends; 0.6.0 ignores unknown fields, as serde does."""
        return [Field("retry_for_secs", (int,))] if self.config.v08 else []

    def _remember_send(self, body: dict[str, Any]) -> None:
        self.last_send_request = {
            "destination": body["destination"],
            "amount_sat": body["amount_sat"],
            "retry_for_secs": body.get("retry_for_secs") if self.config.v08 else None,
            "fields": sorted(key for key, value in body.items() if value is not None),
        }

    def _ark_info(self) -> dict[str, Any]:
        cfg = self.config
        info: dict[str, Any] = {
            "network": cfg.chain_network,
            "server_pubkey": keys.server_pubkey().hex(),
            "mailbox_pubkey": keys.mailbox_pubkey().hex(),
            "round_interval": cfg.round_interval,
            "nb_round_nonces": 8,
            "vtxo_exit_delta": cfg.exit_delta,
            "vtxo_expiry_delta": cfg.vtxo_lifetime,
            "htlc_send_expiry_delta": 60,
            "htlc_expiry_delta": 6,
            "max_vtxo_amount": 100_000_000,  # the 0.6.0 schema has no null here
            "required_board_confirmations": cfg.required_board_confirmations,
            "max_user_invoice_cltv_delta": 250,
            "min_board_amount_sat": 1000,
            "offboard_feerate_sat_per_kvb": cfg.offboard_feerate_sat_per_kvb,
            "ln_receive_anti_dos_required": False,
            "fees": {
                "board": {"min_fee_sat": 0, "base_fee_sat": 0, "ppm": 0},
                "offboard": {"base_fee_sat": 0, "fixed_additional_vb": 100, "ppm_expiry_table": []},
                "refresh": {"base_fee_sat": cfg.refresh_base_fee_sat, "ppm_expiry_table": []},
                "lightning_receive": {
                    "base_fee_sat": cfg.lightning_receive_base_fee_sat,
                    "ppm": cfg.lightning_receive_ppm,
                },
                "lightning_send": {
                    "min_fee_sat": 0,
                    "base_fee_sat": cfg.lightning_send_base_fee_sat,
                    "ppm_expiry_table": [],
                },
            },
            "max_vtxo_exit_depth": cfg.max_vtxo_exit_depth,
            "max_offboard_inputs": cfg.max_offboard_inputs,
        }
        if cfg.legacy:
            del info["max_offboard_inputs"]
        if cfg.v08:
            info["vtxo_lifetime"] = cfg.vtxo_lifetime  # renamed; vtxo_expiry_delta kept, same value
            info["tos_link"] = None
        return info


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
