"""domain-intel: one call aggregating everything the security endpoints know about a domain.

DNS, registration (RDAP/WHOIS), TLS, security headers, e-mail authentication,
security.txt and robots.txt (parsed), technology fingerprints, HTTP redirect
behaviour and offline intelligence on the resolved addresses, with findings and
recommendations. Sub-checks run concurrently; a failing one degrades its own
section (``errors``), not the call. Every connection to the domain's hosts goes
through the outbound guard. Reports are cached per app for ``intel_cache_ttl_s``.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import time
from collections.abc import Awaitable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from pydantic import BaseModel, Field

from arkgate.catalog._ai.chat import complete, make_chat_client
from arkgate.catalog._security.common import DomainRequest, iso
from arkgate.catalog._security.dnsutil import query, require_existing
from arkgate.catalog._security.headers_audit import HeadersReport, audit
from arkgate.catalog._security.ipinfo import IpInfo, ip_info
from arkgate.catalog._security.registration import Registration
from arkgate.catalog._security.registration import lookup as registration_lookup
from arkgate.catalog._security.tls import TlsReport, inspect_tls
from arkgate.catalog.context import CallContext
from arkgate.catalog.dns_lookup import DnsLookupResponse
from arkgate.catalog.dns_lookup import lookup as dns_lookup
from arkgate.catalog.email_auth_check import EmailAuthResponse
from arkgate.catalog.email_auth_check import check as email_check
from arkgate.catalog.registry import Endpoint
from arkgate.errors import ArkgateError, UpstreamError, UpstreamTimeoutError
from arkgate.outbound.guard import FetchResult, get_guard
from arkgate.outbound.resolver import make_resolver

T = TypeVar("T")
MAX_IPS = 8
_PAGE_CAP = 512_000
_TEXT_CAP = 64_000

# (name, category, where, pattern): where is "header:<name>" or "body".
FINGERPRINTS: tuple[tuple[str, str, str, str], ...] = (
    ("WordPress", "cms", "body", r"/wp-content/|/wp-includes/|<meta[^>]+generator[^>]+WordPress"),
    ("Drupal", "cms", "body", r"Drupal\.settings|/sites/default/files/|<meta[^>]+generator[^>]+Drupal"),
    ("Joomla", "cms", "body", r"<meta[^>]+generator[^>]+Joomla|/media/jui/"),
    ("Ghost", "cms", "body", r"<meta[^>]+generator[^>]+Ghost"),
    ("Shopify", "cms", "body", r"cdn\.shopify\.com|Shopify\.theme"),
    ("Wix", "cms", "body", r"static\.wixstatic\.com"),
    ("Squarespace", "cms", "body", r"static1\.squarespace\.com"),
    ("Hugo", "generator", "body", r"<meta[^>]+generator[^>]+Hugo"),
    ("Jekyll", "generator", "body", r"<meta[^>]+generator[^>]+Jekyll"),
    ("Next.js", "frontend", "body", r"__NEXT_DATA__|/_next/static/"),
    ("Nuxt", "frontend", "body", r"__NUXT__|/_nuxt/"),
    ("React", "frontend", "body", r"data-reactroot|react-dom|__NEXT_DATA__"),
    ("Vue.js", "frontend", "body", r"data-v-[0-9a-f]{8}|vue(?:\.min)?\.js"),
    ("Angular", "frontend", "body", r"ng-version=|angular(?:\.min)?\.js"),
    ("jQuery", "library", "body", r"jquery(?:-[\d.]+)?(?:\.min)?\.js"),
    ("Bootstrap", "library", "body", r"bootstrap(?:\.min)?\.(?:css|js)"),
    ("Google Analytics", "analytics", "body", r"googletagmanager\.com/gtag|google-analytics\.com"),
    ("nginx", "server", "header:server", r"nginx"),
    ("Apache", "server", "header:server", r"apache"),
    ("Microsoft IIS", "server", "header:server", r"microsoft-iis"),
    ("LiteSpeed", "server", "header:server", r"litespeed"),
    ("Caddy", "server", "header:server", r"caddy"),
    ("Cloudflare", "cdn", "header:server", r"cloudflare"),
    ("Cloudflare", "cdn", "header:cf-ray", r"."),
    ("Fastly", "cdn", "header:x-served-by", r"cache-"),
    ("Amazon CloudFront", "cdn", "header:x-amz-cf-id", r"."),
    ("Varnish", "cache", "header:via", r"varnish"),
    ("PHP", "language", "header:x-powered-by", r"php"),
    ("ASP.NET", "language", "header:x-powered-by", r"asp\.net"),
    ("Express", "framework", "header:x-powered-by", r"express"),
)
DNS_PROVIDERS: tuple[tuple[str, str], ...] = (
    ("cloudflare.com", "Cloudflare"),
    ("awsdns", "Amazon Route 53"),
    ("azure-dns", "Microsoft Azure DNS"),
    ("googledomains.com", "Google"),
    ("google.com", "Google"),
    ("domaincontrol.com", "GoDaddy"),
    ("nsone.net", "NS1"),
    ("dnsimple.com", "DNSimple"),
    ("digitalocean.com", "DigitalOcean"),
    ("hetzner.com", "Hetzner"),
    ("ovh.net", "OVHcloud"),
    ("gandi.net", "Gandi"),
    ("registrar-servers.com", "Namecheap"),
    ("iana-servers.net", "IANA"),
)


class SecurityTxt(BaseModel):
    present: bool
    source_url: str | None = None
    contacts: list[str] = []
    emails: list[str] = []
    expires: str | None = None
    expired: bool | None = None
    encryption: list[str] = []
    policy: list[str] = []
    acknowledgments: list[str] = []
    preferred_languages: list[str] = Field(default_factory=list, description="Language tags, as ArkAPI lists them.")
    canonical: list[str] = []
    hiring: list[str] = []
    signed: bool = False
    issues: list[str] = []


class RobotsTxt(BaseModel):
    present: bool
    source_url: str | None = None
    user_agents: list[str] = []
    disallow_count: int = 0
    allow_count: int = 0
    disallows_everything: bool = False
    sitemaps: list[str] = []
    crawl_delay: str | None = None
    # ArkAPI's lists of the paths themselves (every group), and the Host directive
    allow: list[str] = []
    disallow: list[str] = []
    host: str | None = None


class TechFingerprint(BaseModel):
    detected: list[str] = []
    by_category: dict[str, list[str]] = {}
    server: str | None = None
    cms: str | None = None
    frontend: str | None = None
    generator: str | None = Field(default=None, description="ArkAPI's: a static-site generator, when detected.")
    final_url: str | None = None


class HttpBehavior(BaseModel):
    initial_url: str
    final_url: str
    final_status: int
    canonical_host: str
    redirect_count: int
    redirect_chain: list[str]
    status_chain: list[int]
    https_redirect: bool = Field(..., description="Plain HTTP ends on HTTPS.")
    www_redirect: bool


class Providers(BaseModel):
    registrar: str | None = None
    dns_provider: str | None = None
    hosting_provider: str | None = None
    # ArkAPI's fields
    mail_provider: str | None = Field(default=None, description="The domain of the first MX host.")
    cdn_provider: str | None = Field(default=None, description="A CDN seen in the site's response headers.")
    behind_cloudflare: bool = False


class Network(BaseModel):
    ip_count: int
    asns: list[str]
    organizations: list[str]
    countries: list[str]


class CacheInfo(BaseModel):
    cached: bool
    ttl_seconds: int
    expires_at: str | None = None


class AiUsage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class AiSummary(BaseModel):
    """ArkAPI's ai_summary object (the shape of its ai-chat answer)."""

    answer: str
    model: str
    usage: AiUsage


AI_SUMMARY_MAX_TOKENS = 300  # a short paragraph; the flat price covers it


class DomainIntelResponse(BaseModel):
    domain: str
    generated_at: str
    ai_summary: AiSummary | None = Field(
        default=None, description="A short AI-written summary, when asked for and an AI backend is configured."
    )
    ai_summary_note: str | None = Field(default=None, description="Why ai_summary is null.")
    ct_subdomains: list[str] = Field(
        default_factory=list,
        description="ArkAPI's Certificate Transparency subdomains; arkgate does not query CT logs, so empty.",
    )
    registration: Registration | None = None
    providers: Providers
    dns: DnsLookupResponse | None = None
    whois: Registration | None = Field(default=None, description="Same as registration (ArkAPI's name).")
    ssl: TlsReport | None = None
    headers: HeadersReport | None = None
    email_auth: EmailAuthResponse | None = None
    security_txt: SecurityTxt | None = None
    robots_txt: RobotsTxt | None = None
    tech_fingerprint: TechFingerprint | None = None
    http_behavior: HttpBehavior | None = None
    resolved_ips: list[IpInfo] = []
    network: Network
    subdomains: list[str] = []
    findings: list[str]
    recommendations: list[str]
    errors: dict[str, str] = Field(default_factory=dict, description="Sections that could not be produced, and why.")
    cache: CacheInfo


class IntelCache:
    """Reports by domain, per app, for ``intel_cache_ttl_s``."""

    def __init__(self, settings: Any) -> None:
        self.ttl_s = int(settings.intel_cache_ttl_s)
        self._items: dict[str, tuple[float, DomainIntelResponse]] = {}

    def get(self, domain: str) -> DomainIntelResponse | None:
        item = self._items.get(domain)
        if item is None or item[0] < time.monotonic():
            self._items.pop(domain, None)
            return None
        return item[1]

    def put(self, domain: str, report: DomainIntelResponse) -> None:
        if self.ttl_s > 0:
            if len(self._items) > 1000:
                self._items.clear()  # crude bound; reports are cheap to rebuild
            self._items[domain] = (time.monotonic() + self.ttl_s, report)


def _url(scheme: str, domain: str, port: int, path: str = "/") -> str:
    default = 443 if scheme == "https" else 80
    return f"{scheme}://{domain}{'' if port == default else f':{port}'}{path}"


async def _section(errors: dict[str, str], name: str, work: Awaitable[T]) -> T | None:
    try:
        return await work
    except ArkgateError as exc:
        errors[name] = exc.message
    except Exception:  # one broken sub-check must not cost the caller the whole report
        errors[name] = "this check failed unexpectedly"
    return None


def _first(values: list[str] | None) -> str | None:
    return values[0] if values else None


def parse_security_txt(text: str, url: str, now: datetime) -> SecurityTxt:
    """RFC 9116 fields; a PGP-signed file is recognised, not verified."""
    fields: dict[str, list[str]] = {}
    for line in text.splitlines():
        if line.startswith("#") or ":" not in line:
            continue
        key, _, value = line.partition(":")
        fields.setdefault(key.strip().lower(), []).append(value.strip())
    contacts = fields.get("contact", [])
    issues = []
    expires_text = _first(fields.get("expires"))
    expired = None
    if not contacts:
        issues.append("no Contact field (required by RFC 9116)")
    if expires_text is None:
        issues.append("no Expires field (required by RFC 9116)")
    else:
        try:
            expires_at = datetime.fromisoformat(expires_text.replace("Z", "+00:00"))
            if expires_at.tzinfo is None:
                expires_at = expires_at.replace(tzinfo=UTC)
            expired = expires_at < now
            if expired:
                issues.append("the file has expired")
        except ValueError:
            issues.append("Expires is not an RFC 3339 date")
    return SecurityTxt(
        present=True,
        source_url=url,
        contacts=contacts,
        emails=[c.removeprefix("mailto:") for c in contacts if c.startswith("mailto:")],
        expires=expires_text,
        expired=expired,
        encryption=fields.get("encryption", []),
        policy=fields.get("policy", []),
        acknowledgments=fields.get("acknowledgments", []),
        preferred_languages=[
            tag.strip() for value in fields.get("preferred-languages", []) for tag in value.split(",") if tag.strip()
        ],
        canonical=fields.get("canonical", []),
        hiring=fields.get("hiring", []),
        signed="-----BEGIN PGP SIGNED MESSAGE-----" in text,
        issues=issues,
    )


def parse_robots_txt(text: str, url: str) -> RobotsTxt:
    agents: list[str] = []
    disallow = allow = 0
    allowed_paths: list[str] = []
    disallowed_paths: list[str] = []
    host = None
    everything = False
    sitemaps: list[str] = []
    delay = None
    current: list[str] = []
    in_rules = False
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if ":" not in line:
            continue
        key, _, value = line.partition(":")
        key, value = key.strip().lower(), value.strip()
        if key == "user-agent":
            if in_rules:  # a user-agent after rules starts a new group
                current, in_rules = [], False
            current.append(value)
            if value not in agents:
                agents.append(value)
        elif key == "disallow" and value:
            disallow += 1
            disallowed_paths.append(value)
            everything = everything or (value == "/" and "*" in current)
        elif key == "allow":
            allow += 1
            if value:
                allowed_paths.append(value)
        elif key == "host":
            host = value
        elif key == "sitemap":
            sitemaps.append(value)
        elif key == "crawl-delay":
            delay = value
        if key in ("disallow", "allow", "crawl-delay"):
            in_rules = True
    return RobotsTxt(
        present=True,
        source_url=url,
        user_agents=agents,
        disallow_count=disallow,
        allow_count=allow,
        disallows_everything=everything,
        sitemaps=sitemaps,
        crawl_delay=delay,
        allow=list(dict.fromkeys(allowed_paths)),
        disallow=list(dict.fromkeys(disallowed_paths)),
        host=host,
    )


def fingerprint(page: FetchResult) -> TechFingerprint:
    body = page.text[:_PAGE_CAP] if "html" in page.headers.get("content-type", "html") else ""
    found: dict[str, list[str]] = {}
    for name, category, where, pattern in FINGERPRINTS:
        hay = body if where == "body" else page.headers.get(where.split(":", 1)[1], "")
        if hay and re.search(pattern, hay, re.IGNORECASE) and name not in found.get(category, []):
            found.setdefault(category, []).append(name)
    detected = list(dict.fromkeys(n for names in found.values() for n in names))
    return TechFingerprint(
        detected=detected,
        by_category=found,
        server=page.headers.get("server"),
        cms=_first(found.get("cms")),
        frontend=_first(found.get("frontend")),
        generator=_first(found.get("generator")),
        final_url=page.url,
    )


def behaviour(start: str, page: FetchResult, domain: str) -> HttpBehavior:
    final_host = page.url.split("://", 1)[1].split("/", 1)[0].split(":", 1)[0]
    return HttpBehavior(
        initial_url=start,
        final_url=page.url,
        final_status=page.status_code,
        canonical_host=final_host,
        redirect_count=len(page.redirects),
        redirect_chain=[hop.location for hop in page.redirects],
        status_chain=[hop.status_code for hop in page.redirects] + [page.status_code],
        https_redirect=page.url.startswith("https://"),
        www_redirect=final_host == f"www.{domain}",
    )


async def _text_file(ctx: CallContext, urls: list[str]) -> tuple[str, str] | None:
    guard = ctx.services.get(get_guard)
    for url in urls:
        try:
            result = await guard.fetch(url, max_bytes=_TEXT_CAP, max_redirects=3)
        except (UpstreamError, UpstreamTimeoutError):
            continue
        content_type = result.headers.get("content-type", "text/plain")
        if result.status_code == 200 and content_type.startswith("text/plain"):
            return result.text, result.url
    return None


async def build(domain: str, ctx: CallContext) -> DomainIntelResponse:
    # The shared DNS rule first: no 25-sat report of nulls for a name that does not exist, and a dead
    # resolver is a refunded 502/504 rather than a report with every section failed.
    await require_existing(ctx.services.get(make_resolver), domain)
    guard = ctx.services.get(get_guard)
    settings = ctx.settings
    https_root = _url("https", domain, settings.intel_https_port)
    http_root = _url("http", domain, settings.intel_http_port)
    errors: dict[str, str] = {}
    now = datetime.now(UTC)

    async def homepage() -> FetchResult:
        return await guard.fetch(https_root, max_bytes=_PAGE_CAP, max_redirects=8)

    async def plain() -> FetchResult:
        return await guard.fetch(http_root, max_bytes=_TEXT_CAP, max_redirects=8)

    async def security_txt() -> SecurityTxt:
        urls = [
            _url("https", domain, settings.intel_https_port, "/.well-known/security.txt"),
            _url("https", domain, settings.intel_https_port, "/security.txt"),
        ]
        found = await _text_file(ctx, urls)
        return parse_security_txt(found[0], found[1], now) if found else SecurityTxt(present=False)

    async def robots_txt() -> RobotsTxt:
        found = await _text_file(ctx, [_url("https", domain, settings.intel_https_port, "/robots.txt")])
        return parse_robots_txt(found[0], found[1]) if found else RobotsTxt(present=False)

    async def www_exists() -> bool:
        answer = await query(ctx.services.get(make_resolver), f"www.{domain}", "A")
        return answer.status == "NOERROR" and bool(answer.records)

    # Separate tasks (not one gather) keep each section's type for the checker.
    tls_check = inspect_tls(guard, domain, settings.intel_https_port, timeout_s=settings.outbound_timeout_s)
    async with asyncio.TaskGroup() as group:
        dns_task = group.create_task(_section(errors, "dns", dns_lookup(domain, ctx)))
        reg_task = group.create_task(_section(errors, "whois", registration_lookup(domain, ctx)))
        tls_task = group.create_task(_section(errors, "ssl", tls_check))
        page_task = group.create_task(_section(errors, "headers", homepage()))
        plain_task = group.create_task(_section(errors, "http_behavior", plain()))
        email_task = group.create_task(_section(errors, "email_auth", email_check(domain, ctx)))
        sec_task = group.create_task(_section(errors, "security_txt", security_txt()))
        robots_task = group.create_task(_section(errors, "robots_txt", robots_txt()))
        www_task = group.create_task(_section(errors, "subdomains", www_exists()))
    dns, reg, tls, page, plain_page = (
        dns_task.result(), reg_task.result(), tls_task.result(), page_task.result(), plain_task.result()
    )  # fmt: skip
    email, sec, robots, www = email_task.result(), sec_task.result(), robots_task.result(), www_task.result()
    if dns is None and reg is None and page is None and plain_page is None:
        if "timed out" in errors.get("dns", "") or "in time" in errors.get("dns", ""):
            raise UpstreamTimeoutError(f"no part of the report on {domain} could be produced: {errors['dns']}")
        raise UpstreamError(
            f"no part of the report on {domain} could be produced: {errors.get('dns', 'all checks failed')}"
        )

    ips: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = []
    if dns is not None:
        ips = [ipaddress.ip_address(a) for a in (dns.a + dns.aaaa)][:MAX_IPS]
    resolved = list(await asyncio.gather(*(ip_info(ip, ctx) for ip in ips)))
    headers_report = audit(page, https_root) if page is not None else None
    tech = fingerprint(page) if page is not None else (fingerprint(plain_page) if plain_page is not None else None)
    http_behavior = behaviour(http_root, plain_page, domain) if plain_page is not None else None

    public = [i for i in resolved if i.is_public]
    network = Network(
        ip_count=len(resolved),
        asns=sorted({i.as_name for i in public if i.as_name}),
        organizations=sorted({i.as_name for i in public if i.as_name}),
        countries=sorted({i.country for i in public if i.country}),
    )
    ns_names = dns.ns if dns is not None else (reg.nameservers if reg is not None else [])
    dns_provider = next((label for needle, label in DNS_PROVIDERS if any(needle in n for n in ns_names)), None)
    mx_hosts = [mx.split(" ", 1)[-1] for mx in dns.mx] if dns is not None else []
    cdn = _first(tech.by_category.get("cdn")) if tech is not None else None
    providers = Providers(
        registrar=reg.registrar if reg else None,
        dns_provider=dns_provider or (ns_names[0].split(".", 1)[-1] if ns_names else None),
        hosting_provider=network.organizations[0] if network.organizations else None,
        mail_provider=".".join(mx_hosts[0].rstrip(".").split(".")[-2:]) if mx_hosts and mx_hosts[0] != "." else None,
        cdn_provider=cdn,
        behind_cloudflare=cdn == "Cloudflare",
    )
    subdomains = [f"www.{domain}"] if www else []
    if dns is not None:
        subdomains += [mx.split(" ", 1)[1] for mx in dns.mx if mx.endswith(f".{domain}")]
    findings, advice = _summarise(domain, reg, tls, headers_report, email, sec, http_behavior, now)
    return DomainIntelResponse(
        domain=domain,
        generated_at=iso(now) or "",
        registration=reg,
        whois=reg,
        providers=providers,
        dns=dns,
        ssl=tls,
        headers=headers_report,
        email_auth=email,
        security_txt=sec,
        robots_txt=robots,
        tech_fingerprint=tech,
        http_behavior=http_behavior,
        resolved_ips=resolved,
        network=network,
        subdomains=sorted(set(subdomains)),
        findings=findings,
        recommendations=advice,
        errors=errors,
        cache=CacheInfo(cached=False, ttl_seconds=settings.intel_cache_ttl_s),
    )


def _summarise(
    domain: str,
    reg: Registration | None,
    tls: TlsReport | None,
    headers: HeadersReport | None,
    email: EmailAuthResponse | None,
    sec: SecurityTxt | None,
    http: HttpBehavior | None,
    now: datetime,
) -> tuple[list[str], list[str]]:
    findings: list[str] = []
    advice: list[str] = []
    if reg is not None and reg.expiry_date:
        try:
            expires = datetime.fromisoformat(reg.expiry_date.replace("Z", "+00:00"))
            if expires - now < timedelta(days=30):
                findings.append(f"The registration of {domain} expires on {reg.expiry_date}.")
                advice.append("Renew the domain registration (and enable auto-renew).")
        except ValueError:
            pass
    if tls is not None:
        findings += [f"TLS: {f.message}" for f in tls.findings if f.severity in ("critical", "high", "medium")]
        if not tls.valid:
            advice.append("Install a certificate from a trusted CA covering the domain, with its full chain.")
    if headers is not None:
        findings += [f"Headers: {f.message}" for f in headers.findings if f.severity in ("critical", "high", "medium")]
        if headers.grade in ("D", "E", "F"):
            findings.append(f"Security headers grade {headers.grade} ({headers.score}/100).")
        advice += headers.recommendations[:3]
    if email is not None:
        findings += [f"E-mail: {f.message}" for f in email.findings if f.severity in ("critical", "high", "medium")]
        advice += email.recommendations[:3]
    if sec is not None and not sec.present:
        advice.append("Publish /.well-known/security.txt (RFC 9116) with a Contact and an Expires field.")
    elif sec is not None and sec.issues:
        findings.append(f"security.txt: {'; '.join(sec.issues)}.")
    if http is not None and not http.https_redirect:
        findings.append("Plain HTTP does not redirect to HTTPS.")
        advice.append("Redirect every http:// request to https:// with a 301.")
    if not findings:
        findings.append("No major issues were detected from the DNS, TLS, header and e-mail checks.")
    return findings, list(dict.fromkeys(advice))


async def _ai_summary(report: DomainIntelResponse, ctx: CallContext) -> tuple[AiSummary | None, str | None]:
    """ArkAPI's optional AI summary of the findings; null with the reason when it cannot be written."""
    if not ctx.settings.ai_base_url:
        return None, "no AI backend is configured on this gateway"
    facts = "\n".join(f"- {line}" for line in report.findings + report.recommendations)
    messages = [
        {"role": "system", "content": "Summarise a domain security report in three plain sentences."},
        {"role": "user", "content": f"Domain: {report.domain}\n{facts}"},
    ]
    try:
        result = await complete(
            ctx.services.get(make_chat_client),
            model=ctx.settings.ai_chat_model,
            messages=messages,
            max_tokens=AI_SUMMARY_MAX_TOKENS,
        )
    except ArkgateError as exc:
        return None, f"the AI summary failed: {exc.message}"
    usage = AiUsage(
        prompt_tokens=result.prompt_tokens,
        completion_tokens=result.completion_tokens,
        total_tokens=result.prompt_tokens + result.completion_tokens,
    )
    return AiSummary(answer=result.text.strip(), model=result.model, usage=usage), None


async def handler(request: DomainRequest, ctx: CallContext) -> DomainIntelResponse:
    cache = ctx.services.get(IntelCache)
    hit = cache.get(request.domain)
    if hit is not None:
        report = hit.model_copy(update={"cache": hit.cache.model_copy(update={"cached": True})})
    else:
        report = await build(request.domain, ctx)
        if ctx.settings.intel_cache_ttl_s > 0:
            expires = datetime.now(UTC) + timedelta(seconds=ctx.settings.intel_cache_ttl_s)
            report = report.model_copy(update={"cache": report.cache.model_copy(update={"expires_at": iso(expires)})})
            cache.put(request.domain, report)
    if not request.ai_summary:
        return report.model_copy(update={"ai_summary_note": 'not requested (send "ai_summary": true)'})
    summary, note = await _ai_summary(report, ctx)
    return report.model_copy(update={"ai_summary": summary, "ai_summary_note": note})


ENDPOINT = Endpoint(
    id="domain-intel",
    price_sats=25,
    category="security",
    summary="Aggregate domain intelligence",
    description=(
        "One report on a domain: DNS, registration (RDAP/WHOIS), TLS certificate, security headers, e-mail "
        "authentication, parsed security.txt and robots.txt, technology fingerprints, HTTP redirect behaviour, "
        "providers and offline intelligence on the resolved addresses, with findings and recommendations. "
        "Sub-checks run concurrently; one failing degrades its section only. Cached for an hour."
    ),
    request_model=DomainRequest,
    response_model=DomainIntelResponse,
    handler=handler,
    timeout_s=45,
    example={"domain": "example.com"},
)
