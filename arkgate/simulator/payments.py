"""Moving revenue out (BEHAVIOUR.md section 7): arkoor sends, offboards, send-onchain, fee estimates."""

from __future__ import annotations

import hashlib
from typing import Any

import coincurve

from arkgate.simulator import keys
from arkgate.simulator.core import WalletCore, random_txid
from arkgate.simulator.errors import BadRequestError, InternalError
from arkgate.simulator.invoices import looks_like_invoice
from arkgate.simulator.state import Doc


class PaymentsMixin(WalletCore):
    """Outgoing payments that spend VTXOs."""

    def lightning_pay(self, destination: str, amount_sat: int | None) -> dict[str, Any]:  # lightning.py
        raise NotImplementedError

    def record_payee(self, destination: str, amount_sat: int) -> None:  # payees.py
        raise NotImplementedError

    def validate_bitcoin_address(self, address: str) -> None:  # onchain.py
        raise NotImplementedError

    def new_onchain_address_raw(self) -> str:  # onchain.py
        raise NotImplementedError

    def credit_onchain(self, address: str, amount_sat: int, txid: str, *, own: bool) -> None:  # onchain.py
        raise NotImplementedError

    def send(self, destination: str, amount_sat: int | None) -> dict[str, Any]:
        """``wallet/send``: Ark address (arkoor, final at once), BOLT11, or refused on-chain."""
        self.require_wallet()
        if looks_like_invoice(destination):
            result = self.lightning_pay(destination, amount_sat)
            return {"message": "Payment sent successfully", "payment_hash": result["payment_hash"]}
        with self.store.transaction():
            user_pubkey = self.parse_ark_address(destination)
            if user_pubkey is None:
                try:
                    self.validate_bitcoin_address(destination)
                except BadRequestError as exc:
                    raise BadRequestError(f"bad request: invalid destination: {destination}") from exc
                raise InternalError("offboards are temporarily disabled")
            if amount_sat is None:
                raise InternalError("amount missing")
            context = "Failed to send arkoor payment"
            self.require_online(context)
            if amount_sat < 330:
                raise InternalError(f"{context}: amount {amount_sat} sat is below the dust limit")
            inputs = self.select_vtxos(amount_sat, context)
            for vtxo in inputs:
                self.set_vtxo_state(vtxo["id"], {"type": "spent"})
            change = self.change_vtxo(inputs, sum(v["amount_sat"] for v in inputs) - amount_sat)
            movement = self.create_movement(
                name="bark.arkoor",
                kind="send",
                status="pending",
                intended_sat=-amount_sat,
                effective_sat=-amount_sat,
                sent_to=[{"destination": {"type": "ark", "value": destination}, "amount_sat": amount_sat}],
                input_vtxos=[v["id"] for v in inputs],
            )
            self.update_movement(movement, status="successful", output_vtxos=[change["id"]] if change else [])
            own = self.store.key_by_pubkey(user_pubkey.hex()) is not None
            if not own:
                self.record_payee(destination, amount_sat)
            if own:
                # Paying one of our own addresses: the package comes back through our mailbox.
                expiry = min(v["expiry_height"] for v in inputs)
                depth = max(v["exit_depth"] for v in inputs) + 1
                self.receive_arkoor(
                    [
                        {
                            "user_pubkey": user_pubkey.hex(),
                            "amount_sat": amount_sat,
                            "expiry_height": expiry,
                            "exit_depth": depth,
                        }
                    ]
                )
            return {"message": "Payment sent successfully"}

    # -- offboards -------------------------------------------------------------------------------
    def offboard_fee(self, vtxo_count: int) -> int:
        """``fees.offboard``: a fixed base plus the (simulated) transaction weight at the offboard feerate."""
        return (100 + 43 * vtxo_count) * self.config.offboard_feerate_sat_per_kvb // 1000

    def _resolve_vtxos(self, vtxo_ids: list[str]) -> list[Doc]:
        if not vtxo_ids:
            raise BadRequestError("No VTXO IDs provided")
        docs = [self.vtxo_or_404(i) for i in vtxo_ids]
        for doc in docs:
            if doc not in self.spendable_vtxos():
                raise BadRequestError(f"VTXO {doc['id']} is not spendable")
        return docs

    def offboard(self, address: str | None, vtxo_ids: list[str] | None) -> dict[str, Any]:
        with self.store.transaction():
            self.require_wallet()
            if address is None:
                address = self.new_onchain_address_raw()
            else:
                self.validate_bitcoin_address(address)
            inputs = self.spendable_vtxos() if vtxo_ids is None else self._resolve_vtxos(vtxo_ids)
            context = "Failed to offboard"
            self.require_online(context)
            if not inputs:
                raise InternalError(f"{context}: no VTXOs to offboard")
            total = sum(v["amount_sat"] for v in inputs)
            fee = self.offboard_fee(len(inputs))
            if total - fee < 330:
                raise InternalError(f"{context}: offboard amount is below the dust limit after fees")
            return self._offboard_result(self._offboard(inputs, address, total - fee, fee, kind="offboard"))

    def send_onchain(self, destination: str, amount_sat: int) -> dict[str, Any]:
        with self.store.transaction():
            self.require_wallet()
            self.validate_bitcoin_address(destination)
            context = "Failed to send onchain"
            self.require_online(context)
            if amount_sat < 330:
                raise InternalError(f"{context}: amount {amount_sat} sat is below the dust limit")
            fee = self.offboard_fee(1)
            inputs = self.select_vtxos(amount_sat + fee, context)
            return self._offboard_result(self._offboard(inputs, destination, amount_sat, fee, kind="send_onchain"))

    def _offboard_result(self, txid: str) -> dict[str, Any]:
        """``OffboardResult``; 0.8.0 adds the movement that records it."""
        result: dict[str, Any] = {"offboard_txid": txid}
        if self.config.v08:
            result["movement_id"] = max(m["id"] for m in self.store.all("movements"))
        return result

    def _offboard(self, inputs: list[Doc], address: str, amount: int, fee: int, *, kind: str) -> str:
        txid = random_txid()
        for vtxo in inputs:
            self.set_vtxo_state(vtxo["id"], {"type": "spent"})
        change = self.change_vtxo(inputs, sum(v["amount_sat"] for v in inputs) - amount - fee)
        movement = self.create_movement(
            name="bark.offboard",
            kind=kind,
            status="pending",
            intended_sat=-amount,
            effective_sat=-(amount + fee),
            fee_sat=fee,
            sent_to=[{"destination": {"type": "bitcoin", "value": address}, "amount_sat": amount}],
            input_vtxos=[v["id"] for v in inputs],
            metadata={"offboard_txid": txid},
        )
        self.credit_onchain(address, amount, txid, own=self.store.is_own_onchain_address(address))
        self.update_movement(movement, status="successful", output_vtxos=[change["id"]] if change else [])
        return txid

    # -- fee estimates ---------------------------------------------------------------------------
    def estimate(self, gross: int, fee: int, vtxos: list[Doc]) -> dict[str, Any]:
        return {
            "gross_amount_sat": gross,
            "fee_sat": fee,
            "net_amount_sat": max(0, gross - fee),
            "vtxos_spent": [v["id"] for v in vtxos],
        }

    def estimate_offboard(self, address: str, vtxo_ids: list[str] | None) -> dict[str, Any]:
        self.require_wallet()
        self.validate_bitcoin_address(address)
        vtxos = self.spendable_vtxos() if vtxo_ids is None else self._resolve_vtxos(vtxo_ids)
        return self.estimate(sum(v["amount_sat"] for v in vtxos), self.offboard_fee(len(vtxos)), vtxos)

    def estimate_send_onchain(self, address: str, amount_sat: int) -> dict[str, Any]:
        self.require_wallet()
        self.validate_bitcoin_address(address)
        fee = self.offboard_fee(1)
        try:
            vtxos = self.select_vtxos(amount_sat + fee, "Failed to estimate fee")
        except InternalError:
            vtxos = []
        return {
            "gross_amount_sat": amount_sat + fee,
            "fee_sat": fee,
            "net_amount_sat": amount_sat,
            "vtxos_spent": [v["id"] for v in vtxos],
        }

    # -- messages ----------------------------------------------------------------------------------
    def _message_digest(self, message: str) -> bytes:
        return hashlib.sha256(b"bark/message" + message.encode()).digest()

    def sign_message(self, message: str, address: str) -> dict[str, str]:
        self.require_wallet()
        user_pubkey = self.parse_ark_address(address)
        owner = self.store.key_by_pubkey(user_pubkey.hex()) if user_pubkey else None
        if owner is None:
            raise BadRequestError("bad request: address does not belong to this wallet")
        secret = keys.wallet_secret(self.seed, owner[0])
        signature = coincurve.PrivateKey(secret).sign_schnorr(self._message_digest(message))
        return {"signature": signature.hex()}

    def verify_message(self, message: str, signature: str, pubkey: str | None, address: str | None) -> dict[str, bool]:
        self.require_wallet()
        if (pubkey is None) == (address is None):
            raise BadRequestError("Exactly one of `pubkey` and `address` must be set")
        try:
            raw = bytes.fromhex(pubkey) if pubkey is not None else self.parse_ark_address(address or "")
            if raw is None:
                raise ValueError("not an Ark address")
            xonly = coincurve.PublicKeyXOnly(raw[-32:])
            valid = xonly.verify(bytes.fromhex(signature), self._message_digest(message))
        except BadRequestError:
            raise
        except Exception as exc:
            raise BadRequestError(f"bad request: {exc}") from exc
        return {"valid": bool(valid)}
