"""The outside world's wallets that our wallet pays: invoices and Ark addresses of other people.

Tests create a payee's BOLT11 invoice or Ark address through ``/_sim/payee/*`` and read back
exactly what reached it and how many times it was paid (a destination paid twice shows 2).
"""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

import coincurve

from arkgate.simulator import keys
from arkgate.simulator.addresses import encode_ark_address
from arkgate.simulator.core import WalletCore
from arkgate.simulator.invoices import encode_invoice
from arkgate.simulator.state import Doc


class PayeesMixin(WalletCore):
    """Destinations outside this wallet, and what each received."""

    def payee_invoice(self, amount_sat: int | None, description: str = "") -> Doc:
        """A BOLT11 invoice of another node (any amount when ``amount_sat`` is None)."""
        preimage = secrets.token_bytes(32)
        payment_hash = hashlib.sha256(preimage).hexdigest()
        invoice = encode_invoice(
            network=self.config.network,
            amount_sat=amount_sat or 0,
            payment_hash=payment_hash,
            payment_secret=secrets.token_hex(32),
            description=description,
            expiry_s=self.config.invoice_expiry_s,
            node_secret=coincurve.PrivateKey().secret,
            created_at=int(self.clock()),
        )
        with self.store.transaction():
            self.store.put("payees", invoice, _payee("invoice", invoice))
        return {"invoice": invoice, "payment_hash": payment_hash, "amount_sat": amount_sat}

    def payee_offer(self, amount_sat: int | None) -> Doc:
        """A BOLT12 offer of another node (opaque here: ``lno1`` + random bech32 characters)."""
        charset = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
        offer = "lno1" + "".join(secrets.choice(charset) for _ in range(80))
        with self.store.transaction():
            doc = _payee("offer", offer)
            doc["amount_sat"] = amount_sat
            self.store.put("payees", offer, doc)
        return {"offer": offer, "amount_sat": amount_sat}

    def payee_address(self) -> Doc:
        """An Ark address of another wallet on the same Ark server."""
        pubkey = coincurve.PrivateKey().public_key.format()
        address = encode_ark_address(self.config.network, keys.server_pubkey(), pubkey)
        with self.store.transaction():
            self.store.put("payees", address, _payee("ark", address))
        return {"address": address}

    def record_payee(self, destination: str, amount_sat: int) -> None:
        """Called inside the send's transaction when a payment reaches an outside destination."""
        doc = self.store.get("payees", destination) or _payee("unknown", destination)
        doc["received_sat"] += amount_sat
        doc["payments"] += 1
        self.store.put("payees", destination, doc)

    def payee_received(self, destination: str) -> dict[str, Any]:
        doc = self.store.get("payees", destination) or _payee("unknown", destination)
        return {"destination": destination, "received_sat": doc["received_sat"], "payments": doc["payments"]}


def _payee(kind: str, destination: str) -> Doc:
    return {"kind": kind, "destination": destination, "received_sat": 0, "payments": 0}
