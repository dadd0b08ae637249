"""domain-check: is a domain available, registered, or unknown, and on what evidence.

RDAP first (a 404 from the registry means available), then port-43 WHOIS with
per-registry "no match" wording (``NO_MATCH_PATTERNS`` in
``_security/registration.py``).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from arkgate.catalog._security.common import DomainRequest, note_ai_summary
from arkgate.catalog._security.registration import lookup
from arkgate.catalog.context import CallContext
from arkgate.catalog.registry import Endpoint


class DomainCheckResponse(BaseModel):
    domain: str
    availability: Literal["available", "registered", "unknown"]
    available: bool = Field(
        ..., description="ArkAPI's field: true only when the registry confirms no registration ('unknown' is false)."
    )
    registered: bool | None
    source: Literal["rdap", "whois", "none"]
    evidence: list[str]
    status: list[str] = []
    registrar: str | None = None
    expiry_date: str | None = None
    created_date: str = Field(default="", description="ArkAPI's: registration date, empty when unknown.")
    name_servers: list[str] = Field(default_factory=list, description="ArkAPI's: the delegated nameservers.")


async def handler(request: DomainRequest, ctx: CallContext) -> DomainCheckResponse:
    note_ai_summary(request, ctx)
    found = await lookup(request.domain, ctx)
    availability: Literal["available", "registered", "unknown"] = (
        "registered" if found.registered else "available" if found.registered is False else "unknown"
    )
    return DomainCheckResponse(
        domain=request.domain,
        availability=availability,
        # ArkAPI's available is a plain bool; an unknown verdict is not "available" (availability says unknown)
        available=found.registered is False,
        registered=found.registered,
        source=found.source,
        evidence=found.evidence,
        status=found.status,
        registrar=found.registrar,
        expiry_date=found.expiry_date,
        created_date=found.created_date or "",
        name_servers=found.nameservers,
    )


ENDPOINT = Endpoint(
    id="domain-check",
    price_sats=3,
    category="osint",
    summary="Domain name availability",
    description=(
        "Tells whether a domain is available, registered or unknown, from the registry's RDAP service "
        "(404 = available) or its port-43 WHOIS (per-registry 'no match' wording), with the evidence."
    ),
    request_model=DomainRequest,
    response_model=DomainCheckResponse,
    handler=handler,
    timeout_s=30,
    example={"domain": "example.com"},
)
