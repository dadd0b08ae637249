"""Domain registration data: RDAP first, port-43 WHOIS as the fallback.

Used by whois, domain-check and domain-intel. The RDAP base URL of a TLD comes
from the IANA bootstrap file (``rdap_bootstrap_url``, cached per app) or from
``rdap_base_url``; WHOIS servers come from asyncwhois's IANA map or
``whois_server``. Both are operator-side upstreams, reached with the pooled
upstream client and the project's resolver; the user only chooses the domain.
Registrar referrals are not followed: the registry answer is enough for the
fields reported and a referral would be a user-influenced host.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import re
import time
from datetime import datetime
from typing import Any, Literal

import dns.exception
import httpx
from asyncwhois.parse import TLDBaseKeys
from asyncwhois.parse_tld import DomainParser
from asyncwhois.query import DomainQuery
from pydantic import BaseModel, Field, computed_field

from arkgate.catalog._security.common import iso
from arkgate.catalog.context import CallContext
from arkgate.errors import ArkgateError, InputError, UpstreamError, UpstreamTimeoutError
from arkgate.outbound.resolver import make_resolver

MAX_WHOIS_BYTES = 64_000
MAX_RDAP_BYTES = 512_000

# Registry answers meaning "this name is not registered", by registry (port-43 text).
NO_MATCH_PATTERNS: tuple[tuple[str, str], ...] = (
    (r'^\s*No match for "?[^"\s]+"?\.?', "Verisign/Nominet style 'No match for'"),
    (r"This domain name has not been registered", "Nominet .uk 'has not been registered'"),
    (r"^\s*Status:\s*free\s*$", "DENIC .de 'Status: free'"),
    (r"^\s*Status:\s*AVAILABLE\s*$", "EURid .eu 'Status: AVAILABLE'"),
    (r"\bis free\b", "SIDN .nl 'is free'"),
    (r"^%% NOT FOUND", "AFNIC .fr '%% NOT FOUND'"),
    (r"^\s*Domain not found\.?\s*$", "PIR/Identity Digital 'Domain not found'"),
    (r"^\s*NOT FOUND\s*$", "'NOT FOUND'"),
    (r"No Data Found", "'No Data Found'"),
    (r"^\s*No entries found", "'No entries found'"),
    (r"The queried object does not exist", "'The queried object does not exist'"),
    (r"Domain .* is available for (?:purchase|registration)", "'is available for registration'"),
)
_NO_MATCH = [(re.compile(p, re.IGNORECASE | re.MULTILINE), label) for p, label in NO_MATCH_PATTERNS]


class Registration(BaseModel):
    domain: str
    registered: bool | None = Field(..., description="True, False (available), or None when unknown.")
    source: Literal["rdap", "whois", "none"]
    registrar: str | None = None
    registrar_iana_id: str | None = None
    created_date: str | None = None
    updated_date: str | None = None
    expiry_date: str | None = None
    status: list[str] = []
    nameservers: list[str] = []
    dnssec: bool | None = None
    evidence: list[str] = Field(
        default_factory=list, description="Why the verdict was reached (RDAP status, WHOIS pattern)."
    )
    raw_text: str | None = Field(default=None, description="The port-43 WHOIS answer, when WHOIS was used.")
    rdap: dict[str, Any] | None = Field(default=None, description="The registry's RDAP object, when RDAP was used.")

    @computed_field(description="ArkAPI's name for nameservers.")  # type: ignore[prop-decorator]
    @property
    def name_servers(self) -> list[str]:
        return list(self.nameservers)

    @computed_field(description="ArkAPI's 'parsed': WHOIS 'Key: value' pairs (first of each), or the RDAP dates.")  # type: ignore[prop-decorator]
    @property
    def parsed(self) -> dict[str, str]:
        pairs: dict[str, str] = {}
        for line in (self.raw_text or "").splitlines():
            key, sep, value = line.strip().partition(":")
            key, value = key.strip(), value.strip()
            if sep and key and value and " " * 3 not in key and not key.startswith(("%", "#", ">>>")):
                pairs.setdefault(key, value)
        named = {
            "Registrar": self.registrar,
            "Creation Date": self.created_date,
            "Registry Expiry Date": self.expiry_date,
            "Updated Date": self.updated_date,
        }
        for key, known in named.items():
            if known:
                pairs.setdefault(key, known)
        return pairs


class BootstrapCache:
    """The IANA RDAP bootstrap, fetched once per TTL (one per app via ``ctx.services``)."""

    def __init__(self, settings: Any) -> None:
        self.settings = settings
        self._services: dict[str, str] = {}
        self._expires = 0.0
        self._lock = asyncio.Lock()

    async def base_for(self, domain: str, client: httpx.AsyncClient) -> str | None:
        if self.settings.rdap_base_url:
            return str(self.settings.rdap_base_url)
        async with self._lock:
            if time.monotonic() >= self._expires:
                await self._load(client)
        labels = domain.split(".")
        for i in range(1, len(labels)):
            base = self._services.get(".".join(labels[i:]))
            if base:
                return base
        return None

    async def _load(self, client: httpx.AsyncClient) -> None:
        try:
            response = await client.get(self.settings.rdap_bootstrap_url, timeout=self.settings.whois_timeout_s)
            response.raise_for_status()
            data = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            if self._services:
                return  # keep serving the stale copy
            raise UpstreamError("the RDAP bootstrap registry could not be read") from exc
        services: dict[str, str] = {}
        for entry in data.get("services", []):
            tlds, urls = entry[0], entry[1]
            url = next((u for u in urls if u.startswith("https://")), urls[0] if urls else None)
            for tld in tlds:
                if url:
                    services[tld.lower()] = url
        self._services = services
        self._expires = time.monotonic() + self.settings.rdap_bootstrap_ttl_s


def _vcard_fn(entity: dict[str, Any]) -> str | None:
    card = entity.get("vcardArray")
    if isinstance(card, list) and len(card) == 2:
        for item in card[1]:
            if isinstance(item, list) and item and item[0] == "fn" and len(item) > 3 and item[3]:
                return str(item[3])
    return None


def _date(text: Any) -> str | None:
    if isinstance(text, datetime):
        return iso(text)
    if not isinstance(text, str) or not text.strip():
        return None
    try:
        return iso(datetime.fromisoformat(text.strip().replace("Z", "+00:00")))
    except ValueError:
        return text.strip()


def parse_rdap(domain: str, data: dict[str, Any]) -> Registration:
    events = {e.get("eventAction"): e.get("eventDate") for e in data.get("events", []) if isinstance(e, dict)}
    registrar = next(
        (e for e in data.get("entities", []) if isinstance(e, dict) and "registrar" in e.get("roles", [])), None
    )
    iana_id = None
    if registrar:
        iana_id = next(
            (p.get("identifier") for p in registrar.get("publicIds", []) if "IANA" in str(p.get("type", ""))), None
        )
    secure = data.get("secureDNS") or {}
    return Registration(
        domain=domain,
        registered=True,
        source="rdap",
        registrar=_vcard_fn(registrar) if registrar else None,
        registrar_iana_id=iana_id,
        created_date=_date(events.get("registration")),
        updated_date=_date(events.get("last changed")),
        expiry_date=_date(events.get("expiration")),
        status=[str(s) for s in data.get("status", [])],
        nameservers=sorted(
            str(ns.get("ldhName", "")).lower().rstrip(".") for ns in data.get("nameservers", []) if ns.get("ldhName")
        ),
        dnssec=secure.get("delegationSigned") if isinstance(secure, dict) else None,
        evidence=["RDAP: the registry returned the domain object"],
        rdap=data,
    )


def no_match(text: str) -> str | None:
    """The registry's 'not registered' wording found in a WHOIS answer, if any."""
    for pattern, label in _NO_MATCH:
        if pattern.search(text):
            return label
    return None


_EPP_URL = re.compile(r"\s+https?://\S+$")


def _indented_block(label: str, text: str) -> list[str]:
    """Values listed one per indented line under ``label`` (Nominet style), up to a blank line."""
    lines = text.replace("\r\n", "\n").split("\n")
    for i, line in enumerate(lines):
        if line.strip().lower() == label.lower():
            values = []
            for following in lines[i + 1 :]:
                if not following.strip():
                    break
                values.append(following.strip().split()[0])
            return values
    return []


def parse_whois(domain: str, text: str) -> Registration:
    evidence = no_match(text)
    if evidence:
        return Registration(
            domain=domain, registered=False, source="whois", evidence=[f"WHOIS: {evidence}"], raw_text=text
        )
    tld = domain.rsplit(".", 1)[-1]
    try:
        # Registries answer with CRLF; the parsers' multi-line rules expect LF.
        parsed = DomainParser(ignore_not_found=True).parse(text.replace("\r\n", "\n"), tld)
    except Exception:  # a third-party parser on registry free text: never fail the call on it
        parsed = {}

    def get(key: TLDBaseKeys) -> Any:
        return parsed.get(key) or None

    statuses = get(TLDBaseKeys.STATUS) or []
    if isinstance(statuses, str):
        statuses = [statuses]
    nameservers = get(TLDBaseKeys.NAME_SERVERS) or []
    if isinstance(nameservers, str):
        nameservers = [nameservers]
    if not nameservers:
        nameservers = _indented_block("Name servers:", text)
    dnssec_text = str(get(TLDBaseKeys.DNSSEC) or "").lower()
    if dnssec_text:
        dnssec: bool | None = "unsigned" not in dnssec_text and dnssec_text.strip() != "no"
    elif re.search(r"^Dnskey:", text, re.MULTILINE):
        dnssec = True  # DENIC lists keys instead of a DNSSEC line
    else:
        dnssec = None
    has_data = bool(get(TLDBaseKeys.DOMAIN_NAME) or nameservers or get(TLDBaseKeys.CREATED))
    return Registration(
        domain=domain,
        registered=True if has_data else None,
        source="whois",
        registrar=get(TLDBaseKeys.REGISTRAR),
        registrar_iana_id=get(TLDBaseKeys.REGISTRAR_IANA_ID),
        created_date=_date(get(TLDBaseKeys.CREATED)),
        updated_date=_date(get(TLDBaseKeys.UPDATED)),
        expiry_date=_date(get(TLDBaseKeys.EXPIRES)),
        status=[_EPP_URL.sub("", str(s)).strip() for s in statuses if s],
        nameservers=sorted({str(n).lower().strip().rstrip(".") for n in nameservers if n}),
        dnssec=dnssec,
        evidence=["WHOIS: the registry returned registration data" if has_data else "WHOIS: answer not understood"],
        raw_text=text,
    )


async def _rdap(domain: str, ctx: CallContext) -> Registration | str | None:
    """The RDAP result, an error string (fall back to WHOIS), or None when the TLD has no RDAP."""
    client = ctx.services.http
    cache = ctx.services.get(BootstrapCache)
    try:
        base = await cache.base_for(domain, client)
    except UpstreamError as exc:
        return exc.message
    if base is None:
        return None
    url = base.rstrip("/") + f"/domain/{domain}"
    try:
        response = await client.get(
            url, headers={"Accept": "application/rdap+json"}, timeout=ctx.settings.whois_timeout_s
        )
    except httpx.TimeoutException:
        return "RDAP server timed out"
    except httpx.HTTPError:
        return "RDAP server unreachable"
    if response.status_code == 404:
        return Registration(
            domain=domain,
            registered=False,
            source="rdap",
            evidence=["RDAP: the registry answered 404 Not Found for the domain"],
        )
    if response.status_code != 200 or len(response.content) > MAX_RDAP_BYTES:
        return f"RDAP server answered HTTP {response.status_code}"
    try:
        data = response.json()
    except (json.JSONDecodeError, ValueError):
        return "RDAP server sent invalid JSON"
    if not isinstance(data, dict):
        return "RDAP server sent an unexpected document"
    return parse_rdap(domain, data)


async def _whois_address(server: str, ctx: CallContext) -> str:
    try:
        ipaddress.ip_address(server)
        return server
    except ValueError:
        pass
    resolver = ctx.services.get(make_resolver)
    for rdtype in ("A", "AAAA"):
        try:
            answer = await resolver.resolve(server + ".", rdtype, search=False)
            return str(answer[0].address)
        except dns.exception.DNSException:  # try the next family, then give up below
            continue
    raise UpstreamError("the WHOIS server's name could not be resolved")


async def whois_text(domain: str, ctx: CallContext) -> str | None:
    """Ask the registry's port-43 server; None when no server is known for the TLD."""
    server = ctx.settings.whois_server or DomainQuery._get_server_name(domain)
    if not server:
        return None
    timeout = ctx.settings.whois_timeout_s
    try:
        async with asyncio.timeout(timeout):
            address = await _whois_address(server, ctx)
            reader, writer = await asyncio.open_connection(address, ctx.settings.whois_port)
            try:
                writer.write(f"{domain}\r\n".encode())
                await writer.drain()
                data = await reader.read(MAX_WHOIS_BYTES)
                while data and len(data) < MAX_WHOIS_BYTES:
                    more = await reader.read(MAX_WHOIS_BYTES - len(data))
                    if not more:
                        break
                    data += more
            finally:
                writer.close()
    except TimeoutError as exc:
        raise UpstreamTimeoutError("the WHOIS server did not answer in time") from exc
    except OSError as exc:
        raise UpstreamError("the WHOIS server could not be reached") from exc
    return data.decode("utf-8", errors="replace")


async def lookup(domain: str, ctx: CallContext) -> Registration:
    """RDAP, then WHOIS when RDAP is unavailable or gave no verdict."""
    rdap = await _rdap(domain, ctx)
    if isinstance(rdap, Registration):
        return rdap
    try:
        text = await whois_text(domain, ctx)
    except ArkgateError:
        if rdap is None:
            raise
        raise UpstreamError(f"registration data unavailable: {rdap}; WHOIS failed too") from None
    if text is None:
        if rdap is None:
            raise InputError(f"no RDAP or WHOIS service is known for .{domain.rsplit('.', 1)[-1]}")
        raise UpstreamError(f"registration data unavailable: {rdap}")
    if not text.strip():
        raise UpstreamError("the WHOIS server sent an empty answer")
    result = parse_whois(domain, text)
    if isinstance(rdap, str):
        result.evidence.insert(0, f"RDAP unavailable ({rdap}); used WHOIS")
    return result
