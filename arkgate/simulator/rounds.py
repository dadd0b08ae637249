"""Refreshes and rounds (BEHAVIOUR.md section 5): participations, locked inputs, fresh outputs."""

from __future__ import annotations

from typing import Any

from arkgate.simulator.core import WalletCore, random_txid, validate_vtxo_id
from arkgate.simulator.errors import BadRequestError, InternalError, NotFoundError
from arkgate.simulator.state import Doc


class RoundsMixin(WalletCore):
    """Round participations, run on every mined block or through ``/_sim/round``."""

    def refresh_fee(self, inputs: list[Doc]) -> int:
        return self.config.refresh_base_fee_sat

    def _refreshable(self) -> list[Doc]:
        return [
            d for d in self.store.all("vtxos") if d["state"]["type"] == "spendable" and d["policy_type"] == "pubkey"
        ]

    def refresh(self, vtxo_ids: list[str] | None, *, counterparty: bool = False, height: int | None = None) -> Doc:
        """Register a round participation; inputs become ``locked`` with the movement id."""
        with self.store.transaction():
            self.require_wallet()
            if vtxo_ids is not None:
                if not vtxo_ids:
                    raise BadRequestError("No VTXO IDs provided")
                for vtxo_id in vtxo_ids:
                    validate_vtxo_id(vtxo_id)
                inputs = []
                for vtxo_id in vtxo_ids:
                    doc = self.get_vtxo(vtxo_id)
                    if doc is None:
                        raise InternalError(f"Failed to build round participation: vtxo with id {vtxo_id} not found")
                    if doc["state"]["type"] == "spendable" and doc["policy_type"] == "pubkey":
                        inputs.append(doc)
            elif counterparty:
                # Out-of-round VTXOs we received from others (arkoor/lightning), not round outputs.
                inputs = [d for d in self._refreshable() if not d.get("from_round")]
                if not inputs:
                    raise NotFoundError([], "No VTXO to refresh")
            else:
                inputs = self._refreshable()
            if not inputs:
                raise BadRequestError("No VTXOs to refresh")
            self.require_online("Failed to register round participation")
            total = sum(d["amount_sat"] for d in inputs)
            fee = self.refresh_fee(inputs)
            if total - fee < 330:
                raise InternalError("Failed to build round participation: output amount is below the dust limit")
            # A refresh derives a fresh key for its output, advancing the shared key index.
            _, _, pubkey = self.derive_key("refresh")
            movement = self.create_movement(
                name="bark.round",
                kind="refresh",
                status="pending",
                intended_sat=0,
                effective_sat=-fee,
                fee_sat=fee,
                input_vtxos=[d["id"] for d in inputs],
            )
            participation: Doc = {
                "id": 0,
                "status": {"status": "pending"},
                "participation": {
                    "inputs": [d["id"] for d in inputs],
                    "outputs": [{"amount_sat": total - fee, "policy_type": "pubkey", "user_pubkey": pubkey}],
                },
                "unlock_hash": None,
                "funding_txid": None,
                "funding_tx_hex": None,
                "movement_id": movement["id"],
                "scheduled_height": height,
            }
            self.store.insert("rounds", participation)
            for doc in inputs:
                doc["state"] = {"type": "locked", "movement_id": movement["id"]}
                self.save_vtxo(doc)
            return round_json(participation, tip=self.tip, v08=self.config.v08)

    def rounds(self) -> list[Doc]:
        self.require_wallet()
        return [round_json(r, tip=self.tip, v08=self.config.v08) for r in self.store.all("rounds")]

    def run_round(self) -> dict[str, Any]:
        """Complete every pending participation: outputs with fresh expiry, inputs spent."""
        with self.store.transaction():
            if not self.online or not self.has_wallet:
                return {"round_ran": False, "participations": 0}
            funding_txid = random_txid()
            done = 0
            for participation in self.store.all("rounds"):
                if participation["status"]["status"] != "pending":
                    continue
                scheduled = participation.get("scheduled_height")
                if scheduled is not None and self.tip < scheduled:
                    continue
                if self.faults.fail_rounds is not None:
                    self._end_unsuccessfully(participation, self.faults.fail_rounds)
                    continue
                outputs = []
                for vout, request in enumerate(participation["participation"]["outputs"]):
                    vtxo = self.new_vtxo(
                        amount_sat=request["amount_sat"],
                        user_pubkey=request["user_pubkey"],
                        txid=random_txid(),
                        vout=vout,
                    )
                    vtxo["from_round"] = True
                    vtxo["chain_anchor"] = f"{funding_txid}:0"
                    self.save_vtxo(vtxo)
                    outputs.append(vtxo["id"])
                for vtxo_id in participation["participation"]["inputs"]:
                    self.set_vtxo_state(vtxo_id, {"type": "spent"})
                participation["status"] = {"status": "unconfirmed", "funding_txid": funding_txid}
                participation["funding_txid"] = funding_txid
                self.store.update("rounds", participation["id"], participation)
                movement = self.get_movement(participation["movement_id"])
                if movement is not None:
                    self.update_movement(movement, status="successful", output_vtxos=outputs)
                done += 1
            return {"round_ran": True, "participations": done, "funding_txid": funding_txid if done else None}

    def _end_unsuccessfully(self, participation: Doc, outcome: str) -> None:
        """A failed or canceled round: inputs unlock, the movement ends with the same status."""
        if outcome == "failed":
            participation["status"] = {"status": "failed", "error": "round failed: not enough signatures"}
        else:
            participation["status"] = {"status": "canceled"}
        self.store.update("rounds", participation["id"], participation)
        for vtxo_id in participation["participation"]["inputs"]:
            self.set_vtxo_state(vtxo_id, {"type": "spendable"})
        movement = self.get_movement(participation["movement_id"])
        if movement is not None:
            self.update_movement(movement, status=outcome, effective_balance_sat=0)

    def _advance_rounds(self) -> None:
        """Per block: unconfirmed → confirmed; confirmed, failed and canceled ones are then dropped."""
        for participation in self.store.all("rounds"):
            status = participation["status"]["status"]
            if status in ("confirmed", "failed", "canceled"):
                self.store.delete("rounds", participation["id"])
            elif status == "unconfirmed":
                participation["status"] = {
                    "status": "confirmed",
                    "funding_txid": participation["funding_txid"],
                }
                self.store.update("rounds", participation["id"], participation)


def round_json(doc: Doc, *, tip: int, v08: bool) -> Doc:
    """``PendingRoundInfo``; 0.8.0 adds ``state`` (``RoundFlowState``) and ``scheduled_height``."""
    info = {
        "id": doc["id"],
        "status": doc["status"],
        "participation": doc["participation"],
        "unlock_hash": doc["unlock_hash"],
        "funding_txid": doc["funding_txid"],
        "funding_tx_hex": doc["funding_tx_hex"],
    }
    if v08:
        scheduled = doc.get("scheduled_height")
        status = doc["status"]["status"]
        if status == "pending":
            state = "delegated-pending" if scheduled is not None and tip < scheduled else "pending"
        elif status in ("unconfirmed", "confirmed"):
            state = "awaiting-confirmations"
        elif status == "canceled":
            state = "canceled"
        else:
            state = "failed"
        info["state"] = state
        info["scheduled_height"] = scheduled
    return info
