"""DNS queries shared by dns-lookup, axfr-check, email-auth-check and domain-intel.

Each of them starts with ``require_existing`` (or ``raise_if_missing`` on its first
answer), so a name that does not exist is the same free 404 ``domain_not_found``
everywhere and a failing resolver the same refunded 502/504 (the rule lives in
``arkgate/outbound/resolver.py``, shared with the outbound guard).
"""

from __future__ import annotations

import asyncio
from typing import Any

import dns.asyncresolver
import dns.exception
import dns.name
import dns.rdata
import dns.rdatatype
import dns.resolver
from pydantic import BaseModel, Field, computed_field, field_serializer

from arkgate.outbound.resolver import domain_not_found, resolver_failure

RECORD_TYPES = ("A", "AAAA", "CNAME", "MX", "NS", "TXT", "SOA", "CAA")
# SRV lives under service labels; these are the ones worth a look on a typical domain.
SRV_SERVICES = (
    "_sip._tcp",
    "_sips._tcp",
    "_sip._udp",
    "_xmpp-client._tcp",
    "_xmpp-server._tcp",
    "_submission._tcp",
    "_imaps._tcp",
    "_autodiscover._tcp",
    "_caldavs._tcp",
    "_matrix._tcp",
)


class DnsRecord(BaseModel):
    name: str = Field(..., description="Owner name, without the trailing dot.")
    type: str
    ttl: int = Field(..., description="Time to live in seconds.")
    value: str = Field(..., description="The record in presentation form.")
    data: dict[str, Any] | None = Field(default=None, description="Structured fields for MX, SOA, CAA, SRV and TXT.")

    # ArkAPI sends the TTL as a string ("300"); the number stays in ttl_seconds.
    @field_serializer("ttl")
    def _ttl_as_text(self, value: int) -> str:
        return str(value)

    @computed_field(description="Time to live in seconds, as a number.")  # type: ignore[prop-decorator]
    @property
    def ttl_seconds(self) -> int:
        return self.ttl


class Answer(BaseModel):
    status: str  # NOERROR, NXDOMAIN, NODATA
    records: list[DnsRecord] = []


def _structured(rdtype: str, rdata: dns.rdata.Rdata) -> tuple[str, dict[str, Any] | None]:
    r: Any = rdata
    if rdtype in ("A", "AAAA"):
        return r.address, None
    if rdtype in ("CNAME", "NS"):
        return r.target.to_text(omit_final_dot=True), None
    if rdtype == "MX":
        exchange = r.exchange.to_text(omit_final_dot=True) or "."
        return f"{r.preference} {exchange}", {"preference": r.preference, "exchange": exchange}
    if rdtype == "TXT":
        text = b"".join(r.strings).decode("utf-8", errors="replace")
        return text, {"strings": [s.decode("utf-8", errors="replace") for s in r.strings]}
    if rdtype == "SOA":
        data = {
            "mname": r.mname.to_text(omit_final_dot=True),
            "rname": r.rname.to_text(omit_final_dot=True),
            "serial": r.serial,
            "refresh": r.refresh,
            "retry": r.retry,
            "expire": r.expire,
            "minimum": r.minimum,
        }
        return rdata.to_text(), data
    if rdtype == "CAA":
        data = {"flags": r.flags, "tag": r.tag.decode(), "value": r.value.decode("utf-8", errors="replace")}
        return f'{r.flags} {data["tag"]} "{data["value"]}"', data
    if rdtype == "SRV":
        target = r.target.to_text(omit_final_dot=True)
        data = {"priority": r.priority, "weight": r.weight, "port": r.port, "target": target}
        return f"{r.priority} {r.weight} {r.port} {target}", data
    return rdata.to_text(), None


async def query(resolver: dns.asyncresolver.Resolver, name: str, rdtype: str) -> Answer:
    """One question; NXDOMAIN/NODATA are answers, timeouts and dead servers are upstream errors."""
    try:
        answer = await resolver.resolve(dns.name.from_text(name), rdtype, search=False)
    except dns.resolver.NXDOMAIN:
        return Answer(status="NXDOMAIN")
    except dns.resolver.NoAnswer:
        return Answer(status="NODATA")
    except dns.exception.DNSException as exc:
        raise resolver_failure(name, exc) from exc
    rrset = answer.rrset
    records: list[DnsRecord] = []
    if rrset is not None:
        owner = rrset.name.to_text(omit_final_dot=True)
        for rdata in rrset:
            value, data = _structured(rdtype, rdata)
            records.append(DnsRecord(name=owner, type=rdtype, ttl=rrset.ttl, value=value, data=data))
    return Answer(status="NOERROR", records=records)


async def query_many(
    resolver: dns.asyncresolver.Resolver, questions: list[tuple[str, str]]
) -> dict[tuple[str, str], Answer]:
    """Ask several questions concurrently."""
    answers = await asyncio.gather(*(query(resolver, name, rdtype) for name, rdtype in questions))
    return dict(zip(questions, answers, strict=True))


async def txt_values(resolver: dns.asyncresolver.Resolver, name: str) -> list[str]:
    answer = await query(resolver, name, "TXT")
    return [r.value for r in answer.records]


def raise_if_missing(domain: str, answer: Answer) -> Answer:
    """``answer`` for the caller's own ``domain``, or the free 404 when it says NXDOMAIN."""
    if answer.status == "NXDOMAIN":
        raise domain_not_found(domain)
    return answer


async def require_existing(resolver: dns.asyncresolver.Resolver, domain: str) -> Answer:
    """Ask for the domain's SOA before any paid work: 404 if it does not exist, 502/504 if the resolver fails."""
    return raise_if_missing(domain, await query(resolver, domain, "SOA"))
