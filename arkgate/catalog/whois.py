"""whois: registration data of a domain, RDAP first and port-43 WHOIS as the fallback.

Parsed into registrar, dates, status, nameservers and DNSSEC, with the raw WHOIS
text (or the RDAP object) beside it. See ``_security/registration.py``.
"""

from __future__ import annotations

from arkgate.catalog._security.common import DomainRequest, note_ai_summary
from arkgate.catalog._security.registration import Registration, lookup
from arkgate.catalog.context import CallContext
from arkgate.catalog.registry import Endpoint


async def handler(request: DomainRequest, ctx: CallContext) -> Registration:
    note_ai_summary(request, ctx)
    return await lookup(request.domain, ctx)


ENDPOINT = Endpoint(
    id="whois",
    price_sats=5,
    category="osint",
    summary="Parsed domain registration data (RDAP, WHOIS)",
    description=(
        "Looks a domain up in its registry's RDAP service, falling back to port-43 WHOIS, and returns the "
        "registrar, creation/update/expiry dates, status codes, nameservers and DNSSEC state, plus the raw answer."
    ),
    request_model=DomainRequest,
    response_model=Registration,
    handler=handler,
    timeout_s=30,
    example={"domain": "example.com"},
)
