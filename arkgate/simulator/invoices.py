"""BOLT11 invoices, encoded and decoded with the ``bolt11`` package."""

from __future__ import annotations

import time

import bolt11
from bolt11 import Bolt11, MilliSatoshi, Tag, TagChar, Tags

# BOLT11 currency prefixes per network (the invoice starts with "ln" + prefix).
_CURRENCY = {"bitcoin": "bc", "mainnet": "bc", "testnet": "tb", "signet": "tbs", "regtest": "bcrt"}


def currency_for(network: str) -> str:
    """The BOLT11 currency prefix barkd's server uses on ``network``."""
    return _CURRENCY.get(network, "tbs")


def encode_invoice(
    *,
    network: str,
    amount_sat: int,
    payment_hash: str,
    payment_secret: str,
    description: str,
    expiry_s: int,
    node_secret: bytes,
    created_at: int | None = None,
) -> str:
    """Build and sign a BOLT11 invoice."""
    tags = Tags(
        [
            Tag(TagChar.payment_hash, payment_hash),
            Tag(TagChar.payment_secret, payment_secret),
            Tag(TagChar.description, description),
            Tag(TagChar.expire_time, expiry_s),
            Tag(TagChar.min_final_cltv_expiry, 18),
        ]
    )
    invoice = Bolt11(
        currency=currency_for(network),
        date=int(time.time()) if created_at is None else created_at,
        amount_msat=MilliSatoshi(amount_sat * 1000),
        tags=tags,
    )
    return bolt11.encode(invoice, node_secret.hex())


def decode_invoice(text: str) -> Bolt11:
    """Decode a BOLT11 string; raises on anything that is not a valid invoice."""
    return bolt11.decode(text.strip())


def looks_like_invoice(text: str) -> bool:
    """True when ``text`` decodes as a BOLT11 invoice."""
    if not text.lower().startswith("ln"):
        return False
    try:
        decode_invoice(text)
    except Exception:
        return False
    return True
