"""Address, invoice and token encodings."""

from __future__ import annotations

import base64
import hashlib
import os
import stat
from pathlib import Path

import bolt11
import pytest

from arkgate.simulator import keys
from arkgate.simulator.addresses import (
    AddressError,
    bech32m_decode,
    bech32m_encode,
    decode_ark_address,
    encode_ark_address,
)
from arkgate.simulator.auth import check_header, generate_token, load_or_create_token
from arkgate.simulator.invoices import encode_invoice


def test_ark_address_round_trips_and_uses_network_hrp() -> None:
    user = keys.wallet_pubkey(b"\x01" * 32, 7)
    test_addr = encode_ark_address("signet", keys.server_pubkey(), user)
    main_addr = encode_ark_address("bitcoin", keys.server_pubkey(), user)
    assert test_addr.startswith("tark1")
    assert main_addr.startswith("ark1")
    decoded = decode_ark_address(test_addr)
    assert decoded.user_pubkey == user
    assert decoded.server_pubkey == keys.server_pubkey()


def test_bech32m_rejects_a_tampered_string() -> None:
    text = bech32m_encode("tark", b"\x00" * 67)
    assert bech32m_decode(text) == ("tark", b"\x00" * 67)
    tampered = text[:-1] + ("q" if text[-1] != "q" else "p")
    with pytest.raises(AddressError):
        bech32m_decode(tampered)


@pytest.mark.parametrize(
    ("network", "prefix", "check"),
    [("signet", "lntbs", "is_signet"), ("regtest", "lnbcrt", "is_regtest"), ("bitcoin", "lnbc21u", "is_mainnet")],
)
def test_invoices_decode_with_the_bolt11_package(network: str, prefix: str, check: str) -> None:
    payment_hash = hashlib.sha256(b"preimage").hexdigest()
    text = encode_invoice(
        network=network,
        amount_sat=2100,
        payment_hash=payment_hash,
        payment_secret="11" * 32,
        description="test",
        expiry_s=600,
        node_secret=keys.node_secret(),
    )
    assert text.startswith(prefix)
    decoded = bolt11.decode(text)
    assert decoded.amount_msat == 2_100_000
    assert decoded.payment_hash == payment_hash
    assert decoded.expiry_time - decoded.date == 600
    assert getattr(decoded, check)()


def test_token_is_44_chars_version_zero_and_file_is_owner_only(tmp_path: Path) -> None:
    token = load_or_create_token(tmp_path)
    assert len(token) == 44 and token[0] == "A"
    assert base64.urlsafe_b64decode(token + "=")[0] == 0
    assert stat.S_IMODE(os.stat(tmp_path / "auth_token").st_mode) == 0o600
    assert load_or_create_token(tmp_path) == token


@pytest.mark.parametrize(
    ("values", "reason"),
    [
        ([], "missing auth token"),
        (["Basic abc"], "missing auth token"),
        (["bearer {token}"], "missing auth token"),
        (["Bearer nope"], "invalid auth token"),
        (["Bearer {other}"], "invalid auth token"),
        (["Bearer {token}", "Bearer {token}"], "multiple authorization headers are not allowed"),
        (["Bearer {token}"], None),
        (["Bearer  {token} "], None),
    ],
)
def test_auth_header_rules(values: list[str], reason: str | None) -> None:
    token, other = generate_token(), generate_token()
    headers = [v.format(token=token, other=other) for v in values]
    assert check_header(headers, token) == reason
