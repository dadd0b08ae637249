"""The outbound guard refuses every private, reserved or disguised target and never dials it.

Real peers only: nsd answers the names (``targets.test`` zone), HTTP(S) peers and
canaries listen on loopback addresses, and an audit hook records every socket the
process opens, so "not contacted" is observed, not assumed.
"""

from __future__ import annotations

import asyncio
import ipaddress

import pytest
from pydantic import ValidationError

from arkgate.errors import DomainNotFoundError, InputError, TargetRefusedError, UpstreamError, UpstreamTimeoutError
from arkgate.outbound.guard import BLOCKED_NETWORKS, OutboundGuard, get_guard
from arkgate.outbound.resolver import make_resolver, parse_nameserver
from arkgate.settings import Settings
from tests.peers.dns import free_port, nsd_fixture  # noqa: F401
from tests.peers.netaudit import ConnectionLog, connections_fixture  # noqa: F401
from tests.peers.web import CertFactory, HttpPeer, TcpCanary, cert_factory_fixture, http_peer_factory_fixture  # noqa: F401

pytestmark = pytest.mark.dns

ALLOWED = "127.0.0.1/32"

# (url, refused even with the test allowance 127.0.0.1/32?)  Every one must be refused
# before any connection: the canary listeners and the audit log check that.
HOSTILE = [
    # private, loopback and special-purpose IPv4 literals
    "http://127.0.0.2/",
    "http://127.255.255.254:8080/",
    "http://10.0.0.1/",
    "http://10.255.255.255/",
    "http://172.16.0.1/",
    "http://172.31.255.1/",
    "http://192.168.0.1/",
    "http://100.64.0.1/",
    "http://100.127.255.254/",
    "http://169.254.0.1/",
    "http://0.0.0.0/",
    "http://224.0.0.1/",
    "http://239.255.255.250/",
    "http://240.0.0.1/",
    "http://255.255.255.255/",
    "http://198.18.0.1/",
    "http://192.0.2.1/",
    "http://192.0.0.8/",
    # cloud metadata services
    "http://169.254.169.254/latest/meta-data/",
    "http://169.254.170.2/v2/credentials",
    "http://100.100.100.200/latest/meta-data/",
    "http://192.0.0.192/opc/v2/instance/",
    "http://[fd00:ec2::254]/latest/meta-data/",
    # IPv6 forms
    "http://[::1]/",
    "http://[::]/",
    "http://[::ffff:127.0.0.1]/",
    "http://[::ffff:7f00:1]/",
    "http://[::ffff:8.8.8.8]/",
    "http://[::127.0.0.1]/",
    "http://[fd00::1]/",
    "http://[fc00::1]/",
    "http://[fe80::1]/",
    "http://[ff02::1]/",
    "http://[64:ff9b::7f00:1]/",
    "http://[2002:7f00:1::1]/",
    "http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/",
    "http://[2001:db8::1]/",
    # non-canonical IPv4 spellings (decimal, hex, octal, short) and loopback names
    "http://2130706433/",
    "http://0x7f000001/",
    "http://0x7f.0.0.1/",
    "http://0177.0.0.1/",
    "http://017700000001/",
    "http://127.1/",
    "http://0/",
    "http://localhost/",
    "http://api.localhost/",
    # names (served by nsd) that resolve to private or reserved addresses
    "http://loop2.targets.test/",
    "http://ten.targets.test/",
    "http://rfc1918-b.targets.test/",
    "http://rfc1918-c.targets.test/",
    "http://cgnat.targets.test/",
    "http://linklocal.targets.test/",
    "http://metadata.targets.test/",
    "http://alibaba.targets.test/",
    "http://zero.targets.test/",
    "http://multicast.targets.test/",
    "http://reserved.targets.test/",
    "http://bcast.targets.test/",
    "http://doc.targets.test/",
    "http://bench.targets.test/",
    "http://v6loop.targets.test/",
    "http://v6mapped.targets.test/",
    "http://v6ula.targets.test/",
    "http://v6linklocal.targets.test/",
    "http://v6metadata.targets.test/",
    "http://v6nat64.targets.test/",
    "http://v6sixtofour.targets.test/",
    "http://mixed.targets.test/",  # one allowed and one private answer: the name is refused
    "http://alias.targets.test/",  # CNAME to a private name
    # schemes, ports and credentials
    "file:///etc/passwd",
    "gopher://www.targets.test:70/_GET",
    "ftp://www.targets.test/",
    "dict://www.targets.test:11211/",
    "http://www.targets.test:22/",
    "http://www.targets.test:6379/",
    "http://user:secret@www.targets.test/",
]

# Refused by a production guard (no allowance) although they are valid loopback targets.
HOSTILE_WITHOUT_ALLOWANCE = [
    "http://www.targets.test/",  # a DNS name resolving to 127.0.0.1
    "http://127.0.0.1/",
    "https://public.targets.test/",
]


def _settings(nsd_server, *, allow: bool = True, ports: list[int] | None = None, **extra) -> Settings:  # type: ignore[no-untyped-def]
    return Settings(
        dns_nameservers=[nsd_server.nameserver],
        unsafe_allow_private_targets=[ALLOWED] if allow else [],
        outbound_allowed_ports=[80, 443, 8080, *(ports or [])],
        outbound_timeout_s=5,
        **extra,
    )


def _assert_only_dns(log: ConnectionLog, nsd_server) -> None:  # type: ignore[no-untyped-def]
    contacted = {d for d in log.destinations if d != ("127.0.0.1", nsd_server.port)}
    assert contacted == set(), f"refused target was contacted: {contacted}"


def test_table_has_at_least_forty_hostile_targets() -> None:
    assert len(HOSTILE) + len(HOSTILE_WITHOUT_ALLOWANCE) >= 40
    assert len(set(HOSTILE)) == len(HOSTILE)


@pytest.mark.parametrize("url", HOSTILE)
async def test_hostile_target_is_refused_and_never_contacted(url, nsd, connections) -> None:  # type: ignore[no-untyped-def]
    guard = OutboundGuard(_settings(nsd))
    with pytest.raises(InputError) as caught:  # TargetRefusedError is an InputError: 400, cost 0
        await guard.fetch(url)
    assert caught.value.status == 400
    assert caught.value.message
    _assert_only_dns(connections, nsd)


@pytest.mark.parametrize("url", HOSTILE_WITHOUT_ALLOWANCE)
async def test_loopback_target_is_refused_without_the_unsafe_allowance(url, nsd, connections) -> None:  # type: ignore[no-untyped-def]
    guard = OutboundGuard(_settings(nsd, allow=False))
    with pytest.raises(TargetRefusedError, match="not a public address"):
        await guard.fetch(url)
    _assert_only_dns(connections, nsd)


@pytest.mark.parametrize(
    "spelling", ["2130706433", "0x7f000001", "0177.0.0.1", "127.1", "127.0.0.01", "0x7f.0x0.0x0.0x1", "1.2.3"]
)
async def test_non_canonical_ip_spellings_are_refused_by_name(spelling, nsd) -> None:  # type: ignore[no-untyped-def]
    guard = OutboundGuard(_settings(nsd))
    with pytest.raises(TargetRefusedError, match="canonical"):
        await guard.resolve(spelling)


def test_check_ip_accepts_public_and_refuses_each_blocked_network(nsd) -> None:  # type: ignore[no-untyped-def]
    guard = OutboundGuard(_settings(nsd, allow=False))
    assert guard.check_ip("8.8.8.8") == ipaddress.ip_address("8.8.8.8")
    assert guard.check_ip("2606:4700:4700::1111") == ipaddress.ip_address("2606:4700:4700::1111")
    for network, _reason in BLOCKED_NETWORKS:
        with pytest.raises(TargetRefusedError):
            guard.check_ip(network.network_address)


def test_allowance_covers_only_its_cidr(nsd) -> None:  # type: ignore[no-untyped-def]
    guard = OutboundGuard(_settings(nsd))
    assert str(guard.check_ip("127.0.0.1")) == "127.0.0.1"
    for other in ("127.0.0.2", "::ffff:127.0.0.1", "::1"):
        with pytest.raises(TargetRefusedError):
            guard.check_ip(other)


def test_unsafe_allowance_is_refused_on_mainnet() -> None:
    with pytest.raises(ValidationError, match="refused on mainnet"):
        Settings(network="mainnet", payment_mode="barkd", unsafe_allow_private_targets=[ALLOWED])


async def test_a_name_that_does_not_exist_is_domain_not_found(nsd) -> None:  # type: ignore[no-untyped-def]
    guard = OutboundGuard(_settings(nsd))
    with pytest.raises(DomainNotFoundError, match=r"nowhere\.targets\.test does not exist"):
        await guard.resolve("nowhere.targets.test")


async def test_fetch_connects_to_the_vetted_address_with_name_in_host_and_sni(
    nsd, cert_factory: CertFactory, http_peer_factory, connections
) -> None:  # type: ignore[no-untyped-def]
    cert = cert_factory.valid("public.targets.test")
    peer: HttpPeer = http_peer_factory(ssl_context=cert.server_context())
    peer.route("/", headers=[("Content-Type", "text/plain; charset=utf-8")], body="hello")
    guard = OutboundGuard(_settings(nsd, ports=[peer.port], outbound_ca_file=cert_factory.ca_file))
    result = await guard.fetch(peer.url("/", host="public.targets.test"))
    assert result.status_code == 200
    assert result.text == "hello"
    assert result.ip == "127.0.0.1"
    assert result.url == f"https://public.targets.test:{peer.port}/"
    assert peer.hits[0].host == f"public.targets.test:{peer.port}"  # TLS verified the name, too
    assert ("127.0.0.1", peer.port) in connections.destinations


async def test_fetch_follows_allowed_redirects_and_records_the_chain(nsd, http_peer_factory) -> None:  # type: ignore[no-untyped-def]
    peer: HttpPeer = http_peer_factory()
    peer.redirect("/a", "/b", 301).redirect("/b", f"http://www.targets.test:{peer.port}/c", 302)
    peer.route("/c", body="done")
    guard = OutboundGuard(_settings(nsd, ports=[peer.port]))
    result = await guard.fetch(peer.url("/a", host="public.targets.test"))
    assert result.status_code == 200
    assert [(h.status_code, h.location) for h in result.redirects] == [
        (301, "/b"),
        (302, f"http://www.targets.test:{peer.port}/c"),
    ]
    assert result.url == f"http://www.targets.test:{peer.port}/c"


async def test_redirect_to_private_target_is_refused_and_never_contacted(nsd, http_peer_factory, connections) -> None:  # type: ignore[no-untyped-def]
    canary = TcpCanary("127.0.0.2")
    canary6 = TcpCanary("::1")
    try:
        peer: HttpPeer = http_peer_factory()
        ports = [peer.port, canary.port, canary6.port]
        targets = {
            "/to-loop2-ip": f"http://127.0.0.2:{canary.port}/",
            "/to-loop2-name": f"http://loop2.targets.test:{canary.port}/",
            "/to-v6-loopback": f"http://[::1]:{canary6.port}/",
            "/to-mapped": f"http://[::ffff:127.0.0.2]:{canary.port}/",
            "/to-metadata": "http://169.254.169.254/latest/meta-data/",
            "/to-decimal": f"http://2130706434:{canary.port}/",
            "/to-file": "file:///etc/passwd",
            "/to-credentials": f"http://admin:admin@127.0.0.2:{canary.port}/",
            "/to-unresolvable": "http://nowhere.targets.test/",
        }
        for path, location in targets.items():
            peer.redirect(path, location)
        guard = OutboundGuard(_settings(nsd, ports=ports))
        for path in targets:
            with pytest.raises(TargetRefusedError, match="redirect refused"):
                await guard.fetch(peer.url(path, host="public.targets.test"))
        assert canary.connections == 0
        assert canary6.connections == 0
        assert not {("127.0.0.2", canary.port), ("::1", canary6.port)} & set(connections.destinations)
    finally:
        canary.close()
        canary6.close()


async def test_body_is_capped_at_max_bytes(nsd, http_peer_factory) -> None:  # type: ignore[no-untyped-def]
    peer: HttpPeer = http_peer_factory()
    peer.route("/big", body=b"x" * 100_000)
    guard = OutboundGuard(_settings(nsd, ports=[peer.port]))
    result = await guard.fetch(peer.url("/big", host="www.targets.test"), max_bytes=1000)
    assert len(result.content) == 1000
    assert result.truncated


async def test_too_many_redirects_is_an_upstream_error(nsd, http_peer_factory) -> None:  # type: ignore[no-untyped-def]
    peer: HttpPeer = http_peer_factory()
    peer.redirect("/loop", "/loop")
    guard = OutboundGuard(_settings(nsd, ports=[peer.port]))
    with pytest.raises(UpstreamError, match="redirected more than 3"):
        await guard.fetch(peer.url("/loop", host="www.targets.test"), max_redirects=3)


async def test_silent_target_times_out_as_504(nsd) -> None:  # type: ignore[no-untyped-def]
    canary = TcpCanary("127.0.0.1", hold=True)  # accepts, never answers
    try:
        guard = OutboundGuard(_settings(nsd, ports=[canary.port]))
        with pytest.raises(UpstreamTimeoutError):
            await guard.fetch(f"http://www.targets.test:{canary.port}/", timeout_s=0.5)
    finally:
        canary.close()


async def test_refused_connection_is_a_502(nsd) -> None:  # type: ignore[no-untyped-def]
    port = free_port()
    guard = OutboundGuard(_settings(nsd, ports=[port]))
    with pytest.raises(UpstreamError, match="could not connect"):
        await guard.fetch(f"http://www.targets.test:{port}/")


def test_nameserver_entries_parse() -> None:
    assert parse_nameserver("127.0.0.1:5353") == ("127.0.0.1", 5353)
    assert parse_nameserver("[::1]:5353") == ("::1", 5353)
    assert parse_nameserver("9.9.9.9") == ("9.9.9.9", 53)
    assert parse_nameserver("2620:fe::fe") == ("2620:fe::fe", 53)
    with pytest.raises(ValueError):
        parse_nameserver("dns.example:53")


async def test_resolver_uses_configured_nameserver(nsd) -> None:  # type: ignore[no-untyped-def]
    resolver = make_resolver(_settings(nsd))
    answer = await resolver.resolve("www.targets.test.", "A")
    assert [r.address for r in answer] == ["127.0.0.1"]
    assert get_guard(_settings(nsd)).settings.dns_nameservers == [nsd.nameserver]


async def test_concurrent_fetches_do_not_share_vetting(nsd, http_peer_factory) -> None:  # type: ignore[no-untyped-def]
    peer: HttpPeer = http_peer_factory()
    peer.route("/", body="ok")
    guard = OutboundGuard(_settings(nsd, ports=[peer.port]))
    good = guard.fetch(peer.url("/", host="www.targets.test"))
    bad = guard.fetch(f"http://ten.targets.test:{peer.port}/")
    results = await asyncio.gather(good, bad, return_exceptions=True)
    assert results[0].status_code == 200  # type: ignore[union-attr]
    assert isinstance(results[1], TargetRefusedError)
