"""Sub-keys of a session (issue 17): create, list, inspect and revoke capped child tokens.

Only the session's own token manages keys (``require_parent``); the spending rules live in
``payments/charging.py`` and the storage in ``payments/subkeys.py``.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from arkgate.api.sessions import _json_body_schema, lenient_body
from arkgate.db.engine import utcnow
from arkgate.errors import ConflictError, InputError, NotFoundError
from arkgate.payments import subkeys
from arkgate.payments.ledger import SessionInfo, hash_token, new_token
from arkgate.runtime import Runtime, runtime
from arkgate.services.auth import require_parent
from arkgate.services.envelope import json_response, validation_message
from arkgate.services.sessions import key_view

router = APIRouter(tags=["session"])

MAX_EXPIRES_IN_S = 366 * 86400
MAX_CAP_SATS = 21_000_000 * 100_000_000  # every bitcoin there will be; keeps the counters in a BIGINT


class CreateKey(BaseModel):
    model_config = ConfigDict(extra="forbid")

    label: str = Field("", max_length=100, description="A name for the key, shown on receipts.")
    cap_sats: int | None = Field(
        None, ge=1, le=MAX_CAP_SATS, description="The most the key may ever spend; null: no total cap."
    )
    daily_cap_sats: int | None = Field(
        None, ge=1, le=MAX_CAP_SATS, description="The most the key may spend per UTC day; null: none."
    )
    allowed: list[str] | None = Field(
        None, max_length=200, description="Endpoint ids or categories the key may call; null: every endpoint."
    )
    expires_in: int | None = Field(None, ge=1, le=MAX_EXPIRES_IN_S, description="Seconds until the key expires.")


def _validate_allowed(rt: Runtime, allowed: list[str] | None) -> tuple[str, ...] | None:
    if allowed is None:
        return None
    categories = rt.catalog.categories()
    unknown = [name for name in allowed if name not in rt.catalog and name not in categories]
    if unknown:
        raise InputError(
            f"allowed names no endpoint id or category: {', '.join(unknown[:5])}; "
            f"categories are {', '.join(sorted(categories))}"
        )
    return tuple(dict.fromkeys(allowed))


async def create_sub_key(rt: Runtime, session: SessionInfo, body: CreateKey) -> dict[str, Any]:
    """Create a sub-key of ``session``; shared by the HTTP API and MCP. The answer holds its token, once."""
    allowed = _validate_allowed(rt, body.allowed)
    if session.funded_at is None:
        raise ConflictError("fund the session before creating keys for it")
    if await subkeys.count_keys(rt.database, session.id) >= subkeys.MAX_KEYS_PER_SESSION:
        raise ConflictError(f"a session may have at most {subkeys.MAX_KEYS_PER_SESSION} keys")
    token = new_token()
    now = utcnow()
    key = await subkeys.create_key(
        rt.database,
        session.id,
        hash_token(token),
        subkeys.NewKey(
            label=body.label,
            cap_sats=body.cap_sats,
            daily_cap_sats=body.daily_cap_sats,
            allowed=allowed,
            expires_at=None if body.expires_in is None else now + timedelta(seconds=body.expires_in),
        ),
    )
    return {"token": token, **key_view(key, now)}


@router.post(
    "/v1/sessions/me/keys",
    status_code=201,
    summary="Create a capped sub-key that spends from this session",
    openapi_extra=_json_body_schema(CreateKey),
)
async def create_key(request: Request) -> Response:
    rt = runtime(request)
    session = await require_parent(request, rt.ledger, "create keys")
    try:
        body: CreateKey = await lenient_body(request, CreateKey)
    except ValidationError as exc:
        raise InputError(validation_message(exc)) from None
    return json_response(await create_sub_key(rt, session, body), 201)


@router.get("/v1/sessions/me/keys", summary="The session's sub-keys")
async def list_keys(request: Request) -> Response:
    rt = runtime(request)
    session = await require_parent(request, rt.ledger, "list keys")
    now = utcnow()
    keys = [key_view(k, now) for k in await subkeys.keys_of(rt.database, session.id)]
    return json_response({"keys": keys, "count": len(keys)})


@router.get("/v1/sessions/me/keys/{key_id}", summary="One sub-key: its limits and what it spent")
async def get_key(request: Request, key_id: str) -> Response:
    rt = runtime(request)
    session = await require_parent(request, rt.ledger, "inspect keys")
    key = await subkeys.key_of(rt.database, session.id, key_id)
    if key is None:
        raise NotFoundError(f"this session has no key {key_id[:40]!r}")
    return json_response(key_view(key, utcnow()))


@router.delete("/v1/sessions/me/keys/{key_id}", summary="Revoke a sub-key at once")
async def revoke_key(request: Request, key_id: str) -> Response:
    rt = runtime(request)
    session = await require_parent(request, rt.ledger, "revoke keys")
    key = await subkeys.revoke_key(rt.database, session.id, key_id)
    if key is None:
        raise NotFoundError(f"this session has no key {key_id[:40]!r}")
    return json_response(key_view(key, utcnow()))
