"""The simulated wallet: all lifecycle parts combined, plus the world (blocks, sync, payers)."""

from __future__ import annotations

import json
from typing import Any

from arkgate.simulator import keys
from arkgate.simulator.addresses import AddressError, decode_ark_address
from arkgate.simulator.errors import BadRequestError
from arkgate.simulator.exits import ExitsMixin
from arkgate.simulator.lightning import ControlError, LightningMixin
from arkgate.simulator.onchain import OnchainMixin
from arkgate.simulator.payees import PayeesMixin
from arkgate.simulator.payments import PaymentsMixin
from arkgate.simulator.rounds import RoundsMixin
from arkgate.simulator.state import Doc

__all__ = ["ControlError", "Wallet"]


# PayeesMixin and OnchainMixin come first: the other mixins declare their helpers as stubs for type checkers.
class Wallet(PayeesMixin, OnchainMixin, LightningMixin, PaymentsMixin, RoundsMixin, ExitsMixin):
    """One merchant wallet, its Ark server and its chain."""

    # -- sync ----------------------------------------------------------------------------------
    def sync(self) -> None:
        """``wallet/sync``: mailbox, pending receives (drive and reap), on-chain. Errors only logged."""
        with self.store.transaction():
            if not self.has_wallet:
                raise_no_wallet(self)
            if self.online:
                self.deliver_mailbox()
                self.drive_all_receives()

    def seed_history(self, count: int) -> dict[str, Any]:
        """Control: ``count`` old outgoing arkoor payments, recorded without notifications (a long history)."""
        with self.store.transaction():
            self.require_wallet()
            for _ in range(count):
                self.create_movement(
                    name="bark.arkoor",
                    kind="send",
                    status="successful",
                    intended_sat=-1000,
                    effective_sat=-1000,
                    sent_to=[{"destination": {"type": "ark", "value": "tark1seeded"}, "amount_sat": 1000}],
                    notify=False,
                )
            return {"movements": self.store.count("movements")}

    def sync_mailbox(self) -> dict[str, int]:
        with self.store.transaction():
            self.require_wallet()
            self.require_online("Failed to sync mailbox")
            self.deliver_mailbox()
            return {"checkpoint": int(self.store.get_meta("mailbox_checkpoint", 0))}

    def startup(self) -> None:
        """barkd drives pending receives when it starts."""
        with self.store.transaction():
            if self.has_wallet and self.online:
                self.drive_all_receives()

    # -- chain ---------------------------------------------------------------------------------
    def mine(self, blocks: int) -> dict[str, Any]:
        """Advance the tip block by block: rounds confirm then run, exits step, boards and txs confirm."""
        rounds_run = 0
        for _ in range(blocks):
            with self.store.transaction():
                self.store.set_meta("tip", self.tip + 1)
                if self.has_wallet:
                    self._confirm_onchain()
                    self._advance_rounds()
                    self._advance_boards()
                    self._advance_exits()
            if self.has_wallet and self.online:
                rounds_run += self.run_round()["participations"]
        return {"tip_height": self.tip, "blocks": blocks, "round_participations_completed": rounds_run}

    def set_online(self, online: bool) -> dict[str, Any]:
        with self.store.transaction():
            self.store.set_meta("online", online)
        return {"online": online}

    def advance_time(self, seconds: float) -> dict[str, Any]:
        with self.store.transaction():
            offset = float(self.store.get_meta("clock_offset_s", 0.0)) + seconds
            self.store.set_meta("clock_offset_s", offset)
        return {"clock_offset_s": offset}

    # -- outside payers ------------------------------------------------------------------------
    def send_ark(
        self,
        address: str,
        amount_sat: int,
        vtxos: int = 1,
        expiry_height: int | None = None,
        exit_depth: int = 2,
    ) -> dict[str, Any]:
        """Control: an outside wallet pays ``amount_sat`` to one of our Ark addresses."""
        with self.store.transaction():
            self.require_wallet()
            try:
                parsed = decode_ark_address(address)
            except AddressError as exc:
                raise ControlError(f"not an Ark address: {exc}") from exc
            if vtxos < 1 or amount_sat < vtxos:
                raise ControlError("amount_sat must be at least the number of VTXOs")
            if not self.online:
                raise ControlError("Ark server is offline; the payment cannot be made")
            base, extra = divmod(amount_sat, vtxos)
            expiry = expiry_height if expiry_height is not None else self.tip + self.config.vtxo_lifetime
            parts = [
                {
                    "user_pubkey": parsed.user_pubkey.hex(),
                    "amount_sat": base + (1 if i < extra else 0),
                    "expiry_height": expiry,
                    "exit_depth": exit_depth,
                }
                for i in range(vtxos)
            ]
            if self.faults.mailbox_down:
                self.store.insert("mailbox", {"parts": parts})
                return {"delivered": False, "held": True, "movement_id": None, "vtxo_ids": []}
            movement = self.receive_arkoor(parts)
            checkpoint = int(self.store.get_meta("mailbox_checkpoint", 0)) + 1
            self.store.set_meta("mailbox_checkpoint", checkpoint)
            return {
                "delivered": movement is not None,
                "held": False,
                "movement_id": movement["id"] if movement else None,
                "vtxo_ids": movement["output_vtxos"] if movement else [],
            }

    # -- seed recovery ---------------------------------------------------------------------------
    def recover(self, gap_limit: int) -> dict[str, Any]:
        """Control: what a restore from the seed would find, scanning keys up to ``gap_limit`` unused ones.

        A key index counts as used when any VTXO (spent or not) was ever issued to its pubkey, as
        the server's VTXO index would show; the scan stops after ``gap_limit`` unused indices in a row.
        """
        with self.store.transaction():
            self.require_wallet()
            used_pubkeys = {d["user_pubkey"] for d in self.store.all("vtxos")}
            derived = int(self.store.get_meta("next_key_index", 0))
            found: list[str] = []
            gap = 0
            idx = 0
            while idx < derived and gap < gap_limit:
                pubkey = keys.wallet_pubkey(self.seed, idx).hex()
                if pubkey in used_pubkeys:
                    found.append(self.address_at(idx))
                    gap = 0
                else:
                    gap += 1
                idx += 1
            unspent = recovered = 0
            for doc in self.store.all("vtxos"):
                if doc["state"]["type"] not in ("spendable", "locked"):
                    continue
                unspent += doc["amount_sat"]
                owner = self.store.key_by_pubkey(doc["user_pubkey"])
                if owner is not None and owner[0] < idx:
                    recovered += doc["amount_sat"]
            return {
                "gap_limit": gap_limit,
                "scanned_to_index": idx,
                "derived": derived,
                "found_addresses": found,
                "unspent_sat": unspent,
                "recovered_sat": recovered,
            }

    # -- misc endpoints ------------------------------------------------------------------------
    def encoded_vtxo(self, vtxo_id: str) -> dict[str, str]:
        self.require_wallet()
        doc = self.vtxo_or_404(vtxo_id)
        return {"encoded": json.dumps(doc, sort_keys=True).encode().hex()}

    def import_vtxos(self, encoded: list[str]) -> list[Doc]:
        with self.store.transaction():
            self.require_wallet()
            imported = []
            for item in encoded:
                try:
                    doc = json.loads(bytes.fromhex(item))
                    vtxo_id = doc["id"]
                except Exception as exc:
                    raise BadRequestError(f"bad request: invalid encoded VTXO: {exc}") from exc
                if self.store.key_by_pubkey(doc.get("user_pubkey", "")) is None:
                    raise BadRequestError(f"bad request: VTXO {vtxo_id} does not belong to this wallet")
                existing = self.get_vtxo(vtxo_id)
                if existing is None:
                    doc["state"] = {"type": "spendable"}
                    self.save_vtxo(doc)
                    existing = doc
                imported.append(existing)
            return imported

    def state_summary(self) -> dict[str, Any]:
        summary: dict[str, Any] = {
            "tip_height": self.tip,
            "online": self.online,
            "network": self.config.network,
            "compat": self.config.compat,
            "wallet": self.fingerprint(),
            "faults": self.faults.as_dict(),
        }
        if self.has_wallet:
            summary["balance"] = self.balance()
            summary["onchain_balance"] = self.onchain_balance()
            summary["counts"] = {
                table: self.store.count(table)
                for table in ("vtxos", "movements", "receives", "exits", "rounds", "sends", "mailbox")
            }
            summary["next_key_index"] = self.store.get_meta("next_key_index")
        return summary


def raise_no_wallet(wallet: Wallet) -> None:
    wallet.require_wallet()
