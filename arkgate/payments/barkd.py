"""The barkd adapter: barkd's REST API in arkgate's terms.

barkd's field names (``amount_sat``) stop here; callers get ``*_sats``. Responses are
read leniently (missing == null, unknown enum strings kept) because barkd 0.1.x, 0.6.x
and 0.8.x differ (BEHAVIOUR.md section 9). Errors are mapped on status codes; the only
message matched is the documented "no pending lightning receive found" 500.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import httpx
from bolt11 import decode as decode_bolt11

from arkgate.errors import ArkgateError, WalletUnavailableError

RECEIVE_GONE = "no pending lightning receive found"


class BarkdError(ArkgateError):
    """barkd answered, but with an error."""

    status = 502
    code = "barkd_error"

    def __init__(self, message: str, *, http_status: int, body: Any = None) -> None:
        super().__init__(message)
        self.http_status = http_status
        self.body = body


def _object(value: Any) -> dict[str, Any]:
    """A JSON object barkd may leave out or null: empty when it is not an object."""
    return value if isinstance(value, dict) else {}


def _sats(body: dict[str, Any], key: str) -> int:
    """barkd's ``*_sat`` field as int sats (missing or null: 0)."""
    return int(body.get(key) or 0)


@dataclass(frozen=True, kw_only=True)
class Balance:
    """barkd's off-chain wallet balance (``GET /wallet/balance``), in sats.

    ``raw`` is barkd's object untouched, for the operator's overview, which shows it as barkd sent it.
    """

    spendable_sats: int
    needs_refresh_sats: int  # 0.8+: expired or too-deep VTXOs, still ours
    pending_in_round_sats: int
    pending_board_sats: int
    pending_exit_sats: int
    pending_arkoor_send_sats: int
    pending_offboard_sats: int
    pending_lightning_send_sats: int
    claimable_lightning_receive_sats: int
    is_v08: bool  # 0.8.0 made needs_refresh_sat a required field; earlier daemons never send it
    # barkd leaves pending_exit_sat out while its exit manager is busy: ``assets_sats`` is then a floor.
    is_pending_exit_known: bool
    raw: dict[str, Any] = field(repr=False)

    @property
    def assets_sats(self) -> int:
        """The operator's money in the Ark wallet (barkd 0.8 moves expired and too-deep VTXOs out of
        spendable into needs_refresh: still ours)."""
        return (
            self.spendable_sats
            + self.needs_refresh_sats
            + self.pending_in_round_sats
            + self.pending_board_sats
            + self.pending_exit_sats
        )


def parse_balance(body: dict[str, Any]) -> Balance:
    return Balance(
        spendable_sats=_sats(body, "spendable_sat"),
        needs_refresh_sats=_sats(body, "needs_refresh_sat"),
        pending_in_round_sats=_sats(body, "pending_in_round_sat"),
        pending_board_sats=_sats(body, "pending_board_sat"),
        pending_exit_sats=_sats(body, "pending_exit_sat"),
        pending_arkoor_send_sats=_sats(body, "pending_arkoor_send_sat"),
        pending_offboard_sats=_sats(body, "pending_offboard_sat"),
        pending_lightning_send_sats=_sats(body, "pending_lightning_send_sat"),
        claimable_lightning_receive_sats=_sats(body, "claimable_lightning_receive_sat"),
        is_v08="needs_refresh_sat" in body,
        is_pending_exit_known="pending_exit_sat" in body,
        raw=body,
    )


@dataclass(frozen=True, kw_only=True)
class OnchainBalance:
    """barkd's on-chain wallet balance; ``raw`` has barkd's keys renamed ``*_sats``."""

    confirmed_sats: int
    trusted_pending_sats: int
    raw: dict[str, Any] = field(repr=False)


VtxoState = Literal["spendable", "locked", "spent", "exited"] | str  # unknown states are kept


@dataclass(frozen=True, kw_only=True)
class Vtxo:
    """One VTXO of the wallet; ``raw`` has barkd's keys renamed ``*_sats``."""

    vtxo_id: str
    amount_sats: int
    state: VtxoState | None  # barkd's ``state.type``
    policy_type: str | None
    expiry_height: int | None
    exit_depth: int | None
    raw: dict[str, Any] = field(repr=False)

    @property
    def is_live(self) -> bool:
        """Spendable or locked in a round: it expires at ``expiry_height`` unless refreshed."""
        return self.state in ("spendable", "locked")


def parse_vtxo(item: dict[str, Any]) -> Vtxo:
    """A VTXO from ``vtxo_list``'s form (keys already in ``*_sats``)."""
    state = item.get("state")
    expiry = item.get("expiry_height")
    depth = item.get("exit_depth")
    policy = item.get("policy_type")
    return Vtxo(
        vtxo_id=str(item.get("id") or ""),
        amount_sats=int(item.get("amount_sats") or 0),
        state=state.get("type") if isinstance(state, dict) else None,
        policy_type=policy if isinstance(policy, str) else None,
        expiry_height=expiry if isinstance(expiry, int) else None,
        exit_depth=depth if isinstance(depth, int) else None,
        raw=item,
    )


@dataclass(frozen=True, kw_only=True)
class FeeEstimate:
    """A fee quote from ``/api/v1/fees/*``; the fee comes on top of the amount (BEHAVIOUR.md 7)."""

    fee_sats: int
    gross_amount_sats: int | None  # amount + fee, where barkd says
    net_amount_sats: int | None
    raw: dict[str, Any] = field(repr=False)


def parse_fee(body: dict[str, Any]) -> FeeEstimate:
    """A fee quote from its ``*_sats`` form."""
    gross = body.get("gross_amount_sats")
    net = body.get("net_amount_sats")
    return FeeEstimate(
        fee_sats=int(body.get("fee_sats") or 0),
        gross_amount_sats=int(gross) if gross is not None else None,
        net_amount_sats=int(net) if net is not None else None,
        raw=body,
    )


@dataclass(frozen=True, kw_only=True)
class ExitStatus:
    """One unilateral exit as barkd reports it; ``raw`` has barkd's keys renamed ``*_sats``."""

    vtxo_id: str
    state: str | None  # barkd's ``state.type`` (start, processing, awaiting-delta, claimable, ...)
    detail: dict[str, Any] | None  # barkd's whole ``state`` object (heights, txids)
    history: list[dict[str, Any]]  # earlier states, oldest first (asked for with ``history=True``)
    raw: dict[str, Any] = field(repr=False)

    @property
    def claimable_height(self) -> int | None:
        height = (self.detail or {}).get("claimable_height")
        return height if isinstance(height, int) else None


def parse_exit(item: dict[str, Any]) -> ExitStatus:
    state = item.get("state")
    detail = state if isinstance(state, dict) else None
    kind = (detail or {}).get("type")
    return ExitStatus(
        vtxo_id=str(item.get("vtxo_id") or ""),
        state=str(kind) if kind is not None else None,
        detail=detail,
        history=[h for h in item.get("history") or [] if isinstance(h, dict)],
        raw=item,
    )


@dataclass(frozen=True, kw_only=True)
class RoundInfo:
    """A round participation (PendingRoundInfo); ``raw`` has barkd's keys renamed ``*_sats``."""

    round_id: str | None
    status: str | None  # ``status.status`` (every version)
    state: str | None  # 0.8's ``state``
    error: Any  # ``status.error``, as barkd gives it
    inputs: list[str]  # the VTXO ids it spends
    output_sats: int
    scheduled_height: int | None  # 0.8 delegated refreshes wait for this block
    raw: dict[str, Any] = field(repr=False)

    @property
    def outcome(self) -> str | None:
        """``status``, or 0.8's ``state`` when that says failed or canceled."""
        if self.state in ("failed", "canceled"):
            return self.state
        return self.status


def parse_round(body: dict[str, Any]) -> RoundInfo:
    status = _object(body.get("status"))
    participation = _object(body.get("participation"))
    round_id, state, height = body.get("id"), body.get("state"), body.get("scheduled_height")
    return RoundInfo(
        round_id=None if round_id is None else str(round_id),
        status=None if status.get("status") is None else str(status["status"]),
        state=None if state is None else str(state),
        error=status.get("error"),
        inputs=[str(i) for i in participation.get("inputs") or []],
        output_sats=sum(int(o.get("amount_sats") or 0) for o in participation.get("outputs") or []),
        scheduled_height=height if isinstance(height, int) else None,
        raw=body,
    )


@dataclass(frozen=True, kw_only=True)
class Notification:
    """One event of barkd's notification stream (WebSocket frame or long-poll item)."""

    type: str | None  # movement-created, movement-updated, channel-lagging, ... (unknown ones kept)
    movement: Movement | None  # the movement a movement-* event carries


def parse_notification(body: Any) -> Notification:
    if not isinstance(body, dict):
        return Notification(type=None, movement=None)
    kind, movement = body.get("type"), body.get("movement")
    return Notification(
        type=kind if isinstance(kind, str) else None,
        movement=parse_movement(movement) if isinstance(movement, dict) else None,
    )


@dataclass(frozen=True, kw_only=True)
class ExitFee:
    """barkd's exit fee estimate (after 0.6.0): broadcast fees are paid up front from confirmed
    on-chain funds, the claim fee later out of the exited amount."""

    exit_broadcast_fee_sats: int
    total_fee_sats: int | None
    fundable: bool | None  # None when barkd does not say
    raw: dict[str, Any] = field(repr=False)


def parse_exit_fee(body: dict[str, Any]) -> ExitFee:
    total, fundable = body.get("total_fee_sats"), body.get("fundable")
    return ExitFee(
        exit_broadcast_fee_sats=int(body.get("exit_broadcast_fee_sats") or 0),
        total_fee_sats=int(total) if total is not None else None,
        fundable=bool(fundable) if fundable is not None else None,
        raw=body,
    )


@dataclass(frozen=True, kw_only=True)
class ExitProgress:
    """One progress step of every exit."""

    is_done: bool | None
    claimable_height: int | None
    errors: list[dict[str, Any]]  # barkd's entries (``vtxo_id``, ``error``) of exits that cannot progress


@dataclass(frozen=True, kw_only=True)
class ArkInfo:
    """The Ark server's parameters as barkd relays them (``GET /wallet/ark-info``)."""

    network: str | None
    vtxo_lifetime: int | None  # blocks (``vtxo_expiry_delta`` before 0.5)
    round_interval: Any  # as barkd writes it
    max_vtxo_exit_depth: int | None
    refresh_fees: dict[str, Any]  # ``fees.refresh``: base_fee_sat and ppm_expiry_table


def parse_ark_info(body: dict[str, Any]) -> ArkInfo:
    network, depth = body.get("network"), body.get("max_vtxo_exit_depth")
    lifetime = body.get("vtxo_lifetime", body.get("vtxo_expiry_delta"))
    refresh = _object(_object(body.get("fees")).get("refresh"))
    return ArkInfo(
        network=network if isinstance(network, str) else None,
        vtxo_lifetime=lifetime if isinstance(lifetime, int) else None,
        round_interval=body.get("round_interval"),
        max_vtxo_exit_depth=depth if isinstance(depth, int) else None,
        refresh_fees=refresh,
    )


@dataclass(frozen=True, kw_only=True)
class PaymentSent:
    """barkd's reply to a send (Lightning or arkoor); ``raw`` has barkd's keys renamed ``*_sats``."""

    payment_hash: str | None  # Lightning sends only
    raw: dict[str, Any] = field(repr=False)


def _sent(body: Any) -> PaymentSent:
    raw = dict(BarkdClient._in_sats(body or {}))
    payment_hash = raw.get("payment_hash")
    return PaymentSent(payment_hash=payment_hash if isinstance(payment_hash, str) else None, raw=raw)


@dataclass(frozen=True, kw_only=True)
class Invoice:
    bolt11: str
    payment_hash: str
    amount_sats: int
    expires_at: datetime


@dataclass(frozen=True, kw_only=True)
class ReceiveStatus:
    payment_hash: str
    state: str | None  # None on barkd 0.1.x-0.3.x (no state field)
    amount_sats: int
    is_paid: bool
    is_gone: bool = False


@dataclass(frozen=True, kw_only=True)
class Destination:
    type: str
    value: str
    amount_sats: int


@dataclass(frozen=True, kw_only=True)
class Movement:
    id: int
    status: str
    subsystem: str
    kind: str
    metadata: dict[str, Any]
    effective_sats: int
    intended_sats: int
    offchain_fee_sats: int
    received_on: list[Destination]
    sent_to: list[Destination]
    output_vtxos: list[str]
    raw: dict[str, Any] = field(repr=False)

    @property
    def is_ark_receive(self) -> bool:
        return self.subsystem == "bark.arkoor" and self.kind == "receive"

    @property
    def is_lightning_receive(self) -> bool:
        return self.subsystem == "bark.lightning_receive"

    @property
    def payment_hash(self) -> str | None:
        value = self.metadata.get("payment_hash")
        return value if isinstance(value, str) else None


def parse_movement(data: dict[str, Any]) -> Movement:
    subsystem = data.get("subsystem") or {}
    return Movement(
        id=int(data["id"]),
        status=str(data.get("status") or ""),
        subsystem=str(subsystem.get("name") or ""),
        kind=str(subsystem.get("kind") or ""),
        metadata=data.get("metadata") or {},
        effective_sats=int(data.get("effective_balance_sat") or 0),
        intended_sats=int(data.get("intended_balance_sat") or 0),
        offchain_fee_sats=int(data.get("offchain_fee_sat") or 0),
        received_on=_destinations(data.get("received_on")),
        sent_to=_destinations(data.get("sent_to")),
        output_vtxos=list(data.get("output_vtxos") or []),
        raw=data,
    )


def _destinations(items: Any) -> list[Destination]:
    found = []
    for item in items or []:
        destination = item.get("destination") or {}
        found.append(
            Destination(
                type=str(destination.get("type") or ""),
                value=str(destination.get("value") or ""),
                amount_sats=int(item.get("amount_sat") or 0),
            )
        )
    return found


def invoice_details(bolt11: str) -> tuple[str, int, datetime]:
    """(payment hash, amount in sats, expiry) read from a BOLT11 string."""
    decoded = decode_bolt11(bolt11)
    amount_msat = int(decoded.amount_msat or 0)
    expiry = int(decoded.expiry or 3600)
    expires_at = datetime.fromtimestamp(int(decoded.date) + expiry, UTC)
    return str(decoded.payment_hash), amount_msat // 1000, expires_at


class BarkdClient:
    """Typed calls to one barkd daemon."""

    def __init__(self, base_url: str, token: str | None, *, timeout_s: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.AsyncClient(base_url=self.base_url, headers=headers, timeout=timeout_s)
        self._features: dict[str, bool] = {}

    def __repr__(self) -> str:  # never show the token
        return f"BarkdClient({self.base_url!r})"

    async def aclose(self) -> None:
        await self._http.aclose()

    # --- transport ------------------------------------------------------------------
    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        timeout_s: float | None = None,
    ) -> Any:
        """Call barkd; returns parsed JSON, or None for barkd's empty-body 200s."""
        kwargs: dict[str, Any] = {"params": params}
        if json is not None:
            kwargs["json"] = json
        if timeout_s is not None:
            kwargs["timeout"] = timeout_s
        try:
            response = await self._http.request(method, path, **kwargs)
        except (httpx.TransportError, OSError) as exc:
            raise WalletUnavailableError("the payment backend (barkd) is unreachable") from exc
        body: Any = None
        if response.content:
            try:
                body = response.json()
            except ValueError:
                body = response.text
        if response.is_success:
            return body
        message = body.get("message") if isinstance(body, dict) else body
        raise BarkdError(
            f"barkd {method} {path}: {response.status_code} {message}",
            http_status=response.status_code,
            body=body,
        )

    # --- liveness and wallet ---------------------------------------------------------------
    async def ping(self) -> bool:
        try:
            response = await self._http.get("/ping", timeout=3)
        except (httpx.TransportError, OSError):
            return False
        return response.status_code == 200

    async def version(self) -> str | None:
        """barkd's version from the API document it serves (``info.version``), None when it serves none."""
        try:
            response = await self._http.get("/api-docs/openapi.json", timeout=3)
            version = response.json()["info"]["version"] if response.status_code == 200 else None
        except (httpx.TransportError, OSError, ValueError, KeyError, TypeError):
            return None
        return version if isinstance(version, str) else None

    async def wallet_fingerprint(self) -> str | None:
        body = await self.request("GET", "/api/v1/wallet")
        return body.get("fingerprint") if isinstance(body, dict) else None

    async def connected(self) -> bool:
        body = await self.request("GET", "/api/v1/wallet/connected")
        return bool(body.get("connected"))

    async def ark_info(self) -> ArkInfo:
        return parse_ark_info(dict(await self.request("GET", "/api/v1/wallet/ark-info")))

    async def balance(self) -> Balance:
        balance = parse_balance(dict(await self.request("GET", "/api/v1/wallet/balance")))
        self._features["v08"] = balance.is_v08
        return balance

    async def speaks_08(self) -> bool:
        """True when barkd answers in its 0.8 dialect (new balance fields, round states, retry_for_secs)."""
        if "v08" not in self._features:
            await self.balance()
        return self._features["v08"]

    async def api_version(self) -> str:
        """``0.8`` or ``0.6`` (0.2-0.6 speak alike here) or ``0.1``, from what the daemon answers."""
        if await self.speaks_08():
            return "0.8"
        if "history" not in self._features:
            await self.history()
        return "0.6" if self._features.get("history", True) else "0.1"

    async def vtxos(self, *, all_states: bool = False) -> list[dict[str, Any]]:
        params = {"all": "true"} if all_states else None
        return list(await self.request("GET", "/api/v1/wallet/vtxos", params=params))

    async def tip_height(self) -> int:
        return int((await self.request("GET", "/api/v1/bitcoin/tip"))["tip_height"])

    async def next_address(self) -> str:
        return str((await self.request("POST", "/api/v1/wallet/addresses/next"))["address"])

    async def sync(self) -> None:
        await self.request("POST", "/api/v1/wallet/sync")

    # --- Lightning receive ----------------------------------------------------------------
    async def create_invoice(self, amount_sats: int, description: str) -> Invoice:
        body = await self.request(
            "POST",
            "/api/v1/lightning/receives/invoice",
            json={"amount_sat": amount_sats, "description": description},
        )
        bolt11 = str(body["invoice"])
        payment_hash, amount, expires_at = invoice_details(bolt11)
        return Invoice(
            bolt11=bolt11, payment_hash=payment_hash, amount_sats=amount or amount_sats, expires_at=expires_at
        )

    async def receive_status(self, identifier: str) -> ReceiveStatus:
        """A receive's status; ``is_gone`` when barkd no longer has it (canceled, expired, unknown)."""
        try:
            body = await self.request("GET", f"/api/v1/lightning/receives/{identifier}")
        except BarkdError as exc:
            message = str(exc.body.get("message", "")) if isinstance(exc.body, dict) else str(exc.body or "")
            if exc.http_status == 404 or (exc.http_status == 500 and RECEIVE_GONE in message):
                return ReceiveStatus(payment_hash=identifier, state=None, amount_sats=0, is_paid=False, is_gone=True)
            raise
        return parse_receive(body)

    async def cancel_receive(self, payment_hash: str) -> bool:
        try:
            await self.request("DELETE", f"/api/v1/lightning/receives/{payment_hash}")
        except BarkdError:
            return False
        return True

    # --- history and notifications ----------------------------------------------------------
    @property
    def lacks_history_filter(self) -> bool:
        """barkd 0.1.x (no ``/api/v1/history``): filtering would mean downloading everything per address."""
        return self._features.get("history") is False

    async def history(self, *, type_: str | None = None, value: str | None = None) -> list[Movement]:
        """Movements; falls back to the 0.1.x path and filters on our side (0.2.x-0.3.x ignore the filter)."""
        params = {"type": type_, "value": value} if type_ and value else None
        if self._features.get("history", True):
            try:
                items = await self.request("GET", "/api/v1/history", params=params)
            except BarkdError as exc:
                if exc.http_status != 404:
                    raise
                self._features["history"] = False
        if not self._features.get("history", True):
            items = await self.request("GET", "/api/v1/wallet/history")
        movements = [parse_movement(item) for item in items or []]
        if params:
            movements = [m for m in movements if _matches(m, type_ or "", value or "")]
        return movements

    async def label_movement(self, movement_id: int, patch: Mapping[str, Any]) -> None:
        """Merge ``patch`` into a movement's metadata (RFC 7396; barkd answers 200 with no body)."""
        await self.request("POST", f"/api/v1/history/{movement_id}/metadata", json=patch)

    async def ws_ticket(self) -> str:
        return str(await self.request("GET", "/api/v1/notifications/ws/ticket"))

    def ws_url(self, ticket: str) -> str:
        scheme = "wss" if self.base_url.startswith("https") else "ws"
        return f"{scheme}://{self.base_url.split('://', 1)[1]}/api/v1/notifications/ws?ticket={ticket}"

    async def wait_notifications(
        self, since: str | None, *, timeout_s: float = 40.0
    ) -> tuple[list[Notification], str | None]:
        """Notifications after ``since`` (barkd's ``last_pushed_at`` cursor), and the new cursor."""
        params = {"since": since} if since else None
        body = await self.request("GET", "/api/v1/notifications/wait", params=params, timeout_s=timeout_s)
        return [parse_notification(item) for item in body.get("notifications") or []], body.get("last_pushed_at")

    # --- operator: refresh, rounds, exits, offboard, fees ---
    # Replies are barkd's JSON with every ``*_sat`` key renamed ``*_sats`` (recursively).

    @staticmethod
    def _in_sats(value: Any) -> Any:
        if isinstance(value, dict):
            return {
                (f"{key}s" if isinstance(key, str) and key.endswith("_sat") else key): BarkdClient._in_sats(item)
                for key, item in value.items()
            }
        if isinstance(value, list):
            return [BarkdClient._in_sats(item) for item in value]
        return value

    async def vtxo_list(self, *, all_states: bool = False) -> list[Vtxo]:
        """The wallet's VTXOs (only the live ones unless ``all_states``)."""
        return [parse_vtxo(item) for item in self._in_sats(await self.vtxos(all_states=all_states))]

    async def refresh_vtxos(self, vtxo_ids: list[str]) -> RoundInfo:
        """Register a round participation refreshing these VTXOs."""
        body = await self.request("POST", "/api/v1/wallet/refresh/vtxos", json={"vtxos": vtxo_ids})
        return parse_round(dict(self._in_sats(body)))

    async def refresh_delegated(self, vtxo_ids: list[str], height: int | None) -> RoundInfo:
        """Hand a signed participation to the server, scheduled for block ``height`` (barkd 0.5+)."""
        payload: dict[str, Any] = {"vtxos": vtxo_ids}
        if height is not None:
            payload["height"] = height
        body = await self.request("POST", "/api/v1/wallet/refresh/delegated/vtxos", json=payload)
        return parse_round(dict(self._in_sats(body)))

    async def refresh_all(self) -> RoundInfo:
        return parse_round(dict(self._in_sats(await self.request("POST", "/api/v1/wallet/refresh/all"))))

    async def pending_rounds(self) -> list[RoundInfo]:
        return [parse_round(item) for item in self._in_sats(await self.request("GET", "/api/v1/wallet/rounds"))]

    async def next_round_start(self) -> str | None:
        body = await self.request("GET", "/api/v1/wallet/next-round")
        return body.get("start_time") if isinstance(body, dict) else None

    async def onchain_balance(self) -> OnchainBalance:
        body = dict(self._in_sats(await self.request("GET", "/api/v1/onchain/balance")))
        return OnchainBalance(
            confirmed_sats=int(body.get("confirmed_sats") or 0),
            trusted_pending_sats=int(body.get("trusted_pending_sats") or 0),
            raw=body,
        )

    async def onchain_address(self) -> str:
        return str((await self.request("POST", "/api/v1/onchain/addresses/next"))["address"])

    async def fee_send_onchain(self, address: str, amount_sats: int) -> FeeEstimate:
        """The fee of sending ``amount_sats`` on-chain (it comes on top of the amount)."""
        params = {"amount_sat": amount_sats, "address": address}
        return parse_fee(self._in_sats(await self.request("GET", "/api/v1/fees/send-onchain", params=params)))

    async def fee_lightning_pay(self, amount_sats: int) -> FeeEstimate:
        params = {"amount_sat": amount_sats}
        return parse_fee(self._in_sats(await self.request("GET", "/api/v1/fees/lightning/pay", params=params)))

    async def send_onchain(self, destination: str, amount_sats: int) -> str:
        """Pay an exact amount on-chain from VTXOs; returns the offboard txid."""
        body = await self.request(
            "POST", "/api/v1/wallet/send-onchain", json={"destination": destination, "amount_sat": amount_sats}
        )
        return str(body["offboard_txid"])

    async def _retry_field(self, retry_for_secs: int | None) -> dict[str, Any]:
        """``retry_for_secs`` for 0.8 daemons; older ones would ignore it, so it is left out."""
        if retry_for_secs is None or not await self.speaks_08():
            return {}
        return {"retry_for_secs": retry_for_secs}

    async def lightning_pay(
        self, destination: str, amount_sats: int | None, *, retry_for_secs: int | None = None
    ) -> PaymentSent:
        payload: dict[str, Any] = {"destination": destination, **await self._retry_field(retry_for_secs)}
        if amount_sats is not None:
            payload["amount_sat"] = amount_sats
        return _sent(await self.request("POST", "/api/v1/lightning/pay", json=payload))

    async def send_ark(self, destination: str, amount_sats: int, *, retry_for_secs: int | None = None) -> PaymentSent:
        """An arkoor payment to an Ark address; final when the call returns."""
        payload = {"destination": destination, "amount_sat": amount_sats, **await self._retry_field(retry_for_secs)}
        return _sent(await self.request("POST", "/api/v1/wallet/send", json=payload))

    async def exit_fee(self, vtxo_ids: list[str] | None, *, fee_rate_sat_per_vb: int | None = None) -> ExitFee | None:
        """Exit fee estimate (barkd after 0.6.0); None when this barkd has no such endpoint."""
        params: dict[str, Any] = {}
        if vtxo_ids:
            params["vtxo_ids"] = ",".join(vtxo_ids)
        if fee_rate_sat_per_vb is not None:
            params["fee_rate_sat_per_vb"] = fee_rate_sat_per_vb
        try:
            body = await self.request("GET", "/api/v1/exits/fee", params=params or None)
        except BarkdError as exc:
            if exc.http_status in (404, 405) and not isinstance(exc.body, dict):
                return None  # the route itself is missing (bare-string 404), not a VTXO
            raise
        return parse_exit_fee(dict(self._in_sats(body)))

    async def start_exits(self, vtxo_ids: list[str] | None) -> None:
        if vtxo_ids is None:
            await self.request("POST", "/api/v1/exits/start/all")
        else:
            await self.request("POST", "/api/v1/exits/start/vtxos", json={"vtxos": vtxo_ids})

    async def progress_exits(self, *, fee_rate_sat_per_kvb: int | None = None) -> ExitProgress:
        payload = {"fee_rate": fee_rate_sat_per_kvb} if fee_rate_sat_per_kvb is not None else {}
        body = dict(self._in_sats(await self.request("POST", "/api/v1/exits/progress", json=payload)))
        done, height = body.get("done"), body.get("claimable_height")
        return ExitProgress(
            is_done=None if done is None else bool(done),
            claimable_height=height if isinstance(height, int) else None,
            errors=[e for e in body.get("exits") or [] if isinstance(e, dict) and e.get("error")],
        )

    async def exit_statuses(
        self, which: str = "all", *, history: bool = False, transactions: bool = False
    ) -> list[ExitStatus]:
        """``which`` is all, live or finished."""
        params = {"history": str(history).lower(), "transactions": str(transactions).lower()}
        try:
            body = await self.request("GET", f"/api/v1/exits/status/{which}", params=params)
        except BarkdError as exc:
            if exc.http_status != 404 or isinstance(exc.body, dict) or which != "all":
                raise
            body = await self.request("GET", "/api/v1/exits/status", params=params)  # barkd before 0.4.0
        return [parse_exit(item) for item in self._in_sats(body)]

    async def exit_status(self, vtxo_id: str, *, history: bool = True, transactions: bool = False) -> ExitStatus:
        params = {"history": str(history).lower(), "transactions": str(transactions).lower()}
        body = self._in_sats(await self.request("GET", f"/api/v1/exits/status/vtxo/{vtxo_id}", params=params))
        return parse_exit(dict(body))

    async def claim_exits(
        self, destination: str, vtxo_ids: list[str] | None, *, fee_rate_sat_per_kvb: int | None = None
    ) -> None:
        payload: dict[str, Any] = {"destination": destination}
        if fee_rate_sat_per_kvb is not None:
            payload["fee_rate"] = fee_rate_sat_per_kvb
        if vtxo_ids is None:
            await self.request("POST", "/api/v1/exits/claim/all", json=payload)
        else:
            await self.request("POST", "/api/v1/exits/claim/vtxos", json={**payload, "vtxos": vtxo_ids})

    async def cancel_exit(self, vtxo_id: str) -> None:
        await self.request("POST", f"/api/v1/exits/cancel/{vtxo_id}")


def parse_receive(body: dict[str, Any]) -> ReceiveStatus:
    """Paid means ``state == settled`` on 0.4+; on 0.1.x-0.3.x ``finished_at`` alone is NOT payment."""
    state = body.get("state")
    if state is not None:
        paid = state == "settled"
    else:
        paid = body.get("finished_at") is not None and body.get("preimage_revealed_at") is not None
    return ReceiveStatus(
        payment_hash=str(body.get("payment_hash") or ""),
        state=state,
        amount_sats=int(body.get("amount_sat") or 0),
        is_paid=paid,
        is_gone=state is None and body.get("finished_at") is not None and not paid,
    )


def _matches(movement: Movement, type_: str, value: str) -> bool:
    return any(d.type == type_ and d.value == value for d in (*movement.received_on, *movement.sent_to))
