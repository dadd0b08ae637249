"""L402 macaroons on their own: layout, caveats, root key handling, header parsing."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import secrets

import pytest
from pymacaroons.serializers import BinarySerializer

from arkgate.db import migrate
from arkgate.db.engine import Database
from arkgate.errors import InvalidTokenError
from arkgate.services.l402 import L402, ROOT_KEY_FILE, load_root_key, parse_authorization


def paid_hash() -> tuple[str, str]:
    preimage = secrets.token_bytes(32)
    return preimage.hex(), hashlib.sha256(preimage).hexdigest()


def test_macaroon_binds_payment_hash_service_and_expiry(make_settings):
    l402 = L402(make_settings(), secrets.token_bytes(32))
    preimage, payment_hash = paid_hash()
    encoded = l402.mint(payment_hash, now=1_000)
    macaroon = BinarySerializer().deserialize_raw(base64.b64decode(encoded))
    identifier = macaroon.identifier_bytes
    assert identifier[:2] == b"\x00\x00" and identifier[2:34].hex() == payment_hash and len(identifier) == 66
    caveats = [c.caveat_id_bytes.decode() for c in macaroon.caveats]
    assert caveats == [
        "services=arkgate:0",
        f"arkgate_valid_until={1_000 + l402.validity_s}",
        f"payment_hash={payment_hash}",
    ]
    assert l402.verify(encoded, preimage, now=1_001) == payment_hash
    with pytest.raises(InvalidTokenError):
        l402.verify(encoded, preimage, now=1_000 + l402.validity_s)  # expired
    with pytest.raises(InvalidTokenError, match="preimage"):
        l402.verify(encoded, paid_hash()[0], now=1_001)
    with pytest.raises(InvalidTokenError, match="hex"):
        l402.verify(encoded, "not-hex", now=1_001)


async def test_root_key_is_generated_once_in_the_database_and_kept(make_settings):
    settings = make_settings()
    database = Database(settings.effective_database_url)
    try:
        await migrate.upgrade(database)
        # Instances starting together race to create it: one key wins and all of them use it.
        keys = await asyncio.gather(*(load_root_key(settings, database) for _ in range(8)))
        assert len(set(keys)) == 1
        first = await L402.shared(settings, database)
        preimage, payment_hash = paid_hash()
        encoded = first.mint(payment_hash)
        restarted = await L402.shared(settings, database)
        assert restarted.verify(encoded, preimage) == payment_hash  # a restart keeps the key
        assert not (settings.data_dir / ROOT_KEY_FILE).exists()  # nothing in the data directory
    finally:
        await database.dispose()
    other = L402(make_settings(l402_root_key="00112233445566778899aabbccddeeff"))
    with pytest.raises(InvalidTokenError):
        other.verify(encoded, preimage)  # another gateway's key does not verify it
    with pytest.raises(ValueError, match="16 bytes"):
        L402(make_settings(l402_root_key="short"))


async def test_a_key_left_in_the_data_directory_by_an_older_version_is_adopted(make_settings):
    settings = make_settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    old_key = secrets.token_bytes(32)
    (settings.data_dir / ROOT_KEY_FILE).write_text(old_key.hex())
    preimage, payment_hash = paid_hash()
    minted_before = L402(settings, old_key).mint(payment_hash)
    database = Database(settings.effective_database_url)
    try:
        await migrate.upgrade(database)
        assert (await L402.shared(settings, database)).verify(minted_before, preimage) == payment_hash
    finally:
        await database.dispose()


def test_another_service_name_is_refused(make_settings):
    settings = make_settings(l402_root_key="k" * 32)
    preimage, payment_hash = paid_hash()
    encoded = L402(settings).mint(payment_hash)
    renamed = L402(make_settings(l402_root_key="k" * 32, l402_service_name="elsewhere"))
    with pytest.raises(InvalidTokenError):
        renamed.verify(encoded, preimage)


def test_authorization_header_parsing():
    assert parse_authorization("Bearer ak_x") is None
    assert parse_authorization(None) is None
    assert parse_authorization("L402 abc:def") == ("abc", "def")
    assert parse_authorization("LSAT abc:def") == ("abc", "def")
    assert parse_authorization("l402 first,second:def") == ("first", "def")
    with pytest.raises(InvalidTokenError):
        parse_authorization("L402 nocolon")
