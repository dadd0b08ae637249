"""axfr-check: does any authoritative nameserver of a domain hand out the whole zone?

Each nameserver (every IPv4 and IPv6 address of every NS host) is asked for an
AXFR over TCP, concurrently. Nameserver addresses are user-influenced (a zone can
point its NS anywhere), so each one passes the outbound guard before it is
contacted; the port is ``ARKGATE_DNS_QUERY_PORT`` (53 in production).
"""

from __future__ import annotations

import asyncio
import ipaddress
from typing import Literal

import dns.asyncquery
import dns.exception
import dns.rcode
import dns.rdatatype
import dns.xfr
import dns.zone
from pydantic import BaseModel, Field, computed_field, field_serializer

from arkgate.catalog._security.common import Domain, note_ai_summary
from arkgate.catalog._security.dnsutil import query, query_many, raise_if_missing
from arkgate.catalog.context import CallContext
from arkgate.catalog.registry import Endpoint
from arkgate.errors import InputError, TargetRefusedError, UpstreamError, UpstreamTimeoutError
from arkgate.outbound.guard import get_guard
from arkgate.outbound.resolver import make_resolver

MAX_RECORDS = 500  # records listed in the response; the count covers them all
MAX_NAMESERVER_ADDRESSES = 16
_TRANSFER_LIFETIME_S = 10.0


class AxfrRequest(BaseModel):
    domain: Domain
    ai_summary: bool = Field(default=False, description="Accepted for ArkAPI compatibility; ignored (no cost).")


class ServerResult(BaseModel):
    nameserver: str
    address: str
    family: Literal["IPv4", "IPv6"]
    status: Literal["refused", "allowed", "timeout", "error", "skipped"] = Field(
        ...,
        description="refused: transfer denied (safe); allowed: the zone was handed out; "
        "timeout/error: no usable answer; skipped: address not public, not contacted.",
    )
    detail: str = ""
    record_count: int = 0


class ZoneRecord(BaseModel):
    name: str
    ttl: int
    type: str
    value: str

    @field_serializer("ttl")
    def _ttl_as_text(self, value: int) -> str:
        return str(value)  # ArkAPI's DNSRecord carries the TTL as a string


class AxfrResponse(BaseModel):
    domain: str
    allowed: bool = Field(..., description="True when at least one nameserver allowed the transfer.")
    explanation: str
    nameservers_checked: list[str]
    servers: list[ServerResult]
    transfer_record_count: int = Field(..., description="Records in the largest transfer obtained.")
    record_list: list[ZoneRecord] = Field(
        default_factory=list, description=f"Exposed records in zone order, at most {MAX_RECORDS}."
    )
    records_truncated: bool = False
    successful_nameserver: str = Field(default="", description="ArkAPI's: the first nameserver that allowed AXFR.")

    @computed_field(description="ArkAPI's 'records': the exposed records grouped by type.")  # type: ignore[prop-decorator]
    @property
    def records(self) -> dict[str, list[ZoneRecord]]:
        grouped: dict[str, list[ZoneRecord]] = {}
        for record in self.record_list:
            grouped.setdefault(record.type, []).append(record)
        return grouped

    @computed_field(description="ArkAPI's name for records_truncated.")  # type: ignore[prop-decorator]
    @property
    def truncated(self) -> bool:
        return self.records_truncated


async def _transfer(domain: str, ns: str, address: str, port: int) -> tuple[ServerResult, list[ZoneRecord]]:
    family: Literal["IPv4", "IPv6"] = "IPv6" if ":" in address else "IPv4"
    zone = dns.zone.Zone(domain + ".")

    def result(status: Literal["refused", "allowed", "timeout", "error"], detail: str, count: int = 0) -> ServerResult:
        return ServerResult(
            nameserver=ns, address=address, family=family, status=status, detail=detail, record_count=count
        )

    try:
        await dns.asyncquery.inbound_xfr(
            address, zone, port=port, timeout=_TRANSFER_LIFETIME_S / 2, lifetime=_TRANSFER_LIFETIME_S
        )
    except dns.xfr.TransferError as exc:
        rcode = dns.rcode.to_text(exc.rcode)
        return result("refused", f"transfer denied ({rcode})"), []
    except dns.exception.Timeout:
        return result("timeout", "no answer in time"), []
    except (OSError, EOFError, dns.exception.DNSException) as exc:
        return result("error", f"transfer failed: {type(exc).__name__}"), []
    records: list[ZoneRecord] = []
    for name, node in zone.nodes.items():
        owner = name.derelativize(zone.origin).to_text(omit_final_dot=True)  # type: ignore[arg-type]
        for rdataset in node.rdatasets:
            rdtype = dns.rdatatype.to_text(rdataset.rdtype)
            for rdata in rdataset:
                records.append(ZoneRecord(name=owner, ttl=rdataset.ttl, type=rdtype, value=rdata.to_text()))
    return result("allowed", "zone transfer allowed", len(records)), records


async def check(domain: str, ctx: CallContext) -> AxfrResponse:
    resolver = ctx.services.get(make_resolver)
    guard = ctx.services.get(get_guard)
    ns_answer = raise_if_missing(domain, await query(resolver, domain, "NS"))  # the shared DNS rule
    nameservers = sorted({r.value for r in ns_answer.records})
    if not nameservers:
        raise InputError(f"{domain} has no NS records of its own (is it a zone apex?)")
    questions = [(ns, t) for ns in nameservers for t in ("A", "AAAA")]
    answers = await query_many(resolver, questions)
    targets: list[tuple[str, str]] = []
    for (ns, _t), answer in answers.items():
        targets += [(ns, r.value) for r in answer.records]
    targets = list(dict.fromkeys(targets))[:MAX_NAMESERVER_ADDRESSES]
    if not targets:
        raise UpstreamError(f"the nameservers of {domain} have no addresses")

    skipped: list[ServerResult] = []
    jobs = []
    for ns, address in targets:
        reason = guard.refusal_reason(ipaddress.ip_address(address))
        if reason is not None:
            family: Literal["IPv4", "IPv6"] = "IPv6" if ":" in address else "IPv4"
            skipped.append(
                ServerResult(
                    nameserver=ns,
                    address=address,
                    family=family,
                    status="skipped",
                    detail=f"not contacted: {reason} address",
                )
            )
        else:
            jobs.append(_transfer(domain, ns, address, ctx.settings.dns_query_port))
    if not jobs:
        raise TargetRefusedError(f"target refused: every nameserver address of {domain} is non-public")
    outcomes = await asyncio.gather(*jobs)
    servers = [result for result, _ in outcomes] + skipped
    contacted = [s for s in servers if s.status != "skipped"]
    if all(s.status in ("timeout", "error") for s in contacted):
        if all(s.status == "timeout" for s in contacted):
            raise UpstreamTimeoutError(f"no nameserver of {domain} answered the transfer request in time")
        raise UpstreamError(f"no nameserver of {domain} gave a usable answer to the transfer request")
    best = max((records for _, records in outcomes), key=len)
    allowed_servers = [s for s in servers if s.status == "allowed"]
    if allowed_servers:
        names = ", ".join(sorted({f"{s.nameserver} ({s.address})" for s in allowed_servers}))
        explanation = (
            f"AXFR is allowed by {names}: anyone can download the whole zone, including internal host "
            "names. Restrict zone transfers to your secondary nameservers (by address or TSIG key)."
        )
    else:
        explanation = (
            "AXFR was not permitted by the checked authoritative nameservers, so no zone records were exposed."
        )
    return AxfrResponse(
        domain=domain,
        allowed=bool(allowed_servers),
        explanation=explanation,
        nameservers_checked=nameservers,
        servers=sorted(servers, key=lambda s: (s.nameserver, s.family, s.address)),
        transfer_record_count=len(best),
        record_list=best[:MAX_RECORDS],
        records_truncated=len(best) > MAX_RECORDS,
        successful_nameserver=min((s.nameserver for s in allowed_servers), default=""),
    )


async def handler(request: AxfrRequest, ctx: CallContext) -> AxfrResponse:
    note_ai_summary(request, ctx)
    return await check(request.domain, ctx)


ENDPOINT = Endpoint(
    id="axfr-check",
    price_sats=12,
    category="security",
    summary="Zone transfer (AXFR) exposure check",
    description=(
        "Asks every authoritative nameserver of a domain, over IPv4 and IPv6, for a full zone transfer and "
        "reports per server whether it was refused or allowed, with the exposed records when it was."
    ),
    request_model=AxfrRequest,
    response_model=AxfrResponse,
    handler=handler,
    timeout_s=30,
    example={"domain": "example.com"},
)
