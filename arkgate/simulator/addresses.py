"""Bech32m encoding and the simulator's Ark address format.

Ark addresses are bech32m strings with hrp ``ark`` (mainnet) or ``tark`` (every test network).
Their payload here is ``version 0 || server pubkey (33) || user pubkey (33)``. That is longer than
the 90 characters BIP-173 allows, which is why a small encoder lives here instead of a library
that enforces that limit.
"""

from __future__ import annotations

from dataclasses import dataclass

_CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_BECH32M_CONST = 0x2BC830A3
_GENERATOR = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)


class AddressError(ValueError):
    """Raised when a string is not a valid bech32m Ark address."""


def _polymod(values: list[int]) -> int:
    checksum = 1
    for value in values:
        top = checksum >> 25
        checksum = (checksum & 0x1FFFFFF) << 5 ^ value
        for bit, generator in enumerate(_GENERATOR):
            if (top >> bit) & 1:
                checksum ^= generator
    return checksum


def _hrp_expand(hrp: str) -> list[int]:
    return [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]


def _convert_bits(data: bytes | list[int], from_bits: int, to_bits: int, pad: bool) -> list[int]:
    acc = 0
    bits = 0
    out: list[int] = []
    max_value = (1 << to_bits) - 1
    for value in data:
        acc = (acc << from_bits) | value
        bits += from_bits
        while bits >= to_bits:
            bits -= to_bits
            out.append((acc >> bits) & max_value)
    if pad and bits:
        out.append((acc << (to_bits - bits)) & max_value)
    elif not pad and (bits >= from_bits or (acc << (to_bits - bits)) & max_value):
        raise AddressError("invalid padding")
    return out


def bech32m_encode(hrp: str, payload: bytes) -> str:
    """Encode bytes as bech32m without any length limit."""
    data = _convert_bits(payload, 8, 5, pad=True)
    polymod = _polymod([*_hrp_expand(hrp), *data, 0, 0, 0, 0, 0, 0]) ^ _BECH32M_CONST
    checksum = [(polymod >> 5 * (5 - i)) & 31 for i in range(6)]
    return hrp + "1" + "".join(_CHARSET[d] for d in data + checksum)


def bech32m_decode(text: str) -> tuple[str, bytes]:
    """Decode a bech32m string into (hrp, payload bytes)."""
    if text.lower() != text and text.upper() != text:
        raise AddressError("mixed case")
    text = text.lower()
    sep = text.rfind("1")
    if sep < 1 or sep + 7 > len(text):
        raise AddressError("missing separator or checksum")
    hrp, rest = text[:sep], text[sep + 1 :]
    try:
        data = [_CHARSET.index(c) for c in rest]
    except ValueError as exc:
        raise AddressError("invalid character") from exc
    if _polymod([*_hrp_expand(hrp), *data]) != _BECH32M_CONST:
        raise AddressError("invalid checksum")
    return hrp, bytes(_convert_bits(data[:-6], 5, 8, pad=False))


def ark_hrp(network: str) -> str:
    """Mainnet addresses start with ``ark1``, every test network with ``tark1``."""
    return "ark" if network in ("bitcoin", "mainnet") else "tark"


@dataclass(frozen=True, kw_only=True)
class ArkAddress:
    """A decoded Ark address."""

    hrp: str
    server_pubkey: bytes
    user_pubkey: bytes


def encode_ark_address(network: str, server_pubkey: bytes, user_pubkey: bytes) -> str:
    """Encode an Ark address for a server and a user key."""
    return bech32m_encode(ark_hrp(network), bytes([0]) + server_pubkey + user_pubkey)


def decode_ark_address(text: str) -> ArkAddress:
    """Decode an Ark address produced by :func:`encode_ark_address`."""
    hrp, payload = bech32m_decode(text)
    if hrp not in ("ark", "tark"):
        raise AddressError(f"unknown hrp {hrp!r}")
    if len(payload) != 67 or payload[0] != 0:
        raise AddressError("unsupported address payload")
    return ArkAddress(hrp=hrp, server_pubkey=payload[1:34], user_pubkey=payload[34:])
