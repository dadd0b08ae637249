"""``/wallet``: the wallet itself, its addresses and VTXOs, the Ark server it talks to, sync, refresh and rounds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response

from arkgate.simulator import keys
from arkgate.simulator.config import SimConfig
from arkgate.simulator.core import vtxo_json
from arkgate.simulator.errors import BadRequestError, NotFoundError
from arkgate.simulator.http import V1, Field, Router, empty_ok, json_response, parse_json_body, path_u32, query_bool
from arkgate.simulator.wallet import Wallet

if TYPE_CHECKING:
    from arkgate.simulator.app import SimulatorApp


def humantime_seconds(text: str) -> int:
    """Seconds in a humantime duration such as ``1m 30s`` (barkd's ``round_interval``)."""
    units = {"s": 1, "m": 60, "h": 3600}
    total = 0
    for part in text.split():
        total += int(part[:-1]) * units[part[-1]]
    return total


def ark_info_body(cfg: SimConfig) -> dict[str, Any]:
    """``GET /wallet/ark-info`` in the shape of the configured barkd version."""
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


def bip321_reply(w: Wallet, body: dict[str, Any], uppercase: bool) -> dict[str, Any]:
    """``POST /wallet/bip321``: a fresh Ark address, and an invoice and on-chain address when asked."""
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
            params.append(f"{key}={quote(body[key])}")
    uri = f"bitcoin:{onchain or ''}?{'&'.join(params)}"
    out["bip321"] = uri.upper() if uppercase else uri
    return out


def add_routes(router: Router, sim: SimulatorApp) -> None:
    w = sim.wallet
    cfg = sim.config

    @router.route("GET", V1 + "/wallet")
    async def wallet_exists(request: Request) -> Response:
        return json_response({"fingerprint": None if sim.faults.hide_fingerprint else w.fingerprint()})

    @router.route("POST", V1 + "/wallet/create")
    async def wallet_create(request: Request) -> Response:
        await parse_json_body(request, [Field("network", (str,), required=True)])
        return json_response({"fingerprint": w.create_wallet()})

    @router.route("DELETE", V1 + "/wallet")
    async def wallet_delete(request: Request) -> Response:
        body = await parse_json_body(
            request, [Field("dangerous", (bool,), required=True), Field("fingerprint", (str,), required=True)]
        )
        return json_response(w.delete_wallet(body["fingerprint"], body["dangerous"]))

    @router.route("GET", V1 + "/wallet/mnemonic")
    async def mnemonic(request: Request) -> Response:
        w.require_wallet()
        raise NotFoundError(["mnemonic"], "Mnemonic is not exposed; start barkd with --expose-mnemonic")

    @router.route("POST", V1 + "/wallet/addresses/next")
    async def address_next(request: Request) -> Response:
        return json_response({"address": w.next_address()})

    @router.route("GET", V1 + "/wallet/addresses/index/{index}")
    async def address_index(request: Request) -> Response:
        return json_response({"address": w.address_at(path_u32(request.path_params["index"], "index"))})

    @router.route("POST", V1 + "/wallet/bip321")
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
        return json_response(bip321_reply(w, body, uppercase))

    @router.route("GET", V1 + "/wallet/balance")
    async def balance(request: Request) -> Response:
        return json_response(w.balance())

    @router.route("GET", V1 + "/wallet/vtxos")
    async def vtxos(request: Request) -> Response:
        everything = query_bool(request, "all") or False
        return json_response([vtxo_json(d) for d in w.list_vtxos(everything)])

    @router.route("GET", V1 + "/wallet/vtxos/{id}")
    async def vtxo_one(request: Request) -> Response:
        w.require_wallet()
        return json_response(vtxo_json(w.vtxo_or_404(request.path_params["id"])))

    @router.route("GET", V1 + "/wallet/vtxos/{id}/encoded")
    async def vtxo_encoded(request: Request) -> Response:
        return json_response(w.encoded_vtxo(request.path_params["id"]))

    @router.route("POST", V1 + "/wallet/import-vtxo")
    async def import_vtxo(request: Request) -> Response:
        body = await parse_json_body(request, [Field("vtxos", (list,), required=True)])
        return json_response([vtxo_json(d) for d in w.import_vtxos(body["vtxos"])])

    @router.route("GET", V1 + "/wallet/ark-info")
    async def ark_info(request: Request) -> Response:
        w.require_wallet()
        if not w.online:
            raise NotFoundError(["ark server"], "Wallet not connected to an Ark server")
        return json_response(ark_info_body(cfg))

    @router.route("GET", V1 + "/wallet/connected")
    async def connected(request: Request) -> Response:
        w.require_wallet()
        return json_response({"connected": w.online})

    @router.route("GET", V1 + "/wallet/next-round")
    async def next_round(request: Request) -> Response:
        w.require_wallet()
        if not w.online:
            raise NotFoundError(["ark server"], "Wallet not connected to an Ark server")
        start = datetime.now(UTC) + timedelta(seconds=humantime_seconds(cfg.round_interval))
        return json_response({"start_time": start.isoformat()})

    @router.route("POST", V1 + "/wallet/sync")
    async def sync(request: Request) -> Response:
        w.sync()
        return empty_ok()

    @router.route("POST", V1 + "/wallet/sync/mailbox")
    async def sync_mailbox(request: Request) -> Response:
        return json_response(w.sync_mailbox())

    @router.route("POST", V1 + "/wallet/refresh/all")
    async def refresh_all(request: Request) -> Response:
        return json_response(w.refresh(None))

    @router.route("POST", V1 + "/wallet/refresh/vtxos")
    async def refresh_vtxos(request: Request) -> Response:
        body = await parse_json_body(request, [Field("vtxos", (list,), required=True)])
        return json_response(w.refresh(body["vtxos"]))

    @router.route("POST", V1 + "/wallet/refresh/delegated/vtxos")
    async def refresh_delegated(request: Request) -> Response:
        body = await parse_json_body(request, [Field("vtxos", (list,), required=True), Field("height", (int,))])
        return json_response(w.refresh(body["vtxos"], height=body["height"]))

    @router.route("POST", V1 + "/wallet/refresh/counterparty")
    async def refresh_counterparty(request: Request) -> Response:
        return json_response(w.refresh(None, counterparty=True))

    @router.route("GET", V1 + "/wallet/rounds")
    async def rounds(request: Request) -> Response:
        return json_response(w.rounds())
