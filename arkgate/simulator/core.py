"""Wallet core: keys, addresses, VTXOs, movements, balance and the chain tip.

The lifecycle modules (``lightning.py``, ``rounds.py``, ``exits.py``, ``onchain.py``) build on
this class. Every public method runs inside one store transaction and raises ``errors.ApiError``
subclasses carrying barkd's status codes and messages.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from datetime import UTC, datetime
from typing import Any

from arkgate.simulator import keys
from arkgate.simulator.addresses import AddressError, decode_ark_address, encode_ark_address
from arkgate.simulator.config import Faults, SimConfig
from arkgate.simulator.errors import BadRequestError, InternalError, NotFoundError, NoWalletError
from arkgate.simulator.notifications import NotificationBus
from arkgate.simulator.state import Doc, Store

DUST_SAT = 330


def now_rfc3339() -> str:
    """Movement/receive timestamps: RFC 3339 with a numeric ``+00:00`` offset (chrono ``Local``)."""
    return datetime.now(UTC).isoformat()


def random_txid() -> str:
    return secrets.token_hex(32)


def block_hash(height: int) -> str:
    """A stable fake block hash per height."""
    return hashlib.sha256(f"arkgate-simulator/block/{height}".encode()).hexdigest()


def block_ref(height: int) -> dict[str, Any]:
    return {"height": height, "hash": block_hash(height)}


class WalletCore:
    """State shared by every part of the simulated wallet."""

    def __init__(self, store: Store, config: SimConfig, bus: NotificationBus, faults: Faults) -> None:
        self.store = store
        self.config = config
        self.bus = bus
        self.faults = faults
        with store.transaction():
            if store.get_meta("tip") is None:
                store.set_meta("tip", config.start_height)
                store.set_meta("online", True)
                store.set_meta("clock_offset_s", 0.0)
                self._create_wallet()

    # -- world -------------------------------------------------------------------------------
    @property
    def tip(self) -> int:
        return int(self.store.get_meta("tip"))

    @property
    def online(self) -> bool:
        return bool(self.store.get_meta("online", True))

    def clock(self) -> float:
        """Wall clock plus the offset ``/_sim/advance-time`` adds (for invoice expiry)."""
        return time.time() + float(self.store.get_meta("clock_offset_s", 0.0))

    def require_online(self, context: str) -> None:
        if not self.online:
            raise InternalError(f"{context}: Ark server is unreachable: connection refused")

    # -- wallet lifecycle -----------------------------------------------------------------------
    @property
    def has_wallet(self) -> bool:
        return self.store.get_meta("seed") is not None

    def require_wallet(self) -> None:
        if not self.has_wallet:
            raise NoWalletError()

    @property
    def seed(self) -> bytes:
        return bytes.fromhex(self.store.get_meta("seed"))

    def fingerprint(self) -> str | None:
        return keys.fingerprint(self.seed) if self.has_wallet else None

    def _create_wallet(self) -> None:
        self.store.set_meta("seed", secrets.token_hex(32))
        self.store.set_meta("next_key_index", 0)
        self.store.set_meta("next_onchain_index", 0)
        self.store.set_meta("mailbox_checkpoint", 0)

    def create_wallet(self) -> str:
        with self.store.transaction():
            if self.has_wallet:
                raise BadRequestError("Wallet already set")
            self._create_wallet()
            return keys.fingerprint(self.seed)

    def delete_wallet(self, fingerprint: str, dangerous: bool) -> dict[str, Any]:
        with self.store.transaction():
            self.require_wallet()
            if not dangerous:
                return {
                    "deleted": False,
                    "message": "Deleting a wallet is dangerous, set `dangerous` to true",
                }
            if fingerprint != self.fingerprint():
                raise BadRequestError("Fingerprint does not match the loaded wallet")
            self.store.wipe_wallet()
            self.store.set_meta("seed", None)
            result: dict[str, Any] = {"deleted": True, "message": "Wallet deleted"}
            if self.config.v08:
                result["fingerprint"] = fingerprint
            return result

    # -- keys and addresses ---------------------------------------------------------------------
    def derive_key(self, purpose: str) -> tuple[int, str, str]:
        """Derive the next key; addresses, invoices and refreshes share this index space."""
        idx = int(self.store.get_meta("next_key_index", 0))
        self.store.set_meta("next_key_index", idx + 1)
        pubkey = keys.wallet_pubkey(self.seed, idx)
        address = encode_ark_address(self.config.network, keys.server_pubkey(), pubkey)
        self.store.add_key(idx, address, pubkey.hex(), purpose)
        return idx, address, pubkey.hex()

    def next_address(self) -> str:
        with self.store.transaction():
            self.require_wallet()
            return self.derive_key("address")[1]

    def address_at(self, idx: int) -> str:
        self.require_wallet()
        found = self.store.key_by_index(idx)
        if found is None:
            raise InternalError(f"Failed to get address at index {idx}: Address at index {idx} not found")
        return found[0]

    def parse_ark_address(self, text: str) -> bytes | None:
        """User pubkey of an Ark address for our server; None if it is not an Ark address."""
        try:
            parsed = decode_ark_address(text)
        except AddressError:
            return None
        if parsed.server_pubkey != keys.server_pubkey():
            raise BadRequestError("Ark address is for different server")
        return parsed.user_pubkey

    # -- VTXOs ---------------------------------------------------------------------------------
    def new_vtxo(
        self,
        *,
        amount_sat: int,
        user_pubkey: str,
        expiry_height: int | None = None,
        policy_type: str = "pubkey",
        exit_depth: int = 1,
        txid: str | None = None,
        vout: int = 0,
        state: dict[str, Any] | None = None,
    ) -> Doc:
        """Create and store a VTXO document (its JSON is ``WalletVtxoInfo``)."""
        vtxo_id = f"{txid or random_txid()}:{vout}"
        doc = {
            "id": vtxo_id,
            "amount_sat": amount_sat,
            "policy_type": policy_type,
            "user_pubkey": user_pubkey,
            "server_pubkey": keys.server_pubkey().hex(),
            "expiry_height": expiry_height if expiry_height is not None else self.tip + self.config.vtxo_lifetime,
            "exit_delta": self.config.exit_delta,
            "chain_anchor": f"{random_txid()}:0",
            "exit_depth": exit_depth,
            "state": state or {"type": "spendable"},
        }
        self.store.put("vtxos", vtxo_id, doc)
        return doc

    def save_vtxo(self, doc: Doc) -> None:
        self.store.put("vtxos", doc["id"], doc)

    def get_vtxo(self, vtxo_id: str) -> Doc | None:
        return self.store.get("vtxos", vtxo_id)

    def set_vtxo_state(self, vtxo_id: str, state: dict[str, Any]) -> None:
        doc = self.store.get("vtxos", vtxo_id)
        if doc is not None:
            doc["state"] = state
            self.save_vtxo(doc)

    def list_vtxos(self, all_states: bool = False) -> list[Doc]:
        self.require_wallet()
        docs = self.store.all("vtxos")
        return docs if all_states else [d for d in docs if d["state"]["type"] != "spent"]

    def vtxo_or_404(self, vtxo_id: str, *, context: str = "VTXO not found") -> Doc:
        validate_vtxo_id(vtxo_id)
        doc = self.get_vtxo(vtxo_id)
        if doc is None:
            raise NotFoundError(
                [vtxo_id],
                f"not found [resources={vtxo_id}]: {context}: The VTXO with id {vtxo_id} cannot be found",
            )
        return doc

    def spendable_vtxos(self) -> list[Doc]:
        """Money that may be spent: ``pubkey`` VTXOs in ``spendable`` that have not expired.

        barkd 0.6.0 still *reports* expired VTXOs as spendable; the simulator refuses to spend
        them so tests catch a gateway that lets coins expire.
        """
        return [
            d
            for d in self.store.all("vtxos")
            if d["state"]["type"] == "spendable"
            and d["policy_type"] == "pubkey"
            and d["expiry_height"] > self.tip
            and not (self.config.v08 and self.needs_refresh(d))
        ]

    def select_vtxos(self, amount_sat: int, context: str) -> list[Doc]:
        """Pick soonest-expiring spendable VTXOs covering ``amount_sat``."""
        chosen: list[Doc] = []
        total = 0
        for doc in sorted(self.spendable_vtxos(), key=lambda d: (d["expiry_height"], d["amount_sat"])):
            if total >= amount_sat:
                break
            chosen.append(doc)
            total += doc["amount_sat"]
        if total < amount_sat:
            raise InternalError(
                f"{context}: Insufficient money available. Needed {amount_sat} sat but {total} sat is available"
            )
        return chosen

    def change_vtxo(self, inputs: list[Doc], change_sat: int) -> Doc | None:
        """Arkoor change inherits the soonest expiry of its inputs."""
        if change_sat <= 0:
            return None
        _, _, pubkey = self.derive_key("change")
        expiry = min(d["expiry_height"] for d in inputs)
        depth = max(d.get("exit_depth") or 1 for d in inputs) + 1
        return self.new_vtxo(amount_sat=change_sat, user_pubkey=pubkey, expiry_height=expiry, exit_depth=depth)

    # -- movements -----------------------------------------------------------------------------
    def create_movement(
        self,
        *,
        name: str,
        kind: str,
        status: str,
        intended_sat: int,
        effective_sat: int,
        fee_sat: int = 0,
        sent_to: list[dict[str, Any]] | None = None,
        received_on: list[dict[str, Any]] | None = None,
        input_vtxos: list[str] | None = None,
        output_vtxos: list[str] | None = None,
        exited_vtxos: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        notify: bool = True,
    ) -> Doc:
        """Insert a movement (AUTOINCREMENT id) and emit ``movement-created``."""
        stamp = now_rfc3339()
        doc: Doc = {
            "id": 0,
            "status": status,
            "subsystem": {"name": name, "kind": kind},
            "metadata": metadata or {},
            "intended_balance_sat": intended_sat,
            "effective_balance_sat": effective_sat,
            "offchain_fee_sat": fee_sat,
            "sent_to": sent_to or [],
            "received_on": received_on or [],
            "input_vtxos": input_vtxos or [],
            "output_vtxos": output_vtxos or [],
            "exited_vtxos": exited_vtxos or [],
            "time": {"created_at": stamp, "updated_at": stamp, "completed_at": None},
        }
        if status != "pending":
            doc["time"]["completed_at"] = stamp
        self.store.insert("movements", doc)
        if notify:
            self.bus.publish("movement-created", movement_json(doc))
        return doc

    def update_movement(self, doc: Doc, **changes: Any) -> Doc:
        """Apply changes, bump ``updated_at`` (and ``completed_at`` when finished), emit updated."""
        doc.update(changes)
        stamp = now_rfc3339()
        doc["time"]["updated_at"] = stamp
        if doc["status"] != "pending" and doc["time"].get("completed_at") is None:
            doc["time"]["completed_at"] = stamp
        self.store.update("movements", doc["id"], doc)
        self.bus.publish("movement-updated", movement_json(doc))
        return doc

    def get_movement(self, movement_id: int) -> Doc | None:
        return self.store.get("movements", movement_id)

    def history(self) -> list[Doc]:
        """Newest first (``ORDER BY created_at DESC, id DESC``; ids grow with time)."""
        self.require_wallet()
        return [movement_json(d) for d in self.store.all("movements", newest_first=True)]

    def history_by_method(self, method_type: str, value: str) -> list[Doc]:
        """Movements paying to or received on a payment method, ascending by id."""
        self.require_wallet()
        target = {"type": method_type, "value": value}
        found = []
        for doc in self.store.all("movements"):
            entries = doc["sent_to"] + doc["received_on"]
            if any(e["destination"] == target for e in entries):
                found.append(movement_json(doc))
        return found

    def patch_metadata(self, movement_id: int, patch: Any) -> None:
        with self.store.transaction():
            self.require_wallet()
            doc = self.get_movement(movement_id)
            if doc is None:
                raise InternalError(f"Failed to update movement metadata: movement {movement_id} not found")
            current = doc.get("metadata") or {}
            self.update_movement(doc, metadata=merge_patch(current, patch) if isinstance(patch, dict) else {})

    # -- balance ---------------------------------------------------------------------------------
    def balance(self) -> dict[str, Any]:
        self.require_wallet()
        vtxos = self.store.all("vtxos")
        unlocked = [d for d in vtxos if d["state"]["type"] == "spendable" and d["policy_type"] == "pubkey"]
        # 0.8.0 moves expired and too-deep VTXOs out of spendable_sat into needs_refresh_sat.
        stale = [d for d in unlocked if self.needs_refresh(d)] if self.config.v08 else []
        spendable = sum(d["amount_sat"] for d in unlocked) - sum(d["amount_sat"] for d in stale)
        round_inputs = {
            i
            for r in self.store.all("rounds")
            if r["status"]["status"] == "pending"
            for i in r["participation"]["inputs"]
        }
        in_round = sum(d["amount_sat"] for d in vtxos if d["id"] in round_inputs and d["state"]["type"] == "locked")
        claimable_ln = sum(
            r["htlc_amount_sat"]
            for r in self.store.all("receives")
            if r["state"] in ("htlcs-ready", "preimage-revealed")
        )
        pending_send = sum(s["locked_sat"] for s in self.store.all("sends") if s["state"] not in ("paid", "unknown"))
        pending_board = sum(b["amount_sat"] for b in self.store.all("boards") if not b.get("done"))
        pending_exit = sum(
            e["amount_sat"]
            for e in self.store.all("exits")
            if e["state"]["type"] in ("awaiting-delta", "claimable", "claim-in-progress")
        )
        balance = {
            "spendable_sat": spendable,
            "pending_lightning_send_sat": pending_send,
            "claimable_lightning_receive_sat": claimable_ln,
            "pending_in_round_sat": in_round,
            "pending_board_sat": pending_board,
            "pending_exit_sat": pending_exit,
        }
        if self.config.v08:
            balance["needs_refresh_sat"] = sum(d["amount_sat"] for d in stale)
            balance["pending_arkoor_send_sat"] = 0  # arkoor sends complete inside the call here
            balance["pending_offboard_sat"] = 0  # so do offboards
        return balance

    def needs_refresh(self, doc: Doc) -> bool:
        """Expired, or at the server's maximum exit depth (0.8.0's ``needs_refresh_sat``)."""
        return bool(doc["expiry_height"] <= self.tip or doc["exit_depth"] >= self.config.max_vtxo_exit_depth)

    # -- incoming Ark payments -------------------------------------------------------------------
    def receive_arkoor(self, parts: list[Doc]) -> Doc | None:
        """Record one incoming arkoor package as barkd's mailbox processing does.

        ``parts`` are ``{"user_pubkey", "amount_sat", "expiry_height", "exit_depth"}``. VTXOs for
        keys we don't own are dropped; so are near-expiry ones when that (post-0.6.0) fault is on.
        One ``bark.arkoor``/``receive`` movement is created already successful, with
        ``received_on`` summed per address.
        """
        txid = random_txid()
        accepted: list[Doc] = []
        per_address: dict[str, int] = {}
        for vout, part in enumerate(parts):
            owner = self.store.key_by_pubkey(part["user_pubkey"])
            if owner is None:
                continue
            if self.faults.refuse_near_expiry and part["expiry_height"] <= self.tip + self.config.exit_delta:
                continue
            vtxo = self.new_vtxo(
                amount_sat=part["amount_sat"],
                user_pubkey=part["user_pubkey"],
                expiry_height=part["expiry_height"],
                exit_depth=part["exit_depth"],
                txid=txid,
                vout=vout,
            )
            accepted.append(vtxo)
            per_address[owner[1]] = per_address.get(owner[1], 0) + part["amount_sat"]
        if not accepted:
            return None
        total = sum(v["amount_sat"] for v in accepted)
        copies = 1
        if self.faults.duplicate_arkoor > 0:
            # Pre-0.3.0 race: two consumers record the same package (same output_vtxos).
            self.faults.duplicate_arkoor -= 1
            copies = 2
        movement: Doc | None = None
        for _ in range(copies):
            movement = self.create_movement(
                name="bark.arkoor",
                kind="receive",
                status="successful",
                intended_sat=total,
                effective_sat=total,
                received_on=[
                    {"destination": {"type": "ark", "value": addr}, "amount_sat": amount}
                    for addr, amount in per_address.items()
                ],
                output_vtxos=[v["id"] for v in accepted],
            )
        return movement

    def deliver_mailbox(self) -> int:
        """Process held arkoor packages (mailbox-down fault); returns the number delivered."""
        held = self.store.all("mailbox")
        for message in held:
            self.store.delete("mailbox", message["id"])
            self.receive_arkoor(message["parts"])
        if held:
            checkpoint = int(self.store.get_meta("mailbox_checkpoint", 0)) + len(held)
            self.store.set_meta("mailbox_checkpoint", checkpoint)
        return len(held)


def validate_vtxo_id(vtxo_id: str) -> None:
    """``<64 hex txid>:<vout>``, else barkd's 400."""
    txid, sep, vout = vtxo_id.partition(":")
    valid = sep == ":" and len(txid) == 64 and vout.isdigit()
    if valid:
        try:
            bytes.fromhex(txid)
        except ValueError:
            valid = False
    if not valid:
        raise BadRequestError(f"bad request: Invalid VTXO id: invalid outpoint: {vtxo_id}")


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7396 JSON merge patch."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def movement_json(doc: Doc) -> Doc:
    """barkd's ``Movement`` JSON: ``metadata`` left out when empty, ``completed_at`` while pending."""
    out = {k: v for k, v in doc.items() if k != "time"}
    if not out.get("metadata"):
        out.pop("metadata", None)
    stamps = dict(doc["time"])
    if stamps.get("completed_at") is None:
        stamps.pop("completed_at", None)
    out["time"] = stamps
    return out


def vtxo_json(doc: Doc) -> Doc:
    """``WalletVtxoInfo``: the API fields only (documents also carry internal bookkeeping)."""
    return {key: doc[key] for key in _VTXO_FIELDS}


_VTXO_FIELDS = (
    "id",
    "amount_sat",
    "policy_type",
    "user_pubkey",
    "server_pubkey",
    "expiry_height",
    "exit_delta",
    "chain_anchor",
    "exit_depth",
    "state",
)
