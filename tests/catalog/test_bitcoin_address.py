"""bitcoin-address: BIP-173/BIP-350 test vectors for every network, and Esplora balances."""

from __future__ import annotations

import pytest

from arkgate.catalog.bitcoin_address import decode_address
from tests.upstreams import UpstreamServer, upstream_server_fixture  # noqa: F401
from tests.upstreams.checks import assert_not_charged, assert_paid

# BIP-350 "valid segwit addresses" (which include BIP-173's corrected ones), with the
# scriptPubKey each must decode to; plus regtest (bcrt) and base58 (Bitcoin Core's
# base58 vectors) so that every network and encoding is covered.
VALID = [
    ("BC1QW508D6QEJXTDG4Y5R3ZARVARY0C5XW7KV8F3T4", "0014751e76e8199196d454941c45d1b3a323f1433bd6", "mainnet", "p2wpkh"),
    (
        "tb1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3q0sl5k7",
        "00201863143c14c5166804bd19203356da136c985678cd4d27a1b8c6329604903262",
        "testnet",
        "p2wsh",
    ),
    (
        "bc1pw508d6qejxtdg4y5r3zarvary0c5xw7kw508d6qejxtdg4y5r3zarvary0c5xw7kt5nd6y",
        "5128751e76e8199196d454941c45d1b3a323f1433bd6751e76e8199196d454941c45d1b3a323f1433bd6",
        "mainnet",
        "witness_v1",
    ),
    ("BC1SW50QGDZ25J", "6002751e", "mainnet", "witness_v16"),
    ("bc1zw508d6qejxtdg4y5r3zarvaryvaxxpcs", "5210751e76e8199196d454941c45d1b3a323", "mainnet", "witness_v2"),
    (
        "tb1qqqqqp399et2xygdj5xreqhjjvcmzhxw4aywxecjdzew6hylgvsesrxh6hy",
        "0020000000c4a5cad46221b2a187905e5266362b99d5e91c6ce24d165dab93e86433",
        "testnet",
        "p2wsh",
    ),
    (
        "tb1pqqqqp399et2xygdj5xreqhjjvcmzhxw4aywxecjdzew6hylgvsesf3hn0c",
        "5120000000c4a5cad46221b2a187905e5266362b99d5e91c6ce24d165dab93e86433",
        "testnet",
        "p2tr",
    ),
    (
        "bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqzk5jj0",
        "512079be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798",
        "mainnet",
        "p2tr",
    ),
    (
        "bcrt1qn3h68k2u0rr49skx05qw7veynpf4lfppd2demt",
        "00149c6fa3d95c78c752c2c67d00ef332498535fa421",
        "regtest",
        "p2wpkh",
    ),
    ("bc1pfeessrawgf", "51024e73", "mainnet", "p2a"),
    ("1AGNa15ZQXAZUgFiqJ2i7Z2DPU2J6hW62i", "76a91465a16059864a2fdbc7c99a4723a8395bc6f188eb88ac", "mainnet", "p2pkh"),
    ("3CMNFxN1oHBc4R1EpboAL5yzHGgE611Xou", "a91474f209f6ea907e2ea48f74fae05782ae8a66525787", "mainnet", "p2sh"),
    ("mo9ncXisMeAoXwqcV5EWuyncbmCcQN4rVs", "76a91453c0307d6851aa0ce7825ba883c6bd9ad242b48688ac", "testnet", "p2pkh"),
    ("2N2JD6wb56AfK4tfmM6PwdVmoYk2dCKf4Br", "a9146349a418fc4578d10a372b54b45c280cc8c4382f87", "testnet", "p2sh"),
]

# BIP-350 "invalid segwit addresses".
INVALID_BIP350 = [
    "tc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vq5zuyut",
    "bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqh2y7hd",
    "tb1z0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqglt7rf",
    "BC1S0XLXVLHEMJA6C4DQV22UAPCTQUPFHLXM9H8Z3K2E72Q4K9HCZ7VQ54WELL",
    "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kemeawh",
    "tb1q0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vq24jc47",
    "bc1p38j9r5y49hruaue7wxjce0updqjuyyx0kh56v8s25huc6995vvpql3jow4",
    "BC130XLXVLHEMJA6C4DQV22UAPCTQUPFHLXM9H8Z3K2E72Q4K9HCZ7VQ7ZWS8R",
    "bc1pw5dgrnzv",
    "bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7v8n0nx0muaewav253zgeav",
    "BC1QR508D6QEJXTDG4Y5R3ZARVARYV98GJ9P",
    "tb1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vq47Zagq",
    "bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7v07qwwzcrf",
    "tb1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vpggkg4j",
    "bc1gmk9yu",
]

# BIP-173 "invalid addresses", plus its v1 address that BIP-350 made invalid (bech32 checksum on v1).
INVALID_BIP173 = [
    "tc1qw508d6qejxtdg4y5r3zarvary0c5xw7kg3g4ty",
    "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t5",
    "BC13W508D6QEJXTDG4Y5R3ZARVARY0C5XW7KN40WF2",
    "bc1rw5uspcuh",
    "bc10w508d6qejxtdg4y5r3zarvary0c5xw7kw508d6qejxtdg4y5r3zarvary0c5xw7kw5rljs90",
    "BC1QR508D6QEJXTDG4Y5R3ZARVARYV98GJ9P",
    "tb1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3q0sL5k7",
    "bc1zw508d6qejxtdg4y5r3zarvaryvqyzf3du",
    "tb1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3pjxtptv",
    "bc1gmk9yu",
    "bc1pw508d6qejxtdg4y5r3zarvary0c5xw7kw508d6qejxtdg4y5r3zarvary0c5xw7k7grplx",
]

# Base58 addresses with one character changed, and other non-addresses.
INVALID_OTHER = [
    "1AGNa15ZQXAZUgFiqJ2i7Z2DPU2J6hW62j",
    "1ANNa15ZQXAZUgFiqJ2i7Z2DPU2J6hW62i",
    "1AGNa15ZQXAZUgFiqJ2i7Z2DPU2J6hW62iz",
    "1AGNa15ZQXAZUgFiqJ2i7Z2DPU2J6hW62I",
    "3CMNFxN1oHBc4R1EpboAL5yzHGgE611Xov",
    "0x71c20e241775e5332f143715df332f143789a71b",
    "bcrt1qn3h68k2u0rr49skx05qw7veynpf4lfppd2demu",
]


@pytest.mark.parametrize(("address", "script", "network", "kind"), VALID)
def test_valid_vectors_decode_to_their_script(address: str, script: str, network: str, kind: str) -> None:
    decoded = decode_address(address)
    assert decoded.valid, decoded.reason
    assert decoded.script_pubkey == script
    assert decoded.network == network
    assert decoded.type == kind


@pytest.mark.parametrize("address", INVALID_BIP350 + INVALID_BIP173 + INVALID_OTHER)
def test_invalid_vectors_are_rejected_with_a_reason(address: str) -> None:
    decoded = decode_address(address)
    assert not decoded.valid
    assert decoded.reason


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqh2y7hd", "must use the bech32m checksum"),
        ("bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kemeawh", "must use the bech32 checksum"),
        ("tc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vq5zuyut", "unknown network prefix 'tc'"),
        ("BC130XLXVLHEMJA6C4DQV22UAPCTQUPFHLXM9H8Z3K2E72Q4K9HCZ7VQ7ZWS8R", "witness version 17"),
        ("bc1pw5dgrnzv", "1 bytes"),
        ("tb1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vq47Zagq", "mixes upper and lower case"),
        ("1AGNa15ZQXAZUgFiqJ2i7Z2DPU2J6hW62j", "base58 checksum"),
    ],
)
def test_reasons_say_what_is_wrong(address: str, reason: str) -> None:
    assert reason in (decode_address(address).reason or "")


def test_test_networks_are_all_named() -> None:
    assert decode_address("tb1pqqqqp399et2xygdj5xreqhjjvcmzhxw4aywxecjdzew6hylgvsesf3hn0c").networks == [
        "testnet",
        "testnet4",
        "signet",
    ]
    assert "regtest" in decode_address("mo9ncXisMeAoXwqcV5EWuyncbmCcQN4rVs").networks


# --- through the gateway ------------------------------------------------------------------
BOAT = "1BoatSLRHtKNngkdXEeobR76b53LETtpyT"
BOAT_PATH = f"/api/address/{BOAT}"


@pytest.fixture
def esplora(upstream_server: UpstreamServer) -> UpstreamServer:
    upstream_server.serve_file(BOAT_PATH, "esplora/address_boat.json")
    return upstream_server


def overrides(server: UpstreamServer, timeout_s: float = 5.0) -> dict[str, object]:
    return {"esplora_url": f"{server.url}/api", "upstream_retry_backoff_s": 0, "esplora_timeout_s": timeout_s}


async def test_mainnet_address_gets_balance_and_is_cached(gateway_factory, esplora: UpstreamServer) -> None:
    async with gateway_factory(**overrides(esplora)) as gw:
        token = await gw.new_session(sats=50)
        data = assert_paid(await gw.call("bitcoin-address", {"address": BOAT}, token=token), 3)
        again = assert_paid(await gw.call("bitcoin-address", {"address": f" {BOAT} "}, token=token), 3)
    assert (data["cached"], again["cached"]) == (False, True)
    # ArkAPI's names: format, description and the balance object
    assert data["format"] == "base58"
    assert data["description"].startswith("Pay to public key hash")
    assert data["balance"] == {"confirmed_sats": 9087356201 - 9087123456, "unconfirmed_sats": 5460, "tx_count": 1721}
    assert data["valid"] is True
    assert data["network"] == "mainnet"
    assert data["type"] == "p2pkh"
    assert data["balance_sats"] == 9087356201 - 9087123456
    assert data["unconfirmed_balance_sats"] == 5460
    assert data["tx_count"] == 1721
    assert data["balance_source"] == "Esplora"
    assert esplora.hits(BOAT_PATH) == 1


async def test_testnet_address_is_validated_without_a_lookup(gateway_factory, esplora: UpstreamServer) -> None:
    async with gateway_factory(**overrides(esplora)) as gw:
        token = await gw.new_session(sats=50)
        address = "tb1pqqqqp399et2xygdj5xreqhjjvcmzhxw4aywxecjdzew6hylgvsesf3hn0c"
        data = assert_paid(await gw.call("bitcoin-address", {"address": address}, token=token), 3)
    assert data["type"] == "p2tr"
    assert data["witness_version"] == 1
    assert data["balance_sats"] is None
    assert data["balance"] is None
    assert (data["format"], data["description"]) == ("bech32m", "Taproot (segwit v1)")
    assert len(esplora.requests) == 0


async def test_invalid_address_is_an_answer_not_an_error(gateway_factory, esplora: UpstreamServer) -> None:
    async with gateway_factory(**overrides(esplora)) as gw:
        token = await gw.new_session(sats=50)
        data = assert_paid(
            await gw.call("bitcoin-address", {"address": "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t5"}, token=token),
            3,
        )
    assert data["valid"] is False
    assert data["reason"]
    assert len(esplora.requests) == 0


@pytest.mark.parametrize(
    "payload", [{}, {"address": ""}, {"address": "   "}, {"address": "1Boat SLR"}, {"address": "x" * 121}]
)
async def test_non_address_input_is_a_free_400(gateway_factory, esplora: UpstreamServer, payload: dict) -> None:
    async with gateway_factory(**overrides(esplora)) as gw:
        token = await gw.new_session(sats=50)
        await assert_not_charged(gw, await gw.call("bitcoin-address", payload, token=token), token, 50, 400)


@pytest.mark.parametrize("mode", ["fail", "hang"])
async def test_esplora_failure_answers_with_a_null_balance_as_arkapi_does(
    gateway_factory, esplora: UpstreamServer, mode: str
) -> None:
    """ArkAPI answers 200 with balance null when its explorer fails, and charges; so do we (documented)."""
    esplora.fail(BOAT_PATH, 500) if mode == "fail" else esplora.hang(BOAT_PATH)
    async with gateway_factory(**overrides(esplora, 0.3)) as gw:
        token = await gw.new_session(sats=50)
        resp = await gw.call("bitcoin-address", {"address": BOAT}, token=token)
        data = assert_paid(resp, 3)
        assert await gw.balance(token) == 47
        await gw.assert_ledger_consistent()
    assert data["valid"] is True and data["balance"] is None and data["cached"] is False
    assert "Esplora" in data["balance_error"]
    assert esplora.url not in resp.text
