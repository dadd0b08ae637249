"""ip-lookup through the gateway: bundled offline data, reverse DNS from nsd, special ranges."""

from __future__ import annotations

import pytest

from tests.peers.assertions import assert_paid, assert_rejects_all
from tests.peers.dns import nsd_fixture, silent_dns_fixture  # noqa: F401
from tests.peers.netaudit import connections_fixture  # noqa: F401

pytestmark = pytest.mark.dns


async def test_public_ipv4_has_country_network_and_ptr(gateway_factory, nsd) -> None:
    async with gateway_factory(dns_nameservers=[nsd.nameserver]) as gw:
        token = await gw.new_session(100)
        data = await assert_paid(gw, token, "ip-lookup", {"ip": "8.8.8.8"}, 3)
        assert data["is_public"] is True and data["scope"] == "public"
        assert data["country_code"] == "US"
        assert data["country"] == "United States"
        assert data["as_name"] == "GOOGLE"
        assert data["network"] == "8.8.8.0/24"
        assert data["reverse_dns"] == ["dns.google"]
        names = " ".join(s["name"] for s in data["sources"])
        assert "iptocc" in names and "geoip2fast" in names
        geolite = next(s for s in data["sources"] if "geoip2fast" in s["name"])
        assert geolite["date"] == "2024-06-18"
        assert "MaxMind" in geolite["attribution"]
        await gw.assert_ledger_consistent()


async def test_public_ipv6_without_ptr(gateway_factory, nsd) -> None:
    async with gateway_factory(dns_nameservers=[nsd.nameserver]) as gw:
        token = await gw.new_session(100)
        data = await assert_paid(gw, token, "ip-lookup", {"ip": "2001:4860:4860::8888"}, 3)
        assert data["version"] == 6
        assert data["country_code"] == "US"
        assert data["as_name"] == "GOOGLE"
        assert data["reverse_dns"] == []  # nsd refuses this reverse zone: reported, not fatal
        assert data["reverse_dns_error"]


@pytest.mark.parametrize(
    ("ip", "scope"),
    [
        ("10.1.2.3", "private"),
        ("127.0.0.1", "loopback"),
        ("100.64.1.1", "carrier-grade NAT (shared)"),
        ("169.254.169.254", "cloud metadata service"),
        ("192.0.2.7", "documentation (reserved)"),
        ("::1", "loopback"),
        ("fd12::1", "unique-local (private)"),
        ("::ffff:10.0.0.1", "IPv4-mapped IPv6"),
        ("[2001:db8::5]", "documentation (reserved)"),
    ],
)
async def test_special_ranges_are_reported_and_never_queried(gateway_factory, nsd, connections, ip, scope) -> None:
    async with gateway_factory(dns_nameservers=[nsd.nameserver]) as gw:
        token = await gw.new_session(100)
        data = await assert_paid(gw, token, "ip-lookup", {"ip": ip}, 3)
        assert data["is_public"] is False
        assert data["scope"] == scope
        assert data["country_code"] == "" and data["reverse_dns"] == []  # ArkAPI: empty, not null
    assert not [d for d in connections.destinations if d[1] == nsd.port]  # no PTR query for private space


BAD_IPS = [
    "",
    "not-an-ip",
    "2130706433",
    "0x7f.0.0.1",
    "0177.0.0.1",
    "127.1",
    "1.2.3.4.5",
    "fe80::1%eth0",
    "a" * 80,
    None,
]


async def test_bad_ips_are_400_at_no_cost(gateway_factory, nsd) -> None:
    async with gateway_factory(dns_nameservers=[nsd.nameserver]) as gw:
        token = await gw.new_session(100)
        await assert_rejects_all(gw, token, "ip-lookup", "ip", BAD_IPS)


async def test_silent_resolver_degrades_reverse_dns_only(gateway_factory, silent_dns) -> None:
    async with gateway_factory(dns_nameservers=[silent_dns.nameserver], outbound_timeout_s=1) as gw:
        token = await gw.new_session(100)
        data = await assert_paid(gw, token, "ip-lookup", {"ip": "1.1.1.1", "ai_summary": True}, 3)
        assert data["country_code"] == "AU"
        assert data["reverse_dns_error"] == "reverse DNS lookup timed out"
