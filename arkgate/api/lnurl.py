"""Lightning addresses (LUD-16, over LNURL-pay LUD-06) turned into a BOLT11 invoice for a withdrawal.

Both requests go through the outbound guard: a user-given host is never reached unvetted.
"""

from __future__ import annotations

import json
from typing import Any

import httpx

from arkgate.errors import InputError, UpstreamError
from arkgate.outbound.guard import OutboundGuard
from arkgate.payments.barkd import invoice_details

_MAX_BYTES = 64_000


def pay_request_url(destination: str) -> str:
    """The LNURL-pay endpoint of a Lightning address ``user@domain`` (LUD-16)."""
    text = destination.strip()
    if text.lower().startswith("lightning:"):
        text = text[10:]
    if text.lower().startswith("lnurl"):
        raise InputError("bech32 LNURL strings are not supported yet: use the Lightning address (name@domain)")
    user, _, domain = text.partition("@")
    if not user or not domain or any(c in user for c in "/?#") or any(c in domain for c in "/?#@"):
        raise InputError("destination is not a valid Lightning address (name@domain)")
    return f"https://{domain}/.well-known/lnurlp/{user}"


async def _get_json(guard: OutboundGuard, url: str) -> dict[str, Any]:
    result = await guard.fetch(url, max_bytes=_MAX_BYTES, headers={"Accept": "application/json"})
    try:
        body = json.loads(result.text)
    except ValueError as exc:
        raise UpstreamError("the Lightning address did not answer with JSON") from exc
    if not isinstance(body, dict):
        raise UpstreamError("the Lightning address answered something other than a JSON object")
    if str(body.get("status", "")).upper() == "ERROR":
        raise InputError(f"the Lightning address refused: {str(body.get('reason') or 'no reason given')[:200]}")
    if result.status_code != 200:
        raise UpstreamError(f"the Lightning address answered HTTP {result.status_code}")
    return body


async def invoice_for(guard: OutboundGuard, destination: str, amount_sats: int) -> str:
    """Ask the payee's LNURL-pay service for an invoice of exactly ``amount_sats`` and check it."""
    offer = await _get_json(guard, pay_request_url(destination))
    if offer.get("tag") != "payRequest" or not isinstance(offer.get("callback"), str):
        raise UpstreamError("the Lightning address is not an LNURL-pay service")
    msat = amount_sats * 1000
    low, high = int(offer.get("minSendable") or 1000), int(offer.get("maxSendable") or 0)
    if not low <= msat <= high:
        raise InputError(f"this Lightning address accepts between {-(-low // 1000)} and {high // 1000} sats")
    callback = httpx.URL(offer["callback"]).copy_merge_params({"amount": msat})
    answer = await _get_json(guard, str(callback))
    invoice = answer.get("pr")
    if not isinstance(invoice, str):
        raise UpstreamError("the Lightning address returned no invoice")
    try:
        _, invoice_sats, _ = invoice_details(invoice)
    except Exception as exc:  # the decoder raises many kinds on garbage
        raise UpstreamError("the Lightning address returned an invalid invoice") from exc
    if invoice_sats != amount_sats:
        raise UpstreamError("the Lightning address returned an invoice for another amount; nothing was paid")
    return invoice
