"""L402 (formerly LSAT): a macaroon bound to an invoice's payment hash, redeemed with its preimage.

Lightning Labs' scheme: a 402 answer carries ``WWW-Authenticate: L402 macaroon="...",
invoice="..."``; the client pays the invoice, learns the preimage, and retries with
``Authorization: L402 <macaroon>:<preimage>``. The server checks the macaroon's
signature and caveats and that ``sha256(preimage)`` is the payment hash the macaroon
names. Here every L402 invoice belongs to a session, so a verified L402 token simply
resolves to that session's token hash and the meter charges it like a bearer token:
it is reusable until the balance is spent.

Macaroon layout follows aperture's: identifier = version (uint16, 0) || payment hash
(32 bytes) || token id (32 bytes); first-party caveats ``services=<name>:0``,
``<name>_valid_until=<unix>`` and ``payment_hash=<hex>``. Each macaroon is signed with
``HMAC(root_key, token_id)`` so nothing has to be stored per macaroon.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import secrets
import struct
import time
from pathlib import Path

import structlog
from pymacaroons import MACAROON_V2, Macaroon, Verifier
from pymacaroons.exceptions import MacaroonException
from pymacaroons.serializers import BinarySerializer

from arkgate.db import keys
from arkgate.db.engine import Database
from arkgate.errors import InvalidTokenError
from arkgate.settings import Settings

log = structlog.get_logger("arkgate.l402")

SCHEMES = ("l402", "lsat")
IDENTIFIER_VERSION = 0
ROOT_KEY_FILE = "l402_root_key"  # where versions before 0.2 kept it; adopted once
ROOT_KEY_NAME = "l402_root_key"  # its name in the shared_keys table


def configured_root_key(settings: Settings) -> bytes | None:
    """The root key derived from ``ARKGATE_L402_ROOT_KEY``, or None when it is not set."""
    if settings.l402_root_key is None:
        return None
    value = settings.l402_root_key.get_secret_value().strip()
    try:
        raw = bytes.fromhex(value)
    except ValueError:
        raw = value.encode()
    if len(raw) < 16:
        raise ValueError("l402_root_key must carry at least 16 bytes of secret")
    return hashlib.sha256(b"arkgate-l402-root" + raw).digest()


async def load_root_key(settings: Settings, database: Database) -> bytes:
    """The configured root key, or the one shared by every instance through the database.

    Generated once by whichever instance starts first. A key an older version left in the
    data directory is adopted, so macaroons it minted stay valid after the upgrade.
    """
    configured = configured_root_key(settings)
    if configured is not None:
        return configured
    legacy = Path(settings.data_dir) / ROOT_KEY_FILE
    initial: bytes | None = None
    with contextlib.suppress(OSError, ValueError):
        initial = bytes.fromhex(legacy.read_text().strip())
    return await keys.shared_key(database, ROOT_KEY_NAME, initial=initial)


class L402:
    """Mints and verifies this gateway's L402 macaroons."""

    def __init__(self, settings: Settings, root_key: bytes | None = None) -> None:
        self.service = settings.l402_service_name
        self.validity_s = settings.l402_validity_s
        # Without a configured key, the shared one is loaded from the database at start-up.
        self._root_key = root_key if root_key is not None else configured_root_key(settings)

    @classmethod
    async def shared(cls, settings: Settings, database: Database) -> L402:
        """An L402 with the root key every instance on ``database`` shares."""
        return cls(settings, await load_root_key(settings, database))

    def _key(self, token_id: bytes) -> bytes:
        if self._root_key is None:
            raise RuntimeError("the L402 root key is not loaded yet")
        return hmac.new(self._root_key, token_id, hashlib.sha256).digest()

    def mint(self, payment_hash: str, *, now: float | None = None) -> str:
        """A base64 (standard alphabet) binary v2 macaroon bound to ``payment_hash``."""
        hash_bytes = bytes.fromhex(payment_hash)
        if len(hash_bytes) != 32:
            raise ValueError("payment hash must be 32 bytes")
        token_id = secrets.token_bytes(32)
        identifier = struct.pack(">H", IDENTIFIER_VERSION) + hash_bytes + token_id
        macaroon = Macaroon(location=self.service, identifier=identifier, key=self._key(token_id), version=MACAROON_V2)
        expires = int((now if now is not None else time.time()) + self.validity_s)
        macaroon.add_first_party_caveat(f"services={self.service}:0")
        macaroon.add_first_party_caveat(f"{self.service}_valid_until={expires}")
        macaroon.add_first_party_caveat(f"payment_hash={payment_hash}")
        return base64.b64encode(BinarySerializer().serialize_raw(macaroon)).decode()

    def verify(self, encoded_macaroon: str, preimage_hex: str, *, now: float | None = None) -> str:
        """The payment hash of a valid, paid-for macaroon; ``InvalidTokenError`` otherwise."""
        macaroon = _decode(encoded_macaroon)
        identifier: bytes = macaroon.identifier_bytes  # pymacaroons is untyped
        if len(identifier) != 66 or struct.unpack(">H", identifier[:2])[0] != IDENTIFIER_VERSION:
            raise InvalidTokenError("invalid L402 token: unknown macaroon identifier")
        payment_hash = identifier[2:34].hex()
        token_id = identifier[34:]
        instant = now if now is not None else time.time()

        verifier = Verifier()
        verifier.satisfy_general(lambda caveat: self._service_ok(caveat))
        verifier.satisfy_general(lambda caveat: _not_expired(caveat, f"{self.service}_valid_until=", instant))
        verifier.satisfy_exact(f"payment_hash={payment_hash}")
        try:
            verifier.verify(macaroon, self._key(token_id))
        except MacaroonException:
            raise InvalidTokenError(
                "invalid L402 token: the macaroon's signature or caveats do not verify (tampered or expired)"
            ) from None
        try:
            preimage = bytes.fromhex(preimage_hex.strip())
        except ValueError:
            raise InvalidTokenError("invalid L402 token: the preimage must be 64 hex characters") from None
        if len(preimage) != 32 or not hmac.compare_digest(hashlib.sha256(preimage).hexdigest(), payment_hash):
            raise InvalidTokenError("invalid L402 token: the preimage does not match the invoice's payment hash")
        return payment_hash

    def _service_ok(self, caveat: str) -> bool:
        if not caveat.startswith("services="):
            return False
        names = {part.split(":", 1)[0].strip() for part in caveat.removeprefix("services=").split(",")}
        return self.service in names


def _not_expired(caveat: str, prefix: str, now: float) -> bool:
    if not caveat.startswith(prefix):
        return False
    try:
        return now < int(caveat.removeprefix(prefix))
    except ValueError:
        return False


def _decode(encoded: str) -> Macaroon:
    text = encoded.strip()
    try:
        # Accept both base64 alphabets, padded or not: clients differ.
        raw = base64.b64decode(text.replace("-", "+").replace("_", "/") + "=" * (-len(text) % 4), validate=True)
        return BinarySerializer().deserialize_raw(raw)
    except Exception:  # binascii, struct, index and pymacaroons errors alike on garbage input
        raise InvalidTokenError("invalid L402 token: the macaroon cannot be decoded") from None


def parse_authorization(header: str | None) -> tuple[str, str] | None:
    """(macaroon, preimage) from ``L402 <macaroon>:<preimage>`` or ``LSAT ...``; None for other schemes."""
    if not header:
        return None
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() not in SCHEMES:
        return None
    macaroon, sep, preimage = value.strip().rpartition(":")
    if not sep or not macaroon or not preimage:
        raise InvalidTokenError("invalid L402 token: expected 'Authorization: L402 <macaroon>:<preimage>'")
    # Several macaroons may be sent comma-separated; ours is always a single one.
    return macaroon.split(",")[0], preimage


def challenge_header(macaroon: str, invoice: str) -> str:
    return f'L402 macaroon="{macaroon}", invoice="{invoice}"'
