"""The outbound guard: the only way arkgate reaches a host or URL a caller gave it.

Every user-supplied target is resolved first, through the configured resolver,
and each address it resolves to must be a public internet address. The guard
then connects to the address it vetted (never resolving the name again, so a
DNS answer cannot change between the check and the connection: no rebinding),
keeps the name for the Host header and TLS SNI/verification, re-vets every
redirect hop, and caps the response size and the total time.

Refusals raise ``TargetRefusedError`` (400, the call costs nothing). Operators
and tests can let chosen private ranges through with
``ARKGATE_UNSAFE_ALLOW_PRIVATE_TARGETS``; ``Settings`` refuses it on mainnet.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import ssl
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import dns.asyncresolver
import dns.exception
import dns.resolver
import httpx

from arkgate.errors import DomainNotFoundError, InputError, TargetRefusedError, UpstreamError, UpstreamTimeoutError
from arkgate.outbound.resolver import domain_not_found, make_resolver, resolver_failure

if TYPE_CHECKING:
    from arkgate.settings import Settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

MAX_URL_CHARS = 2048
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_CHUNK = 64 * 1024

# Cloud metadata services get their own message: they are the classic SSRF prize.
METADATA_ADDRESSES: frozenset[IPAddress] = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",  # AWS, GCP, Azure, DigitalOcean, OpenStack
        "169.254.170.2",  # AWS ECS task metadata
        "169.254.169.253",  # AWS DNS
        "100.100.100.200",  # Alibaba Cloud
        "192.0.0.192",  # Oracle Cloud
        "fd00:ec2::254",  # AWS IMDS over IPv6
        "fd00:ec2::253",
    )
)

# Special-purpose ranges (IANA IPv4/IPv6 special-purpose registries), each with the
# word used in the refusal. ``is_global`` is checked afterwards as a catch-all.
_BLOCKED: tuple[tuple[str, str], ...] = (
    ("0.0.0.0/8", "'this network' (unspecified)"),
    ("10.0.0.0/8", "private"),
    ("100.64.0.0/10", "carrier-grade NAT (shared)"),
    ("127.0.0.0/8", "loopback"),
    ("169.254.0.0/16", "link-local"),
    ("172.16.0.0/12", "private"),
    ("192.0.0.0/24", "IETF protocol assignment (reserved)"),
    ("192.0.2.0/24", "documentation (reserved)"),
    ("192.31.196.0/24", "AS112 (reserved)"),
    ("192.52.193.0/24", "AMT (reserved)"),
    ("192.88.99.0/24", "6to4 relay anycast (reserved)"),
    ("192.168.0.0/16", "private"),
    ("192.175.48.0/24", "AS112 (reserved)"),
    ("198.18.0.0/15", "benchmarking (reserved)"),
    ("198.51.100.0/24", "documentation (reserved)"),
    ("203.0.113.0/24", "documentation (reserved)"),
    ("224.0.0.0/4", "multicast"),
    ("240.0.0.0/4", "reserved"),
    ("::/128", "unspecified"),
    ("::1/128", "loopback"),
    ("::ffff:0:0/96", "IPv4-mapped IPv6"),
    ("::/96", "IPv4-compatible IPv6 (deprecated)"),
    ("64:ff9b::/96", "NAT64 (IPv4-embedding)"),
    ("64:ff9b:1::/48", "local-use NAT64"),
    ("100::/64", "discard-only (reserved)"),
    ("2001::/23", "IETF protocol assignment (Teredo, ORCHID, reserved)"),
    ("2001:db8::/32", "documentation (reserved)"),
    ("2002::/16", "6to4 (IPv4-embedding)"),
    ("3fff::/20", "documentation (reserved)"),
    ("5f00::/16", "SRv6 SIDs (reserved)"),
    ("fc00::/7", "unique-local (private)"),
    ("fe80::/10", "link-local"),
    ("fec0::/10", "site-local (deprecated)"),
    ("ff00::/8", "multicast"),
)
BLOCKED_NETWORKS: tuple[tuple[IPNetwork, str], ...] = tuple(
    (ipaddress.ip_network(cidr), reason) for cidr, reason in _BLOCKED
)

# A host WHATWG URL parsers (browsers, curl) would read as an IPv4 number:
# decimal "2130706433", hex "0x7f000001", octal "0177.0.0.1", short "127.1".
_NUMERIC_LABEL = re.compile(r"^(0x[0-9a-f]*|[0-9]+)$")
_HOST_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
_FORBIDDEN_URL_CHARS = re.compile(r"[\x00-\x20\x7f\\]")


@dataclass(frozen=True, kw_only=True)
class VettedURL:
    """A URL whose host resolved only to allowed addresses."""

    url: str
    scheme: str
    host: str  # ASCII (IDNA) host name or IP literal, lower-case, no brackets
    port: int
    ips: list[IPAddress]


@dataclass(frozen=True, kw_only=True)
class RedirectHop:
    url: str
    status_code: int
    location: str


@dataclass(kw_only=True)
class FetchResult:
    """The final response of a guarded fetch."""

    url: str
    status_code: int
    headers: httpx.Headers
    content: bytes
    redirects: list[RedirectHop] = field(default_factory=list)
    ip: str = ""
    truncated: bool = False  # the body was cut at max_bytes
    http_version: str = ""

    @property
    def text(self) -> str:
        charset = _charset(self.headers.get("content-type", "")) or "utf-8"
        try:
            return self.content.decode(charset, errors="replace")
        except LookupError:
            return self.content.decode("utf-8", errors="replace")


def _charset(content_type: str) -> str | None:
    for part in content_type.split(";")[1:]:
        key, _, value = part.strip().partition("=")
        if key.lower() == "charset" and value:
            return value.strip("\"' ")
    return None


class OutboundGuard:
    """Vets and performs every connection to a user-given host (see the module docstring)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._allowed: tuple[IPNetwork, ...] = tuple(
            ipaddress.ip_network(cidr, strict=False) for cidr in settings.unsafe_allow_private_targets
        )
        self._resolver: dns.asyncresolver.Resolver = make_resolver(settings)
        self._ssl_context: ssl.SSLContext | None = None

    # --- addresses --------------------------------------------------------------------
    def refusal_reason(self, ip: IPAddress) -> str | None:
        """Why ``ip`` may not be contacted, or None when it may."""
        if any(ip in net for net in self._allowed):
            return None
        if ip in METADATA_ADDRESSES:
            return "cloud metadata service"
        if isinstance(ip, ipaddress.IPv6Address) and ip.scope_id:
            return "scoped (interface-bound) IPv6"
        for net, reason in BLOCKED_NETWORKS:
            if ip in net:
                return reason
        if not ip.is_global:
            return "non-public"
        return None

    def check_ip(self, ip: str | IPAddress) -> IPAddress:
        """Return ``ip`` parsed if it may be contacted; raise TargetRefusedError otherwise."""
        addr = _parse_ip(ip) if isinstance(ip, str) else ip
        reason = self.refusal_reason(addr)
        if reason is not None:
            raise TargetRefusedError(
                f"target refused: {addr} is not a public address ({reason}); "
                "only public internet addresses can be reached"
            )
        return addr

    # --- names ------------------------------------------------------------------------
    async def resolve(self, host: str) -> list[IPAddress]:
        """Resolve ``host`` (name or canonical IP literal) and vet every address it yields."""
        name = normalise_host(host)
        literal = _ip_literal(name)
        if literal is not None:
            return [self.check_ip(literal)]
        addresses = await self._lookup(name)
        for addr in addresses:
            reason = self.refusal_reason(addr)
            if reason is not None:
                # One bad address poisons the name: a client could be steered to any of them.
                raise TargetRefusedError(
                    f"target refused: {name} resolves to {addr}, which is not a public address ({reason}); "
                    "only public internet addresses can be reached"
                )
        return addresses

    async def _lookup(self, name: str) -> list[IPAddress]:
        async def one(rdtype: str) -> list[IPAddress]:
            try:
                answer = await self._resolver.resolve(name + ".", rdtype, search=False)
            except dns.resolver.NoAnswer:
                return []
            return [ipaddress.ip_address(r.address) for r in answer]

        # The shared DNS rule (outbound/resolver.py): NXDOMAIN is a free 404, a failing resolver a 502/504.
        try:
            results = await asyncio.gather(one("A"), one("AAAA"))
        except dns.resolver.NXDOMAIN as exc:
            raise domain_not_found(name) from exc
        except dns.exception.DNSException as exc:
            raise resolver_failure(name, exc) from exc
        addresses = list(dict.fromkeys(results[0] + results[1]))
        if not addresses:
            raise InputError(f"host {name} does not resolve to any address")
        return addresses

    # --- URLs -------------------------------------------------------------------------
    async def vet_url(self, url: str) -> VettedURL:
        """Check scheme, port and host of ``url``; its host must resolve only to allowed addresses."""
        parsed = parse_url(url)
        scheme = parsed.scheme
        port = parsed.port or (443 if scheme == "https" else 80)
        if port not in self.settings.outbound_allowed_ports:
            allowed = ", ".join(str(p) for p in self.settings.outbound_allowed_ports)
            raise TargetRefusedError(f"target refused: port {port} is not allowed (allowed: {allowed})")
        host = parsed.raw_host.decode("ascii")
        ips = await self.resolve(host)
        return VettedURL(url=str(parsed), scheme=scheme, host=normalise_host(host), port=port, ips=ips)

    def ssl_context(self) -> ssl.SSLContext:
        """Verifying TLS context: the system store plus the operator's extra CA file, if any."""
        if self._ssl_context is None:
            ctx = ssl.create_default_context()
            extra = getattr(self.settings, "outbound_ca_file", None)
            if extra:
                ctx.load_verify_locations(cafile=str(extra))
            self._ssl_context = ctx
        return self._ssl_context

    async def fetch(
        self,
        url: str,
        *,
        method: str = "GET",
        headers: dict[str, str] | None = None,
        max_bytes: int | None = None,
        timeout_s: float | None = None,
        follow_redirects: bool = True,
        max_redirects: int = 5,
        verify: bool = True,
        content: bytes | None = None,
    ) -> FetchResult:
        """Fetch ``url`` through the guard: vetted address, re-vetted redirects, size and time caps.

        ``content`` is a request body (a webhook's POST); it is not sent again after a redirect.
        """
        limit = max_bytes if max_bytes is not None else self.settings.outbound_max_bytes
        budget = timeout_s if timeout_s is not None else self.settings.outbound_timeout_s
        try:
            async with asyncio.timeout(budget):
                return await self._fetch_chain(
                    url, method.upper(), dict(headers or {}), limit, follow_redirects, max_redirects, verify, content
                )
        except TimeoutError as exc:
            raise UpstreamTimeoutError(f"target did not answer within {budget:g} s") from exc

    async def _fetch_chain(
        self,
        url: str,
        method: str,
        headers: dict[str, str],
        limit: int,
        follow_redirects: bool,
        max_redirects: int,
        verify: bool,
        content: bytes | None = None,
    ) -> FetchResult:
        hops: list[RedirectHop] = []
        current = url
        while True:
            try:
                vetted = await self.vet_url(current)
            except (InputError, DomainNotFoundError) as exc:
                if hops:  # the caller's URL was fine; the target steered somewhere unacceptable
                    raise TargetRefusedError(f"redirect refused: {exc.message}") from exc
                raise
            result = await self._fetch_one(vetted, method, headers, limit, verify, content if not hops else None)
            location = result.headers.get("location")
            if not (follow_redirects and result.status_code in _REDIRECT_STATUSES and location):
                result.redirects = hops
                return result
            if len(hops) >= max_redirects:
                raise UpstreamError(f"target redirected more than {max_redirects} times")
            hops.append(RedirectHop(url=vetted.url, status_code=result.status_code, location=location))
            try:
                nxt = httpx.URL(vetted.url).join(location)
            except (httpx.InvalidURL, ValueError) as exc:
                raise UpstreamError("target sent an invalid redirect location") from exc
            # RFC 9110 15.4: 303 always, and 301/302 after POST by long practice, turn into GET.
            if (result.status_code == 303 and method != "HEAD") or (
                result.status_code in (301, 302) and method == "POST"
            ):
                method = "GET"
            if nxt.host != httpx.URL(vetted.url).host:
                # Credentials meant for one site must not follow a redirect to another.
                for secret in ("authorization", "cookie", "proxy-authorization"):
                    headers = {k: v for k, v in headers.items() if k.lower() != secret}
            current = str(nxt)

    async def _fetch_one(
        self,
        vetted: VettedURL,
        method: str,
        headers: dict[str, str],
        limit: int,
        verify: bool,
        content: bytes | None = None,
    ) -> FetchResult:
        is_literal = _ip_literal(vetted.host) is not None
        default_port = 443 if vetted.scheme == "https" else 80
        host_header = f"[{vetted.host}]" if ":" in vetted.host else vetted.host
        if vetted.port != default_port:
            host_header += f":{vetted.port}"
        send_headers = {"User-Agent": "arkgate (+https://github.com/arkgate)", **headers, "Host": host_header}
        extensions = {} if is_literal or vetted.scheme != "https" else {"sni_hostname": vetted.host}
        last_error: Exception | None = None
        for ip in vetted.ips:
            target = httpx.URL(vetted.url).copy_with(host=str(ip))
            client = httpx.AsyncClient(
                verify=self.ssl_context() if verify else False,
                trust_env=False,  # never route user targets through an environment proxy
                follow_redirects=False,
                timeout=httpx.Timeout(self.settings.outbound_timeout_s),
            )
            try:
                request = client.build_request(
                    method, target, headers=send_headers, extensions=extensions, content=content
                )
                response = await client.send(request, stream=True)
                try:
                    body, truncated = await _read_capped(response, limit)
                finally:
                    await response.aclose()
                return FetchResult(
                    url=vetted.url,
                    status_code=response.status_code,
                    headers=response.headers,
                    content=body,
                    ip=str(ip),
                    truncated=truncated,
                    http_version=response.http_version,
                )
            except httpx.ConnectError as exc:
                last_error = exc  # try the next vetted address
            except httpx.TimeoutException as exc:
                raise UpstreamTimeoutError(f"{vetted.host} did not answer in time") from exc
            except httpx.HTTPError as exc:
                raise UpstreamError(f"{vetted.host} sent an invalid HTTP response") from exc
            finally:
                await client.aclose()
        if last_error is not None and "CERTIFICATE_VERIFY_FAILED" in str(last_error):
            raise UpstreamError(f"TLS certificate of {vetted.host} failed verification") from last_error
        raise UpstreamError(f"could not connect to {vetted.host} port {vetted.port}") from last_error


async def _read_capped(response: httpx.Response, limit: int) -> tuple[bytes, bool]:
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes(_CHUNK):
        if size + len(chunk) > limit:
            chunks.append(chunk[: limit - size])
            return b"".join(chunks), True
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks), False


# --- spelling checks (pure functions, shared with the domain validators) ----------------
def _parse_ip(text: str) -> IPAddress:
    try:
        return ipaddress.ip_address(text.strip().strip("[]"))
    except ValueError as exc:
        raise TargetRefusedError(f"target refused: {text!r} is not a canonical IP address") from exc


def _ip_literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def looks_numeric(host: str) -> bool:
    """True when a URL parser could read ``host`` as an IPv4 number (WHATWG: last label numeric)."""
    labels = host.lower().rstrip(".").split(".")
    return bool(labels) and bool(_NUMERIC_LABEL.match(labels[-1]))


def normalise_host(host: str) -> str:
    """Lower-case ASCII host without brackets or one trailing dot; refuse unsafe spellings."""
    text = host.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
        literal = _ip_literal(text)
        if not isinstance(literal, ipaddress.IPv6Address):
            raise TargetRefusedError(f"target refused: {host!r} is not an IPv6 address")
        return str(literal)
    text = text.lower()
    if text.endswith("."):
        text = text[:-1]
    if not text:
        raise InputError("host is empty")
    literal = _ip_literal(text)
    if literal is not None:
        if "%" in text:
            raise TargetRefusedError("target refused: scoped IPv6 addresses are not allowed")
        if isinstance(literal, ipaddress.IPv4Address) and str(literal) != text:
            raise TargetRefusedError(f"target refused: {host!r} is not a canonical IPv4 address")
        return str(literal)
    if ":" in text or "%" in text:
        raise TargetRefusedError(f"target refused: {host!r} is not a canonical IP address or host name")
    if looks_numeric(text):
        raise TargetRefusedError(
            f"target refused: {host!r} is a non-canonical IP address spelling "
            "(decimal, octal, hex or short); write the address as four decimal numbers"
        )
    if not text.isascii():
        raise InputError(f"host {host!r} must be ASCII (IDNA/punycode)")
    if len(text) > 253 or not all(_HOST_LABEL.match(label) for label in text.split(".")):
        raise InputError(f"{host!r} is not a valid host name")
    if text == "localhost" or text.endswith(".localhost"):
        raise TargetRefusedError(f"target refused: {host!r} is a loopback name")
    return text


def parse_url(url: str) -> httpx.URL:
    """Parse a user-given URL with the same parser the fetch uses; refuse ambiguous forms."""
    if not isinstance(url, str) or not url.strip():
        raise InputError("url is empty")
    if len(url) > MAX_URL_CHARS:
        raise InputError(f"url is longer than {MAX_URL_CHARS} characters")
    if _FORBIDDEN_URL_CHARS.search(url.strip()):
        raise InputError("url contains spaces, control characters or backslashes")
    try:
        parsed = httpx.URL(url.strip())
    except (httpx.InvalidURL, ValueError) as exc:
        raise InputError(f"url is not valid: {exc}") from exc
    if parsed.scheme not in ("http", "https"):
        raise TargetRefusedError(
            f"target refused: scheme {parsed.scheme or '(none)'!r} is not allowed (only http and https)"
        )
    if parsed.userinfo:
        raise InputError("url must not contain a user name or password")
    if not parsed.raw_host:
        raise InputError("url has no host")
    return parsed


def get_guard(settings: Settings) -> OutboundGuard:
    """Factory for ``ctx.services.get(get_guard)``: one guard per app."""
    return OutboundGuard(settings)
