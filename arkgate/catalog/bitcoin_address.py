"""bitcoin-address: validate a Bitcoin address for any network and report what it pays to.

Base58Check (P2PKH, P2SH) and segwit addresses are decoded with embit's
primitives; segwit follows BIP-173 (witness v0: bech32) and BIP-350 (v1+:
bech32m), including future witness versions 2-16 that embit's high-level
helper rejects. An invalid address is a normal answer (``valid: false`` with a
reason); only input that cannot be an address at all is a 400.

Balances come from an Esplora-compatible API (``esplora_url``) for mainnet
addresses only; the public explorers do not serve the test networks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from embit import base58, bech32
from pydantic import BaseModel, Field, field_validator

from arkgate.catalog._upstream import RetryPolicy, cache_factory, get_json, upstream_errors
from arkgate.catalog.context import CallContext
from arkgate.catalog.registry import Endpoint
from arkgate.errors import ArkgateError

Network = Literal["mainnet", "testnet", "regtest"]

# Human-readable parts (BIP-173) and base58 version bytes, per network.
HRP_NETWORKS: dict[str, tuple[Network, list[str]]] = {
    "bc": ("mainnet", ["mainnet"]),
    "tb": ("testnet", ["testnet", "testnet4", "signet"]),
    "bcrt": ("regtest", ["regtest"]),
}
BASE58_VERSIONS: dict[int, tuple[str, Network, list[str]]] = {
    0x00: ("p2pkh", "mainnet", ["mainnet"]),
    0x05: ("p2sh", "mainnet", ["mainnet"]),
    0x6F: ("p2pkh", "testnet", ["testnet", "testnet4", "signet", "regtest"]),
    0xC4: ("p2sh", "testnet", ["testnet", "testnet4", "signet", "regtest"]),
}
_BASE58_ALPHABET = frozenset("123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz")
_BECH32_CHARSET = frozenset(bech32.CHARSET)
# Types Esplora indexes; future witness versions are valid but not looked up.
_LOOKUP_TYPES = frozenset({"p2pkh", "p2sh", "p2wpkh", "p2wsh", "p2tr", "p2a"})


@dataclass(kw_only=True)
class Decoded:
    valid: bool
    reason: str | None = None
    encoding: str | None = None
    type: str | None = None
    network: Network | None = None
    networks: list[str] = field(default_factory=list)
    witness_version: int | None = None
    witness_program: str | None = None
    script_pubkey: str | None = None
    normalized: str | None = None


def _invalid(reason: str, encoding: str | None = None) -> Decoded:
    return Decoded(valid=False, reason=reason, encoding=encoding)


def _witness_type(version: int, program: bytes) -> str:
    if version == 0:
        return "p2wpkh" if len(program) == 20 else "p2wsh"
    if version == 1 and len(program) == 32:
        return "p2tr"
    if version == 1 and program == b"\x4e\x73":
        return "p2a"  # pay-to-anchor (Bitcoin Core 28)
    return f"witness_v{version}"


def _decode_segwit(address: str) -> Decoded:
    if address != address.lower() and address != address.upper():
        return _invalid("mixes upper and lower case (BIP-173 forbids it)", "bech32")
    lowered = address.lower()
    hrp = lowered[: lowered.rfind("1")]
    encoding, hrp_got, data = bech32.bech32_decode(address)
    if encoding is None or hrp_got is None or data is None:
        return _invalid("not a valid bech32/bech32m string (bad checksum, character or length)", "bech32")
    name = "bech32m" if encoding == bech32.Encoding.BECH32M else "bech32"
    if hrp not in HRP_NETWORKS:
        return _invalid(f"unknown network prefix {hrp!r} (expected bc, tb or bcrt)", name)
    if not data:
        return _invalid("no witness version or program", name)
    version = data[0]
    if version > 16:
        return _invalid(f"witness version {version} does not exist (0-16)", name)
    program_list = bech32.convertbits(data[1:], 5, 8, False)
    if program_list is None:
        return _invalid("invalid padding in the witness program", name)
    program = bytes(program_list)
    if not 2 <= len(program) <= 40:
        return _invalid(f"witness program of {len(program)} bytes (must be 2-40)", name)
    if version == 0 and len(program) not in (20, 32):
        return _invalid(f"witness v0 program of {len(program)} bytes (must be 20 or 32)", name)
    if version == 0 and encoding != bech32.Encoding.BECH32:
        return _invalid("witness v0 must use the bech32 checksum, not bech32m (BIP-350)", name)
    if version != 0 and encoding != bech32.Encoding.BECH32M:
        return _invalid(f"witness v{version} must use the bech32m checksum, not bech32 (BIP-350)", name)
    network, networks = HRP_NETWORKS[hrp]
    opcode = 0 if version == 0 else 0x50 + version
    return Decoded(
        valid=True,
        encoding=name,
        type=_witness_type(version, program),
        network=network,
        networks=networks,
        witness_version=version,
        witness_program=program.hex(),
        script_pubkey=bytes([opcode, len(program)]).hex() + program.hex(),
        normalized=lowered,
    )


def _decode_base58(address: str) -> Decoded:
    try:
        payload = base58.decode_check(address)
    except Exception:  # embit raises bare ValueError/EmbitError on a bad checksum or character
        return _invalid("bad base58 checksum", "base58")
    if len(payload) != 21:
        return _invalid(f"base58 payload of {len(payload)} bytes (an address has 21)", "base58")
    kind = BASE58_VERSIONS.get(payload[0])
    if kind is None:
        return _invalid(f"unknown base58 version byte 0x{payload[0]:02x}", "base58")
    script_type, network, networks = kind
    digest = payload[1:].hex()
    script = f"76a914{digest}88ac" if script_type == "p2pkh" else f"a914{digest}87"
    return Decoded(
        valid=True,
        encoding="base58",
        type=script_type,
        network=network,
        networks=networks,
        script_pubkey=script,
        normalized=address,
    )


def decode_address(address: str) -> Decoded:
    """Decode ``address`` for any Bitcoin network; never raises."""
    lowered = address.lower()
    separator = lowered.rfind("1")
    looks_segwit = separator >= 1 and (
        lowered[:separator] in HRP_NETWORKS or set(lowered[separator + 1 :]) <= _BECH32_CHARSET
    )
    if set(address) <= _BASE58_ALPHABET:
        base58_result = _decode_base58(address)
        if base58_result.valid or not looks_segwit:
            return base58_result
    if looks_segwit:
        return _decode_segwit(address)
    return _invalid("not a base58 or bech32 address")


class BitcoinAddressRequest(BaseModel):
    address: str = Field(
        ...,
        min_length=1,
        max_length=120,
        description="Bitcoin address (base58, bech32 or bech32m; any network).",
        examples=["1BoatSLRHtKNngkdXEeobR76b53LETtpyT"],
    )
    include_balance: bool = Field(True, description="Look up the on-chain balance (mainnet addresses).")

    @field_validator("address")
    @classmethod
    def _address(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("address must not be blank")
        if any(ch.isspace() for ch in value) or not value.isascii() or not value.isprintable():
            raise ValueError("address must be one word of printable ASCII characters")
        return value


class Balance(BaseModel):
    """ArkAPI's balance object."""

    confirmed_sats: int
    unconfirmed_sats: int
    tx_count: int


# A plain-words description per output type (ArkAPI's "description").
DESCRIPTIONS = {
    "p2pkh": "Pay to public key hash (legacy)",
    "p2sh": "Pay to script hash (often wrapped segwit or multisig)",
    "p2wpkh": "Native segwit v0, pay to witness public key hash",
    "p2wsh": "Native segwit v0, pay to witness script hash",
    "p2tr": "Taproot (segwit v1)",
    "p2a": "Pay to anchor (segwit v1 anchor output)",
}


class ChainStats(BaseModel):
    funded_sats: int
    spent_sats: int
    tx_count: int


class BitcoinAddressResponse(BaseModel):
    address: str
    valid: bool
    reason: str | None = Field(default=None, description="Why the address is invalid.")
    encoding: str | None = Field(default=None, description="base58, bech32 or bech32m.")
    type: str | None = Field(default=None, description="p2pkh, p2sh, p2wpkh, p2wsh, p2tr, p2a or witness_vN.")
    network: Network | None = None
    networks: list[str] = Field(default_factory=list, description="Every network the address is valid on.")
    witness_version: int | None = None
    witness_program: str | None = Field(default=None, description="Witness program, hex.")
    script_pubkey: str | None = Field(default=None, description="Output script the address pays to, hex.")
    balance_sats: int | None = Field(default=None, description="Confirmed balance (mainnet lookups).")
    unconfirmed_balance_sats: int | None = Field(default=None, description="Net change from mempool transactions.")
    tx_count: int | None = Field(default=None, description="Confirmed transactions touching the address.")
    unconfirmed_tx_count: int | None = None
    chain_stats: ChainStats | None = None
    balance_source: str | None = None
    # ArkAPI's fields (docs/arkapi-compatibility.md)
    format: str = Field(default="", description="ArkAPI's name for encoding: base58, bech32 or bech32m.")
    description: str = Field(default="", description="What kind of output the address pays to, in words.")
    balance: Balance | None = Field(
        default=None, description="On-chain balance; null when not looked up or the backend is unavailable."
    )
    balance_error: str | None = Field(default=None, description="Why the balance is null although one was asked.")
    cached: bool = Field(default=False, description="The balance came from the gateway's cache.")


_cache = cache_factory(max_entries=4096)


async def _esplora(address: str, ctx: CallContext) -> dict[str, int]:
    s = ctx.settings

    async def load() -> dict[str, int]:
        _, body = await get_json(
            ctx.services.http,
            "Esplora",
            f"{s.esplora_url.rstrip('/')}/address/{address}",
            timeout_s=s.esplora_timeout_s,
            retry=RetryPolicy.from_settings(s),
        )
        with upstream_errors("Esplora"):
            chain, mempool = body["chain_stats"], body["mempool_stats"]
            return {
                "funded": int(chain["funded_txo_sum"]),
                "spent": int(chain["spent_txo_sum"]),
                "tx_count": int(chain["tx_count"]),
                "mempool_delta": int(mempool["funded_txo_sum"]) - int(mempool["spent_txo_sum"]),
                "mempool_tx_count": int(mempool["tx_count"]),
            }

    stats: dict[str, int] = await ctx.services.get(_cache).get_or_load(address, load, s.esplora_cache_ttl_s)
    return stats


async def bitcoin_address(request: BitcoinAddressRequest, ctx: CallContext) -> BitcoinAddressResponse:
    decoded = decode_address(request.address)
    response = BitcoinAddressResponse(
        address=request.address,
        valid=decoded.valid,
        reason=decoded.reason,
        encoding=decoded.encoding,
        type=decoded.type,
        network=decoded.network,
        networks=decoded.networks,
        witness_version=decoded.witness_version,
        witness_program=decoded.witness_program,
        script_pubkey=decoded.script_pubkey,
        format=decoded.encoding or "" if decoded.valid else "",
        description=DESCRIPTIONS.get(decoded.type or "", f"Segwit {decoded.type}" if decoded.type else "")
        if decoded.valid
        else "",
    )
    if not (decoded.valid and request.include_balance and decoded.normalized):
        return response
    if decoded.network != "mainnet":
        ctx.notes.append("balances are looked up for mainnet addresses only")
        return response
    if decoded.type not in _LOOKUP_TYPES:
        ctx.notes.append(f"no balance lookup for {decoded.type} outputs (not yet defined by consensus)")
        return response
    hits_before = ctx.services.get(_cache).hits
    try:
        stats = await _esplora(decoded.normalized, ctx)
    except ArkgateError as exc:
        # ArkAPI answers with balance: null when its explorer fails; the validation was still done,
        # so the call is charged like ArkAPI charges it (docs/arkapi-compatibility.md).
        response.balance_error = f"balance unavailable: {exc.message}"
        ctx.notes.append(response.balance_error)
        return response
    response.cached = ctx.services.get(_cache).hits > hits_before
    response.balance_sats = stats["funded"] - stats["spent"]
    response.unconfirmed_balance_sats = stats["mempool_delta"]
    response.tx_count = stats["tx_count"]
    response.unconfirmed_tx_count = stats["mempool_tx_count"]
    response.chain_stats = ChainStats(
        funded_sats=stats["funded"], spent_sats=stats["spent"], tx_count=stats["tx_count"]
    )
    response.balance_source = "Esplora"
    response.balance = Balance(
        confirmed_sats=response.balance_sats, unconfirmed_sats=stats["mempool_delta"], tx_count=stats["tx_count"]
    )
    return response


ENDPOINT = Endpoint(
    id="bitcoin-address",
    price_sats=3,
    category="utility",
    summary="Validate a Bitcoin address",
    description=(
        "Validates a Bitcoin address of any network (mainnet, testnet/testnet4/signet, regtest) and "
        "any kind: base58 P2PKH/P2SH, bech32 P2WPKH/P2WSH and bech32m taproot or later witness "
        "versions (BIP-173/BIP-350). Reports the type, network, witness program and output script; "
        "an invalid address gets valid=false and the reason. For mainnet addresses also returns the "
        "confirmed balance, unconfirmed change and transaction count."
    ),
    request_model=BitcoinAddressRequest,
    response_model=BitcoinAddressResponse,
    handler=bitcoin_address,
    timeout_s=20.0,
    example={"address": "1BoatSLRHtKNngkdXEeobR76b53LETtpyT"},
)
