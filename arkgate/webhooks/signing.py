"""Standard Webhooks signatures (https://www.standardwebhooks.com): the library signs, we pick keys.

A session's secret is ``whsec_`` + base64 of 24 random bytes, as the specification shows. The
operator's ``ARKGATE_WEBHOOK_SECRET`` is used the same way when it has that form, otherwise its
UTF-8 bytes are the key (``Webhook(secret.encode())`` on the receiving side).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from datetime import UTC, datetime

from standardwebhooks import Webhook

SECRET_PREFIX = "whsec_"  # noqa: S105 (the format's prefix, not a secret)


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(24)).decode()


def signer_for(secret: str) -> Webhook:
    """The library's ``Webhook`` for a ``whsec_`` secret, or for a plain string's bytes."""
    if secret.startswith(SECRET_PREFIX):
        return Webhook(secret)
    return Webhook(secret.encode())


def new_message_id() -> str:
    return "msg_" + secrets.token_hex(16)


def standard_headers(signer: Webhook, message_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The three Standard Webhooks headers for one attempt (the id stays, the timestamp is fresh)."""
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signer.sign(message_id, datetime.fromtimestamp(timestamp, UTC), body),
    }


def legacy_signature(secret: str, timestamp: int, body: bytes) -> str:
    """The operator's older ``X-Arkgate-Signature`` ``v1`` value: HMAC-SHA256 of ``"<t>." + body``, hex."""
    return hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()
