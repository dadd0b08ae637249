"""Lightning receives (hold invoices driven to ``settled``) and sends (BEHAVIOUR.md 2.2-2.4, 3.4, 7)."""

from __future__ import annotations

import hashlib
import re
import secrets
from typing import Any

from arkgate.simulator import keys
from arkgate.simulator.core import WalletCore, now_rfc3339, vtxo_json
from arkgate.simulator.errors import BadRequestError, InternalError, NotFoundError
from arkgate.simulator.invoices import decode_invoice, encode_invoice
from arkgate.simulator.state import Doc

_HEX64 = re.compile(r"^[0-9a-fA-F]{64}$")
_NO_PENDING = "no pending lightning receive found for this payment hash"
_GRACE_S = 60  # barkd reaps an unpaid receive once bolt11 expiry + 60 s have passed


class ControlError(Exception):
    """A control request that cannot be honoured (reported as 400 by /_sim/)."""


class LightningMixin(WalletCore):
    """Receives and sends."""

    # -- fees ----------------------------------------------------------------------------------
    def receive_fee(self, amount_sat: int) -> int:
        """``fees.lightning_receive``: base + ppm of the invoice amount."""
        return self.config.lightning_receive_base_fee_sat + amount_sat * self.config.lightning_receive_ppm // 1_000_000

    def send_fee(self, amount_sat: int) -> int:
        return self.config.lightning_send_base_fee_sat

    # -- receives ------------------------------------------------------------------------------
    def create_invoice(self, amount_sat: int, description: str | None, for_address: str | None = None) -> str:
        with self.store.transaction():
            self.require_wallet()
            context = "Failed to create invoice"
            self.require_online(context)
            if amount_sat == 0:
                raise InternalError(
                    f"{context}: Cannot create invoice for 0 sats (this would create an explicit 0 sat invoice)"
                )
            fee = self.receive_fee(amount_sat)
            if fee >= amount_sat:
                raise InternalError(
                    f"{context}: Lightning receive fee ({fee} sat) exceeds the amount ({amount_sat} sat)"
                )
            # Every invoice derives the next key: the claim VTXO will be paid to it.
            key_index, _, pubkey = self.derive_key("invoice")
            preimage = secrets.token_bytes(32)
            payment_hash = hashlib.sha256(preimage).hexdigest()
            created = int(self.clock())
            invoice = encode_invoice(
                network=self.config.network,
                amount_sat=amount_sat,
                payment_hash=payment_hash,
                payment_secret=secrets.token_hex(32),
                description=description or "",
                expiry_s=self.config.invoice_expiry_s,
                node_secret=keys.node_secret(),
                created_at=created,
            )
            self.store.put(
                "receives",
                payment_hash,
                {
                    "payment_hash": payment_hash,
                    "invoice": invoice,
                    "payment_preimage": preimage.hex(),
                    "amount_sat": amount_sat,
                    "fee_sat": fee,
                    "htlc_amount_sat": amount_sat - fee,
                    "state": "awaiting-payment",
                    "htlc_vtxo_ids": [],
                    "settled_at": None,
                    "finished_at": None,
                    "preimage_revealed_at": None,
                    "created_unix": created,
                    "expiry_s": self.config.invoice_expiry_s,
                    "user_pubkey": pubkey,
                    "key_index": key_index,
                    "payer_paid": False,
                    "movement_id": None,
                    "for_address": for_address,
                    "ended": False,
                },
            )
            return invoice

    def resolve_identifier(self, identifier: str) -> str:
        """Payment hash from a hash or a BOLT11; 64 hex is always read as a hash first."""
        if _HEX64.match(identifier):
            return identifier.lower()
        try:
            return str(decode_invoice(identifier).payment_hash)
        except Exception as exc:
            raise BadRequestError("identifier is not a valid payment hash, invoice or preimage") from exc

    def _live_receive(self, payment_hash: str) -> Doc | None:
        doc = self.store.get("receives", payment_hash)
        if doc is None or (doc["ended"] and not self.config.legacy):
            return None
        return doc

    def receive_status(self, identifier: str) -> Doc:
        self.require_wallet()
        payment_hash = self.resolve_identifier(identifier)
        doc = self._live_receive(payment_hash)
        if doc is None:
            if self.config.legacy:
                raise NotFoundError([payment_hash], "No invoice found")
            raise InternalError(f"Failed to get lightning receive status: {_NO_PENDING}")
        return self.receive_json(doc)

    def pending_receives(self) -> list[Doc]:
        """In-progress receives only, oldest first."""
        self.require_wallet()
        docs = self.store.all("receives")
        return [self.receive_json(d) for d in docs if not d["ended"] and d["state"] != "settled"]

    def receive_json(self, doc: Doc) -> Doc:
        if self.config.legacy:
            # 0.1.4: no state/settled_at/htlc_vtxo_ids; finished_at set on any end; full VTXOs.
            htlcs = [vtxo_json(v) for v in (self.get_vtxo(i) for i in doc["htlc_vtxo_ids"]) if v is not None]
            return {
                "amount_sat": doc["amount_sat"],
                "payment_hash": doc["payment_hash"],
                "payment_preimage": doc["payment_preimage"],
                "preimage_revealed_at": doc["preimage_revealed_at"],
                "finished_at": doc["finished_at"],
                "invoice": doc["invoice"],
                "htlc_vtxos": htlcs,
            }
        return {
            "payment_hash": doc["payment_hash"],
            "state": doc["state"],
            "invoice": doc["invoice"],
            "payment_preimage": doc["payment_preimage"],
            "amount_sat": doc["amount_sat"],
            "htlc_vtxo_ids": doc["htlc_vtxo_ids"],
            "settled_at": doc["settled_at"],
            "preimage_revealed_at": None,
            "finished_at": doc["settled_at"],
            "htlc_vtxos": [],
        }

    def _end_receive(self, doc: Doc) -> None:
        """0.4.0+: the checkpoint is deleted; 0.1.4: the row stays with ``finished_at``."""
        if self.config.legacy:
            doc["ended"] = True
            doc["finished_at"] = now_rfc3339()
            self.store.put("receives", doc["payment_hash"], doc)
        else:
            self.store.delete("receives", doc["payment_hash"])

    def cancel_receive(self, identifier: str) -> None:
        with self.store.transaction():
            self.require_wallet()
            payment_hash = self.resolve_identifier(identifier)
            context = "Failed to cancel lightning receive"
            doc = self._live_receive(payment_hash)
            if doc is None or doc["ended"] or doc["state"] == "settled":
                raise InternalError(f"{context}: {_NO_PENDING}")
            if doc["state"] == "htlcs-ready":
                raise InternalError(
                    f"{context}: cannot cancel: HTLCs already granted; "
                    "the receive will complete or be abandoned near expiry"
                )
            if doc["state"] in ("preimage-revealed", "delivering"):
                raise InternalError(f"{context}: cannot cancel: preimage has already been revealed")
            self._end_receive(doc)

    def _expired(self, doc: Doc, grace_s: int = 0) -> bool:
        expires_unix: int = doc["created_unix"] + doc["expiry_s"]
        return self.clock() > expires_unix + grace_s

    def pay_invoice(self, invoice: str) -> dict[str, Any]:
        """Control: an outside payer pays one of our invoices."""
        with self.store.transaction():
            self.require_wallet()
            try:
                payment_hash = str(decode_invoice(invoice).payment_hash)
            except Exception as exc:
                raise ControlError(f"not a BOLT11 invoice: {exc}") from exc
            doc = self._live_receive(payment_hash)
            if doc is None or doc["ended"]:
                raise ControlError("no pending receive for this invoice")
            if doc["payer_paid"]:
                raise ControlError("invoice already paid")
            if not self.online:
                raise ControlError("Ark server is offline; the payment cannot be routed")
            if self._expired(doc):
                raise ControlError("invoice expired")
            doc["payer_paid"] = True
            self.store.put("receives", payment_hash, doc)
            # barkd learns about the payment from a mailbox push; with the mailbox down,
            # only wallet/sync drives it.
            if not self.faults.mailbox_down:
                doc = self._drive_receive(doc)
            movement = self.get_movement(doc["movement_id"]) if doc.get("movement_id") else None
            return {
                "payment_hash": payment_hash,
                "preimage": doc["payment_preimage"],
                "state": doc["state"],
                "amount_sat": doc["amount_sat"],
                "fee_sat": doc["fee_sat"],
                "movement_id": movement["id"] if movement else None,
            }

    def _drive_receive(self, doc: Doc) -> Doc:
        """awaiting-payment → htlcs-ready → (preimage-revealed) → settled, honouring hold faults."""
        payment_hash = doc["payment_hash"]
        hold = self.faults.hold_receives
        if doc["state"] == "awaiting-payment" and doc["payer_paid"]:
            htlc = self.new_vtxo(
                amount_sat=doc["htlc_amount_sat"],
                user_pubkey=doc["user_pubkey"],
                policy_type="server-htlc-receive-v1",
                state={"type": "locked", "action_id": f"ln_recv.{payment_hash}"},
            )
            doc["htlc_vtxo_ids"] = [htlc["id"]]
            doc["state"] = "htlcs-ready"
            movement = self.create_movement(
                name="bark.lightning_receive",
                kind="receive",
                status="pending",
                intended_sat=doc["amount_sat"],
                effective_sat=doc["htlc_amount_sat"],
                fee_sat=doc["fee_sat"],
                received_on=[
                    {
                        "destination": {"type": "invoice", "value": doc["invoice"]},
                        "amount_sat": doc["amount_sat"],
                    }
                ],
                metadata={
                    "payment_hash": payment_hash,
                    "htlc_vtxos": [htlc["id"]],
                    "payment_preimage": doc["payment_preimage"],
                },
            )
            doc["movement_id"] = movement["id"]
            self.store.put("receives", payment_hash, doc)
        if doc["state"] == "htlcs-ready" and hold != "htlcs-ready":
            doc["state"] = "preimage-revealed"
            doc["preimage_revealed_at"] = now_rfc3339()
            self.store.put("receives", payment_hash, doc)
        if doc["state"] == "preimage-revealed" and hold not in ("htlcs-ready", "preimage-revealed"):
            self._settle(doc)
        return doc

    def _settle(self, doc: Doc) -> None:
        for htlc_id in doc["htlc_vtxo_ids"]:
            self.set_vtxo_state(htlc_id, {"type": "spent"})
        movement = self.get_movement(doc["movement_id"])
        stamp = now_rfc3339()
        if doc.get("for_address"):
            # Delivered to another wallet's mailbox: nothing stays with us.
            outputs: list[str] = []
            changes: dict[str, Any] = {
                "effective_balance_sat": 0,
                "sent_to": [
                    {
                        "destination": {"type": "ark", "value": doc["for_address"]},
                        "amount_sat": doc["htlc_amount_sat"],
                    }
                ],
            }
        else:
            claim = self.new_vtxo(amount_sat=doc["htlc_amount_sat"], user_pubkey=doc["user_pubkey"])
            outputs = [claim["id"]]
            changes = {"effective_balance_sat": claim["amount_sat"]}
        doc["state"] = "settled"
        doc["settled_at"] = stamp
        doc["finished_at"] = stamp
        doc["ended"] = self.config.legacy
        self.store.put("receives", doc["payment_hash"], doc)
        if movement is not None:
            self.update_movement(movement, status="successful", output_vtxos=outputs, **changes)

    def drive_all_receives(self) -> None:
        """What ``wallet/sync`` (and startup) does: drive paid receives, reap expired ones."""
        for doc in self.store.all("receives"):
            if doc["ended"] or doc["state"] == "settled":
                continue
            if doc["payer_paid"]:
                self._drive_receive(doc)
            elif doc["state"] == "awaiting-payment" and self._expired(doc, _GRACE_S):
                self._end_receive(doc)

    # -- sends ---------------------------------------------------------------------------------
    def record_payee(self, destination: str, amount_sat: int) -> None:  # payees.py
        raise NotImplementedError

    def lightning_pay(self, destination: str, amount_sat: int | None) -> dict[str, Any]:
        with self.store.transaction():
            self.require_wallet()
            context = "Failed to pay lightning invoice"
            method_type = "invoice"
            if destination.lower().startswith("lno"):
                # A BOLT12 offer of a payee (``/_sim/payee/offer``): each payment fetches a fresh invoice.
                offer = self.store.get("payees", destination)
                if offer is None or offer.get("kind") != "offer":
                    raise InternalError(f"{context}: failed to fetch an invoice for the offer")
                self.require_online(context)
                method_type = "offer"
                payment_hash = secrets.token_hex(32)
                invoice_sat = offer.get("amount_sat")
            else:
                try:
                    invoice = decode_invoice(destination)
                except Exception as exc:
                    if "@" in destination or destination.lower().startswith("lnurl"):
                        if amount_sat is None:
                            raise BadRequestError("amount_sat is required for lightning addresses and LNURL") from exc
                        raise InternalError(f"{context}: lightning addresses and LNURL are not simulated") from exc
                    raise BadRequestError(f"bad request: invalid destination: {exc}") from exc
                self.require_online(context)
                payment_hash = str(invoice.payment_hash)
                if self.store.get("receives", payment_hash) is not None:
                    raise InternalError(f"{context}: cannot pay an invoice of this wallet")
                if self.store.get("sends", payment_hash) is not None:
                    raise InternalError(f"{context}: invoice has already been paid")
                invoice_sat = invoice.amount_msat // 1000 if invoice.amount_msat else None
            if invoice_sat and amount_sat and amount_sat != invoice_sat:
                raise BadRequestError("bad request: amount_sat does not match the invoice amount")
            amount = invoice_sat or amount_sat
            if not amount:
                raise BadRequestError("amount_sat is required for an any-amount invoice")
            fee = self.send_fee(amount)
            inputs = self.select_vtxos(amount + fee, context)
            for vtxo in inputs:
                vtxo["state"] = {"type": "locked", "action_id": f"ln_send.{payment_hash}"}
                self.save_vtxo(vtxo)
            total_in = sum(v["amount_sat"] for v in inputs)
            movement = self.create_movement(
                name="bark.lightning_send",
                kind="send",
                status="pending",
                intended_sat=-amount,
                effective_sat=-(amount + fee),
                fee_sat=fee,
                sent_to=[{"destination": {"type": method_type, "value": destination}, "amount_sat": amount}],
                input_vtxos=[v["id"] for v in inputs],
                metadata={"payment_hash": payment_hash},
            )
            send = {
                "payment_hash": payment_hash,
                "invoice": destination,
                "state": "payment-initiated",
                "preimage": None,
                "locked_sat": total_in,
                "movement_id": movement["id"],
            }
            if self.faults.lightning_send_fail:
                # Revoked: the inputs come back, the send reads "unknown", the movement failed.
                for vtxo in inputs:
                    self.set_vtxo_state(vtxo["id"], {"type": "spendable"})
                send["state"] = "unknown"
                self.update_movement(movement, status="failed", effective_balance_sat=0)
            else:
                for vtxo in inputs:
                    self.set_vtxo_state(vtxo["id"], {"type": "spent"})
                change = self.change_vtxo(inputs, total_in - amount - fee)
                send["state"] = "paid"
                send["preimage"] = secrets.token_hex(32)
                self.record_payee(destination, amount)
                self.update_movement(movement, status="successful", output_vtxos=[change["id"]] if change else [])
            self.store.put("sends", payment_hash, send)
            return {"message": "Payment initiated successfully", "payment_hash": payment_hash}

    def send_status(self, identifier: str) -> dict[str, Any]:
        self.require_wallet()
        payment_hash = self.resolve_identifier(identifier)
        send = self.store.get("sends", payment_hash)
        if send is None:
            raise InternalError(f"Failed to get lightning send status: no lightning send found for {payment_hash}")
        return {
            "payment_hash": send["payment_hash"],
            "state": send["state"],
            "invoice": send["invoice"],
            "preimage": send["preimage"],
        }
