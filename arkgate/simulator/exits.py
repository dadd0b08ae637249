"""Emergency exits (BEHAVIOUR.md section 6): one state step per block or ``exits/progress`` call."""

from __future__ import annotations

from typing import Any

from arkgate.simulator.core import WalletCore, block_ref, random_txid, validate_vtxo_id
from arkgate.simulator.errors import BadRequestError, InternalError, NotFoundError
from arkgate.simulator.state import Doc

LIVE = ("start", "processing", "awaiting-delta", "claimable", "claim-in-progress")
FINISHED = ("claimed", "vtxo-already-spent", "canceled", "vtxo-swept")
NOT_DONE = ("start", "processing", "awaiting-delta")
CLAIM_VBYTES = 150
EXIT_TX_VBYTES = 200


class ExitsMixin(WalletCore):
    """Exit state machine; the exit movement and the VTXO state change in step."""

    def _exit_address(self) -> str:
        # The exit output is a P2TR script of ours; a fresh on-chain-style address stands in.
        return self.new_onchain_address_raw()

    def new_onchain_address_raw(self) -> str:  # implemented in onchain.py
        raise NotImplementedError

    def credit_onchain(self, address: str, amount_sat: int, txid: str, *, own: bool) -> None:  # onchain.py
        raise NotImplementedError

    def _start_exit(self, vtxo: Doc) -> bool:
        existing = self.store.get("exits", vtxo["id"])
        if existing is not None and existing["state"]["type"] not in ("canceled",):
            return False
        if vtxo["amount_sat"] < 330:
            raise InternalError(
                f"Failed to start exit for VTXOs: dust-limit: VTXO {vtxo['id']} "
                f"amount {vtxo['amount_sat']} is below dust 330"
            )
        address = self._exit_address()
        movement = self.create_movement(
            name="bark.exit",
            kind="start",
            status="pending",
            intended_sat=-vtxo["amount_sat"],
            effective_sat=-vtxo["amount_sat"],
            sent_to=[{"destination": {"type": "bitcoin", "value": address}, "amount_sat": vtxo["amount_sat"]}],
            input_vtxos=[vtxo["id"]],
        )
        depth = max(1, vtxo.get("exit_depth") or 1)
        self.store.put(
            "exits",
            vtxo["id"],
            {
                "vtxo_id": vtxo["id"],
                "amount_sat": vtxo["amount_sat"],
                "state": {"type": "start", "tip_height": self.tip},
                "history": [],
                "txids": [random_txid() for _ in range(depth)],
                "child_txids": [random_txid() for _ in range(depth)],
                "movement_id": movement["id"],
                "processing_since": None,
            },
        )
        return True

    def start_exits(self, vtxo_ids: list[str] | None) -> dict[str, str]:
        with self.store.transaction():
            self.require_wallet()
            if vtxo_ids is None:
                candidates = [
                    d
                    for d in self.store.all("vtxos")
                    if d["policy_type"] == "pubkey"
                    and d["state"]["type"] in ("spendable", "locked")
                    and d["amount_sat"] >= 330
                ]
            else:
                if not vtxo_ids:
                    raise BadRequestError("No VTXO IDs provided")
                for vtxo_id in vtxo_ids:
                    try:
                        validate_vtxo_id(vtxo_id)
                    except BadRequestError as exc:
                        raise BadRequestError(f"bad request: Invalid VTXO ID: {vtxo_id}") from exc
                candidates = [self.vtxo_or_404(i) for i in vtxo_ids]
                # Only spendable VTXOs or inputs of a pending round start; others are skipped.
                candidates = [d for d in candidates if d["state"]["type"] == "spendable" or "movement_id" in d["state"]]
            for vtxo in candidates:
                self._start_exit(vtxo)
            return {"message": "Exit started successfully"}

    def _transition(self, exit_doc: Doc, state: dict[str, Any]) -> None:
        exit_doc["history"].append(exit_doc["state"])
        exit_doc["state"] = state

    def _step_exit(self, exit_doc: Doc) -> None:
        kind = exit_doc["state"]["type"]
        vtxo = self.get_vtxo(exit_doc["vtxo_id"])
        movement = self.get_movement(exit_doc["movement_id"])
        tip = self.tip
        if kind in ("start", "processing") and vtxo is not None and vtxo["state"]["type"] == "spent":
            self._transition(exit_doc, {"type": "vtxo-already-spent", "tip_height": tip})
            if movement is not None:
                self.update_movement(movement, status="canceled", effective_balance_sat=0)
        elif self.config.v08 and kind in ("start", "processing") and vtxo is not None and vtxo["expiry_height"] <= tip:
            # 0.8.0: the server swept the expired VTXO before its exit committed on-chain.
            self._transition(exit_doc, {"type": "vtxo-swept", "tip_height": tip, "spent_inputs": [vtxo["id"]]})
            self.set_vtxo_state(vtxo["id"], {"type": "spent"})
            if movement is not None:
                self.update_movement(movement, status="failed", effective_balance_sat=0)
        elif kind == "start":
            exit_doc["processing_since"] = tip
            self._transition(
                exit_doc,
                {
                    "type": "processing",
                    "tip_height": tip,
                    "transactions": self._exit_txs(exit_doc, confirmed_at=None),
                },
            )
        elif kind == "processing" and tip > exit_doc["processing_since"]:
            confirmed = exit_doc["processing_since"] + 1
            self._transition(
                exit_doc,
                {
                    "type": "awaiting-delta",
                    "tip_height": tip,
                    "confirmed_block": block_ref(confirmed),
                    "claimable_height": confirmed + self.config.exit_delta,
                },
            )
            if vtxo is not None:
                self.set_vtxo_state(vtxo["id"], {"type": "exited"})
            if movement is not None:
                self.update_movement(movement, exited_vtxos=[exit_doc["vtxo_id"]])
        elif kind == "awaiting-delta" and tip >= exit_doc["state"]["claimable_height"]:
            since = exit_doc["state"]["claimable_height"]
            self._transition(
                exit_doc,
                {
                    "type": "claimable",
                    "tip_height": tip,
                    "claimable_since": block_ref(since),
                    "last_scanned_block": None,
                },
            )
        elif kind == "claim-in-progress" and tip > exit_doc["claim_height"]:
            self._transition(
                exit_doc,
                {
                    "type": "claimed",
                    "tip_height": tip,
                    "txid": exit_doc["state"]["claim_txid"],
                    "block": block_ref(exit_doc["claim_height"] + 1),
                },
            )
            if movement is not None:
                self.update_movement(movement, status="successful")
        self.store.put("exits", exit_doc["vtxo_id"], exit_doc)

    def _exit_txs(self, exit_doc: Doc, confirmed_at: int | None) -> list[dict[str, Any]]:
        txs = []
        for txid, child in zip(exit_doc["txids"], exit_doc["child_txids"], strict=True):
            origin = {"type": "wallet", "confirmed_in": None}
            status: dict[str, Any] = {"type": "awaiting-confirmation", "child_txid": child, "origin": origin}
            if confirmed_at is not None:
                status = {
                    "type": "confirmed",
                    "child_txid": child,
                    "block": block_ref(confirmed_at),
                    "origin": {"type": "wallet", "confirmed_in": block_ref(confirmed_at)},
                }
            txs.append({"txid": txid, "status": status})
        return txs

    def progress_exits(self) -> dict[str, Any]:
        with self.store.transaction():
            self.require_wallet()
            for exit_doc in self.store.all("exits"):
                if exit_doc["state"]["type"] in LIVE:
                    self._step_exit(exit_doc)
            exits = self.store.all("exits")
            heights = [e["state"]["claimable_height"] for e in exits if e["state"]["type"] == "awaiting-delta"] + [
                e["state"]["claimable_since"]["height"] for e in exits if "claimable_since" in e["state"]
            ]
            return {
                "exits": [
                    {"vtxo_id": e["vtxo_id"], "state": e["state"], "error": None}
                    for e in exits
                    if e["state"]["type"] in LIVE
                ],
                "done": not any(e["state"]["type"] in NOT_DONE for e in exits),
                "claimable_height": max(heights) if heights else None,
            }

    def _advance_exits(self) -> None:
        for exit_doc in self.store.all("exits"):
            if exit_doc["state"]["type"] in LIVE:
                self._step_exit(exit_doc)

    def exit_status(self, which: str, *, history: bool, transactions: bool) -> list[Doc]:
        self.require_wallet()
        docs = self.store.all("exits")
        if which == "live":
            docs = [d for d in docs if d["state"]["type"] in LIVE]
        elif which == "finished":
            docs = [d for d in docs if d["state"]["type"] in FINISHED]
        return [self._exit_json(d, history, transactions) for d in docs]

    def exit_status_one(self, vtxo_id: str, *, history: bool, transactions: bool) -> Doc:
        self.require_wallet()
        validate_vtxo_id(vtxo_id)
        doc = self.store.get("exits", vtxo_id)
        if doc is None:
            raise NotFoundError([vtxo_id], "VTXO not found")
        return self._exit_json(doc, history, transactions)

    def _exit_json(self, doc: Doc, history: bool, transactions: bool) -> Doc:
        out: Doc = {"vtxo_id": doc["vtxo_id"], "state": doc["state"]}
        if history:
            out["history"] = doc["history"]
        if transactions:
            out["transactions"] = [
                {
                    "exit": {"txid": txid, "tx": "02000000" + txid},
                    "child": {
                        "info": {"txid": child, "tx": "02000000" + child},
                        "fee_info": {"fee_rate_sat_per_kvb": 5000, "total_fee_sat": EXIT_TX_VBYTES * 5},
                        "origin": {"type": "wallet", "confirmed_in": None},
                    },
                }
                for txid, child in zip(doc["txids"], doc["child_txids"], strict=True)
            ]
        return out

    def cancel_exit(self, vtxo_id: str) -> dict[str, str]:
        with self.store.transaction():
            self.require_wallet()
            validate_vtxo_id(vtxo_id)
            doc = self.store.get("exits", vtxo_id)
            if doc is None:
                raise NotFoundError([vtxo_id], "No exit found for VTXO")
            kind = doc["state"]["type"]
            if kind == "canceled":
                return {"message": "Exit canceled successfully"}
            if kind not in ("start", "processing"):
                raise BadRequestError(f"Exit can no longer be canceled (state: {kind})")
            self._transition(doc, {"type": "canceled", "tip_height": self.tip})
            self.store.put("exits", vtxo_id, doc)
            movement = self.get_movement(doc["movement_id"])
            if movement is not None:
                self.update_movement(movement, status="canceled", effective_balance_sat=0)
            return {"message": "Exit canceled successfully"}

    def claim_exits(self, destination: str, vtxo_ids: list[str] | None, fee_rate_kvb: int | None) -> dict[str, str]:
        with self.store.transaction():
            self.require_wallet()
            self.validate_bitcoin_address(destination)
            if vtxo_ids is None:
                chosen = [e for e in self.store.all("exits") if e["state"]["type"] == "claimable"]
                if not chosen:
                    raise InternalError("Failed to drain exits: claim-missing-inputs")
            else:
                chosen = []
                for vtxo_id in vtxo_ids:
                    self.vtxo_or_404(vtxo_id)
                    doc = self.store.get("exits", vtxo_id)
                    if doc is None or doc["state"]["type"] != "claimable":
                        raise BadRequestError(f"Unspendable VTXO provided: {vtxo_id}")
                    chosen.append(doc)
            claim_txid = random_txid()
            rate = fee_rate_kvb if fee_rate_kvb is not None else 3000
            fee = CLAIM_VBYTES * len(chosen) * rate // 1000
            total = sum(e["amount_sat"] for e in chosen)
            for doc in chosen:
                since = doc["state"]["claimable_since"]
                doc["claim_height"] = self.tip
                self._transition(
                    doc,
                    {
                        "type": "claim-in-progress",
                        "tip_height": self.tip,
                        "claimable_since": since,
                        "claim_txid": claim_txid,
                    },
                )
                self.store.put("exits", doc["vtxo_id"], doc)
            own = self.store.is_own_onchain_address(destination)
            self.credit_onchain(destination, max(0, total - fee), claim_txid, own=own)
            return {"message": "Exit claimed successfully"}

    def validate_bitcoin_address(self, address: str) -> None:  # onchain.py
        raise NotImplementedError

    def exit_fee(self, vtxo_ids: list[str] | None, fee_rate: int | None) -> dict[str, Any]:
        self.require_wallet()
        if vtxo_ids is None:
            vtxos = self.spendable_vtxos()
        else:
            vtxos = []
            for vtxo_id in vtxo_ids:
                validate_vtxo_id(vtxo_id)
                doc = self.get_vtxo(vtxo_id)
                if doc is None or doc["state"]["type"] in ("spent", "exited") or doc["amount_sat"] < 330:
                    raise BadRequestError(f"bad request: VTXO {vtxo_id} cannot be exited")
                vtxos.append(doc)
        rate = fee_rate if fee_rate is not None else 5
        txs = sum(max(1, d.get("exit_depth") or 1) for d in vtxos)
        broadcast = txs * EXIT_TX_VBYTES * rate
        claim = (CLAIM_VBYTES * len(vtxos) * (fee_rate if fee_rate is not None else 3)) if vtxos else 0
        return {
            "exit_broadcast_fee_sat": broadcast,
            "claim_fee_sat": claim,
            "total_fee_sat": broadcast + claim,
            "fee_rate_sat_per_vb": rate,
            "txs_to_broadcast": txs,
            "fundable": self.onchain_confirmed_sat() >= broadcast,
        }

    def onchain_confirmed_sat(self) -> int:  # onchain.py
        raise NotImplementedError
