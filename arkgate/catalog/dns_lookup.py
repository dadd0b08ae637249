"""dns-lookup: every common record type of a domain, with TTLs, as structured JSON.

Queries go through the configured resolver (``ARKGATE_DNS_NAMESERVERS``) with
dnspython's async resolver, all types concurrently; ArkAPI's flat lists (``a``,
``mx``, ``ns``...) are kept beside the structured ``records``.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from arkgate.catalog._security.common import DomainRequest, note_ai_summary
from arkgate.catalog._security.dnsutil import RECORD_TYPES, SRV_SERVICES, DnsRecord, query_many, require_existing
from arkgate.catalog.context import CallContext
from arkgate.catalog.registry import Endpoint
from arkgate.outbound.resolver import make_resolver


class DnsLookupResponse(BaseModel):
    domain: str
    status: str = Field(..., description="NOERROR (a name that does not exist is a free 404 domain_not_found).")
    records: dict[str, list[DnsRecord]] = Field(
        ..., description="Records by type (A, AAAA, CNAME, MX, NS, TXT, SOA, CAA, SRV), each with its TTL."
    )
    a: list[str] = []
    aaaa: list[str] = []
    cname: list[str] = []
    mx: list[str] = Field(default_factory=list, description="'preference exchange', as ArkAPI lists them.")
    ns: list[str] = []
    txt: list[str] = []
    soa: dict[str, str | int] | None = None
    caa: list[str] = []
    srv: list[str] = Field(default_factory=list, description="SRV records found under common service names.")
    record_count: int


async def lookup(domain: str, ctx: CallContext) -> DnsLookupResponse:
    resolver = ctx.services.get(make_resolver)
    questions = [(domain, t) for t in RECORD_TYPES] + [(f"{svc}.{domain}", "SRV") for svc in SRV_SERVICES]
    answers = await query_many(resolver, questions)
    by_type: dict[str, list[DnsRecord]] = {}
    for (_name, rdtype), answer in answers.items():
        if answer.records:
            by_type.setdefault(rdtype, []).extend(answer.records)
    status = answers[(domain, "SOA")].status
    if any(a.status == "NOERROR" for a in answers.values()):
        status = "NOERROR"

    def values(rdtype: str) -> list[str]:
        return [r.value for r in by_type.get(rdtype, [])]

    soa_records = by_type.get("SOA", [])
    return DnsLookupResponse(
        domain=domain,
        status=status,
        records=by_type,
        a=values("A"),
        aaaa=values("AAAA"),
        cname=values("CNAME"),
        mx=values("MX"),
        ns=values("NS"),
        txt=values("TXT"),
        soa=soa_records[0].data if soa_records else None,
        caa=values("CAA"),
        srv=[f"{r.name} {r.value}" for r in by_type.get("SRV", [])],
        record_count=sum(len(v) for v in by_type.values()),
    )


async def handler(request: DomainRequest, ctx: CallContext) -> DnsLookupResponse:
    note_ai_summary(request, ctx)
    await require_existing(ctx.services.get(make_resolver), request.domain)  # the shared DNS rule
    return await lookup(request.domain, ctx)


ENDPOINT = Endpoint(
    id="dns-lookup",
    price_sats=3,
    category="osint",
    summary="DNS records of a domain",
    description=(
        "Looks up A, AAAA, CNAME, MX, NS, TXT, SOA, CAA and common SRV records of a domain and returns "
        "them as structured JSON with their TTLs."
    ),
    request_model=DomainRequest,
    response_model=DnsLookupResponse,
    handler=handler,
    timeout_s=20,
    example={"domain": "example.com"},
)
