"""L402 as a way to authenticate a paid call: a verified token resolves to its session.

The macaroons themselves (minting, verifying, the root key) are ``arkgate.services.l402``; here
the resolver the meter asks, and the catch-up that credits a just-paid invoice.
"""

from __future__ import annotations

import asyncio
import contextlib

from fastapi import Request

from arkgate.errors import ArkgateError, InvalidTokenError
from arkgate.runtime import Runtime, runtime
from arkgate.services.l402 import parse_authorization


async def l402_token_hash(request: Request) -> str | None:
    """Token resolver for the meter: a verified L402 token → its session's token hash."""
    parsed = parse_authorization(request.headers.get("authorization"))
    if parsed is None:
        return None
    rt = runtime(request)
    l402 = rt.l402
    if l402 is None:
        raise InvalidTokenError("L402 is not enabled on this gateway; use 'Authorization: Bearer ak_...'")
    payment_hash = l402.verify(*parsed)
    invoice = await rt.ledger.invoice(payment_hash)
    if invoice is None or invoice.session_id is None:
        raise InvalidTokenError("invalid L402 token: unknown invoice")
    if invoice.status != "paid":
        await _catch_up(rt, payment_hash)
    session = await rt.ledger.session_by_id(invoice.session_id)
    if session is None:
        raise InvalidTokenError("invalid L402 token: its session no longer exists")
    return session.token_hash


async def _catch_up(rt: Runtime, payment_hash: str) -> None:
    """The preimage proves payment; if the watcher has not credited it yet, have it look now."""
    if rt.barkd is None or rt.watcher is None:
        return
    with contextlib.suppress(ArkgateError, TimeoutError, asyncio.TimeoutError):
        async with asyncio.timeout(rt.settings.barkd_timeout_s):
            status = await rt.barkd.receive_status(payment_hash)
            if status.is_paid:
                await rt.watcher.reconcile()
