"""Bearer tokens: parsing the header and finding the session, in constant time.

A token is a session's own or one of its sub-keys' (issue 17). ``require_caller`` accepts
both (paid calls, balance, receipts); ``require_parent`` (and ``require_session``, which
every money-moving route uses) answers a sub-key with 403: a sub-key may never create keys,
top up, withdraw or close.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from arkgate.db.engine import utcnow
from arkgate.errors import ForbiddenError, InvalidTokenError
from arkgate.payments import subkeys
from arkgate.payments.ledger import TOKEN_PREFIX, Ledger, SessionInfo, hash_token
from arkgate.payments.subkeys import SubKey


@dataclass(frozen=True, kw_only=True)
class Caller:
    """Who sent the token: a session, or a sub-key spending from it (``key`` set)."""

    session: SessionInfo
    key: SubKey | None = None


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


async def caller_by_token_hash(ledger: Ledger, token_hash: str) -> Caller:
    """The session or usable sub-key a token hash names; 401 if unknown, revoked or expired."""
    session = await ledger.session_by_token(token_hash)
    if session is not None:
        if session.status == "closed":
            raise InvalidTokenError("this session was closed")
        return Caller(session=session)
    key = await subkeys.key_by_token(ledger.db, token_hash)
    if key is None:
        raise InvalidTokenError("invalid or unknown session token")
    status = key.status(utcnow())
    if status != "active":
        raise InvalidTokenError(f"this key is {status}")
    parent = await ledger.session_by_id(key.session_id)
    if parent is None:
        raise InvalidTokenError("invalid or unknown session token")
    if parent.status == "closed":
        raise InvalidTokenError("this key's session was closed")
    return Caller(session=parent, key=key)


async def require_caller(request: Request, ledger: Ledger) -> Caller:
    """The bearer's session, or the sub-key (and its session) when the token is a sub-key's."""
    return await caller_by_token_hash(ledger, hash_token(require_token(request)))


async def require_parent(request: Request, ledger: Ledger, action: str = "do this") -> SessionInfo:
    """The bearer's session when the token is the session's own; 403 for a sub-key.

    ``action`` completes the refusal, e.g. ``"withdraw"``: "a sub-key cannot withdraw; ...".
    """
    caller = await require_caller(request, ledger)
    if caller.key is not None:
        raise ForbiddenError(
            f"a sub-key cannot {action}: it can only make paid calls and read its balance and receipts. "
            "Use the session's own token."
        )
    return caller.session


async def require_session(request: Request, ledger: Ledger) -> SessionInfo:
    """The bearer's own session (a sub-key gets 403): for everything but paid calls, balance and receipts."""
    return await require_parent(request, ledger)
