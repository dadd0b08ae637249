"""barkd's bearer token: base64url-no-pad of ``0x00 || 32 random bytes`` in ``<datadir>/auth_token``."""

from __future__ import annotations

import base64
import hmac
import os
import secrets
from pathlib import Path

TOKEN_FILE = "auth_token"  # noqa: S105 - a file name, not a secret


def generate_token() -> str:
    """A fresh 44-character token whose first character is always ``A`` (version byte 0)."""
    return base64.urlsafe_b64encode(b"\x00" + secrets.token_bytes(32)).decode().rstrip("=")


def load_or_create_token(state_dir: Path) -> str:
    """Reuse the token file if present (as barkd does), else write one owner-only."""
    path = state_dir / TOKEN_FILE
    state_dir.mkdir(parents=True, exist_ok=True)
    if path.exists():
        return path.read_text().strip()
    token = generate_token()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(token)
    return token


def _decode(token: str) -> bytes | None:
    token = token.strip()
    if len(token) != 44:
        return None
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except ValueError:
        return None
    return raw if len(raw) == 33 and raw[0] == 0 else None


def check_header(values: list[str], expected: str) -> str | None:
    """The 401 reason for the ``Authorization`` header values, or None when authorised."""
    if len(values) > 1:
        return "multiple authorization headers are not allowed"
    if not values or not values[0].startswith("Bearer "):
        return "missing auth token"
    presented = _decode(values[0][len("Bearer ") :])
    wanted = _decode(expected)
    if presented is None or wanted is None or not hmac.compare_digest(presented, wanted):
        return "invalid auth token"
    return None
