"""Deterministic keys: the wallet's HD-like key chain and the fake Ark server's keys.

Real bark derives BIP-32 children; the simulator only needs keys that are stable per
(seed, index), so each index hashes to a secp256k1 secret.
"""

from __future__ import annotations

import hashlib

import coincurve

# The fake Ark server is the same for every simulator wallet, so addresses made by one
# simulator are "for the same server" in another; a tweak gives a "different server" key.
_SERVER_SECRET = hashlib.sha256(b"arkgate-simulator/ark-server").digest()
_MAILBOX_SECRET = hashlib.sha256(b"arkgate-simulator/mailbox").digest()
_NODE_SECRET = hashlib.sha256(b"arkgate-simulator/lightning-node").digest()


def server_pubkey() -> bytes:
    """Compressed public key of the simulated Ark server."""
    return coincurve.PrivateKey(_SERVER_SECRET).public_key.format()


def mailbox_pubkey() -> bytes:
    """Compressed public key used for (simulated) mailbox blinding."""
    return coincurve.PrivateKey(_MAILBOX_SECRET).public_key.format()


def node_secret() -> bytes:
    """Secret key the simulated server signs BOLT11 invoices with."""
    return _NODE_SECRET


def wallet_secret(seed: bytes, index: int) -> bytes:
    """The wallet's secret key at ``index``."""
    return hashlib.sha256(seed + b"/ark-key/" + index.to_bytes(4, "big")).digest()


def wallet_pubkey(seed: bytes, index: int) -> bytes:
    """The wallet's compressed public key at ``index``."""
    return coincurve.PrivateKey(wallet_secret(seed, index)).public_key.format()


def onchain_secret(seed: bytes, index: int) -> bytes:
    """Secret key of the on-chain wallet's address ``index``."""
    return hashlib.sha256(seed + b"/onchain-key/" + index.to_bytes(4, "big")).digest()


def fingerprint(seed: bytes) -> str:
    """An 8-hex-digit wallet fingerprint, like a BIP-32 master fingerprint."""
    return hashlib.sha256(seed + b"/fingerprint").hexdigest()[:8]
