"""Bearer tokens: parsing the header and finding the session, in constant time."""

from __future__ import annotations

from fastapi import Request

from arkgate.errors import InvalidTokenError
from arkgate.payments.ledger import TOKEN_PREFIX, Ledger, SessionInfo, hash_token


def bearer_token(request: Request) -> str | None:
    """The session token from ``Authorization: Bearer ak_...`` (None when absent)."""
    header = request.headers.get("authorization")
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


def require_token(request: Request) -> str:
    token = bearer_token(request)
    if token is None:
        raise InvalidTokenError("missing session token: send 'Authorization: Bearer ak_...'")
    if not token.startswith(TOKEN_PREFIX) or len(token) > 100:
        raise InvalidTokenError("invalid session token")
    return token


async def require_session(request: Request, ledger: Ledger) -> SessionInfo:
    session = await ledger.session_by_token(hash_token(require_token(request)))
    if session is None:
        raise InvalidTokenError("invalid or unknown session token")
    if session.status == "closed":
        raise InvalidTokenError("this session was closed")
    return session
