"""The one DNS resolver factory: every lookup arkgate makes goes through ``make_resolver``.

``ARKGATE_DNS_NAMESERVERS`` (``host:port`` entries, IPv6 as ``[addr]:port``) replaces
the system resolver, so tests and private deployments can point every lookup,
including the outbound guard's, at a server of their choosing.

It also holds the one rule for what a lookup of a user-given name means
(docs/endpoints-security.md, "Names that do not exist"), used by the outbound guard
and every DNS-based endpoint:

* the resolver failed (timeout, SERVFAIL, REFUSED, no nameserver reachable): our side
  failed, never the caller's; 502 ``upstream_error`` or 504 ``upstream_timeout``,
  refunded (``resolver_failure``);
* the DNS answered NXDOMAIN for the name the caller gave: 404 ``domain_not_found``,
  free (``domain_not_found``). NXDOMAIN for a name we derive (``_dmarc.<domain>``, a
  DKIM selector) is an ordinary "no record" answer, not this rule.
"""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING

import dns.asyncresolver
import dns.exception
import dns.nameserver
import dns.resolver

from arkgate.errors import DomainNotFoundError, UpstreamError, UpstreamTimeoutError

if TYPE_CHECKING:
    from arkgate.settings import Settings

# Per-query budget; the whole lookup is bounded by the outbound timeout.
_QUERY_TIMEOUT_S = 3.0


def parse_nameserver(entry: str) -> tuple[str, int]:
    """Split ``host:port`` / ``[v6]:port`` / bare address into (ip, port); the host must be an IP."""
    text = entry.strip()
    port = 53
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        if rest:
            if not rest.startswith(":"):
                raise ValueError(f"bad nameserver entry {entry!r}")
            port = int(rest[1:])
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
        port = int(port_text)
    else:
        host = text  # bare IPv4, or bare IPv6 without a port
    ipaddress.ip_address(host)  # a nameserver given by name would need a resolver to find it
    if not 0 < port < 65536:
        raise ValueError(f"bad nameserver port in {entry!r}")
    return host, port


def nameservers(settings: Settings) -> list[dns.nameserver.Do53Nameserver]:
    """The configured nameservers as dnspython objects (empty: use the system resolver)."""
    return [dns.nameserver.Do53Nameserver(*parse_nameserver(e)) for e in settings.dns_nameservers]


def make_resolver(settings: Settings) -> dns.asyncresolver.Resolver:
    """An async resolver honouring ``dns_nameservers``; search domains are never applied."""
    configured = nameservers(settings)
    if configured:
        resolver = dns.asyncresolver.Resolver(configure=False)
        resolver.nameservers = configured
    else:
        try:
            resolver = dns.asyncresolver.Resolver(configure=True)
        except dns.resolver.NoResolverConfiguration:
            resolver = dns.asyncresolver.Resolver(configure=False)
            resolver.nameservers = ["127.0.0.1"]
    # Search lists would turn "metadata" into "metadata.internal.corp": never expand names.
    resolver.use_search_by_default = False
    resolver.search = []
    resolver.timeout = min(_QUERY_TIMEOUT_S, settings.outbound_timeout_s)
    resolver.lifetime = settings.outbound_timeout_s
    return resolver


def domain_not_found(name: str) -> DomainNotFoundError:
    """The caller's name does not exist (NXDOMAIN): a free 404, the same wherever it is found."""
    return DomainNotFoundError(
        f"{name} does not exist: the DNS answered NXDOMAIN (no such domain). Nothing was charged."
    )


def resolver_failure(name: str, exc: dns.exception.DNSException) -> UpstreamError | UpstreamTimeoutError:
    """The resolver could not answer for ``name``: an upstream failure (502, or 504 on timeout), refunded."""
    if isinstance(exc, dns.exception.Timeout):  # LifetimeTimeout included
        return UpstreamTimeoutError(f"DNS lookup of {name} timed out: the resolver did not answer in time")
    if isinstance(exc, dns.resolver.NoNameservers):
        return UpstreamError(
            f"DNS lookup of {name} failed: the resolver answered SERVFAIL or REFUSED, or could not be reached"
        )
    return UpstreamError(f"DNS lookup of {name} failed ({type(exc).__name__})")
