"""axfr-check through the gateway against nsd listening on 127.0.0.1 and ::1."""

from __future__ import annotations

import pytest

from tests.peers.assertions import BAD_DOMAINS, assert_free_failure, assert_paid, assert_rejects_all
from tests.peers.dns import NsdServer, nsd_fixture  # noqa: F401

pytestmark = pytest.mark.dns

LOOPBACK = ["127.0.0.1/32", "::1/128"]


def _settings(server: NsdServer, **extra):  # type: ignore[no-untyped-def]
    return {
        "dns_nameservers": [server.nameserver],
        "dns_query_port": server.port,
        "unsafe_allow_private_targets": LOOPBACK,
        **extra,
    }


async def test_open_zone_reports_allowed_with_records_from_ipv4_and_ipv6(gateway_factory, nsd) -> None:
    async with gateway_factory(**_settings(nsd)) as gw:
        token = await gw.new_session(100)
        data = await assert_paid(gw, token, "axfr-check", {"domain": "open.test"}, 12)
        assert data["allowed"] is True
        assert data["nameservers_checked"] == ["ns1.open.test", "ns2.open.test"]
        by_address = {(s["nameserver"], s["address"]): s for s in data["servers"]}
        assert by_address[("ns1.open.test", "127.0.0.1")]["family"] == "IPv4"
        assert by_address[("ns2.open.test", "::1")]["family"] == "IPv6"
        assert {s["status"] for s in data["servers"]} == {"allowed"}
        assert data["transfer_record_count"] == len(data["record_list"]) > 20
        names = {r["name"] for r in data["record_list"]}
        assert {"open.test", "mail.open.test", "_dmarc.open.test", "_sip._tcp.open.test"} <= names
        assert "Restrict zone transfers" in data["explanation"]
        # ArkAPI's shape: the same records grouped by type, TTLs as strings
        assert sum(len(v) for v in data["records"].values()) == data["transfer_record_count"]
        assert data["records"]["SOA"][0]["ttl"].isdigit()
        assert data["successful_nameserver"] == "ns1.open.test"
        assert data["truncated"] is False
        await gw.assert_ledger_consistent()


async def test_closed_zone_reports_refused_per_server(gateway_factory, nsd) -> None:
    async with gateway_factory(**_settings(nsd)) as gw:
        token = await gw.new_session(100)
        data = await assert_paid(gw, token, "axfr-check", {"domain": "closed.test"}, 12)
        assert data["allowed"] is False
        assert data["record_list"] == []
        assert data["records"] == {}
        assert data["transfer_record_count"] == 0
        assert sorted((s["address"], s["status"]) for s in data["servers"]) == [
            ("127.0.0.1", "refused"),
            ("::1", "refused"),
        ]
        assert "REFUSED" in data["servers"][0]["detail"]


async def test_private_nameserver_addresses_are_never_contacted(gateway_factory, nsd) -> None:
    # Without the loopback allowance every nameserver address is private: refused, free.
    async with gateway_factory(**{**_settings(nsd), "unsafe_allow_private_targets": []}) as gw:
        token = await gw.new_session(100)
        await assert_free_failure(gw, token, "axfr-check", {"domain": "open.test"}, 400, "non-public")


async def test_ipv6_nameserver_skipped_when_only_ipv4_loopback_is_allowed(gateway_factory, nsd) -> None:
    async with gateway_factory(**{**_settings(nsd), "unsafe_allow_private_targets": ["127.0.0.1/32"]}) as gw:
        token = await gw.new_session(100)
        data = await assert_paid(gw, token, "axfr-check", {"domain": "closed.test"}, 12)
        statuses = {s["address"]: s["status"] for s in data["servers"]}
        assert statuses == {"127.0.0.1": "refused", "::1": "skipped"}


async def test_unknown_domain_is_404_at_no_cost(gateway_factory, nsd) -> None:
    async with gateway_factory(**_settings(nsd)) as gw:
        token = await gw.new_session(100)
        await assert_free_failure(gw, token, "axfr-check", {"domain": "missing.open.test"}, 404, "does not exist")


async def test_bad_domains_are_400_at_no_cost(gateway_factory, nsd) -> None:
    async with gateway_factory(**_settings(nsd)) as gw:
        token = await gw.new_session(100)
        await assert_rejects_all(gw, token, "axfr-check", "domain", BAD_DOMAINS)


async def test_nameservers_that_do_not_listen_give_502_and_refund(gateway_factory, nsd) -> None:
    from tests.peers.dns import free_port

    async with gateway_factory(**_settings(nsd, dns_query_port=free_port())) as gw:
        token = await gw.new_session(100)
        await assert_free_failure(gw, token, "axfr-check", {"domain": "open.test"}, 502)
        await gw.assert_ledger_consistent()
