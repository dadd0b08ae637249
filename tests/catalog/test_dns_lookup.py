"""dns-lookup through the gateway against a real nsd serving the test zones."""

from __future__ import annotations

import pytest

from tests.peers.assertions import BAD_DOMAINS, assert_free_failure, assert_paid, assert_rejects_all
from tests.peers.dns import nsd_fixture, silent_dns_fixture  # noqa: F401

pytestmark = pytest.mark.dns


async def test_returns_every_record_type_with_ttls(gateway_factory, nsd) -> None:
    async with gateway_factory(dns_nameservers=[nsd.nameserver]) as gw:
        token = await gw.new_session(100)
        data = await assert_paid(gw, token, "dns-lookup", {"domain": "open.test"}, 3)
        assert data["status"] == "NOERROR"
        assert data["a"] == ["192.0.2.10", "192.0.2.11"]
        assert data["aaaa"] == ["2001:db8::10"]
        assert data["mx"] == ["10 mail.open.test", "20 backup-mail.open.test"]
        assert data["ns"] == ["ns1.open.test", "ns2.open.test"]
        assert "v=spf1 ip4:192.0.2.0/24 include:_spf.open.test -all" in data["txt"]
        assert data["soa"]["serial"] == 2024010101
        assert data["caa"] == ['0 issue "letsencrypt.org"', '0 iodef "mailto:security@open.test"']
        assert data["srv"] == ["_sip._tcp.open.test 10 60 5060 sip.open.test"]
        a_records = data["records"]["A"]
        assert {r["ttl"] for r in a_records} == {"600"}
        assert {r["ttl_seconds"] for r in a_records} == {600}
        assert data["records"]["MX"][0]["data"] == {"preference": 10, "exchange": "mail.open.test"}
        assert data["records"]["SRV"][0]["data"]["port"] == 5060
        assert data["record_count"] == sum(len(v) for v in data["records"].values())
        await gw.assert_ledger_consistent()


async def test_cname_is_reported(gateway_factory, nsd) -> None:
    async with gateway_factory(dns_nameservers=[nsd.nameserver]) as gw:
        token = await gw.new_session(100)
        data = await assert_paid(gw, token, "dns-lookup", {"domain": "www.open.test"}, 3)
        assert data["cname"] == ["open.test"]


async def test_missing_name_is_a_free_404(gateway_factory, nsd) -> None:
    # The shared DNS rule (docs/endpoints-security.md); every DNS endpoint is covered in test_dns_rule.py.
    async with gateway_factory(dns_nameservers=[nsd.nameserver]) as gw:
        token = await gw.new_session(100)
        body = await assert_free_failure(gw, token, "dns-lookup", {"domain": "missing.open.test"}, 404)
        assert body["error_code"] == "domain_not_found"


async def test_ai_summary_flag_is_accepted_with_a_note(gateway_factory, nsd) -> None:
    async with gateway_factory(dns_nameservers=[nsd.nameserver]) as gw:
        token = await gw.new_session(100)
        response = await gw.call("dns-lookup", {"domain": "open.test", "ai_summary": True}, token=token)
        body = response.json()
        assert body["cost_sats"] == 3
        assert any("AI summaries are not available" in n for n in body["notes"])


async def test_bad_domains_are_400_at_no_cost(gateway_factory, nsd) -> None:
    async with gateway_factory(dns_nameservers=[nsd.nameserver]) as gw:
        token = await gw.new_session(100)
        await assert_rejects_all(gw, token, "dns-lookup", "domain", BAD_DOMAINS)


async def test_resolver_timeout_is_504_and_refunded(gateway_factory, silent_dns) -> None:
    async with gateway_factory(dns_nameservers=[silent_dns.nameserver], outbound_timeout_s=1) as gw:
        token = await gw.new_session(100)
        await assert_free_failure(gw, token, "dns-lookup", {"domain": "open.test"}, 504)
        await gw.assert_ledger_consistent()


async def test_resolver_refusing_the_query_is_502_and_refunded(gateway_factory, nsd) -> None:
    # nsd answers REFUSED for zones it does not serve, as a locked-down resolver would.
    async with gateway_factory(dns_nameservers=[nsd.nameserver]) as gw:
        token = await gw.new_session(100)
        body = await assert_free_failure(gw, token, "dns-lookup", {"domain": "example.org"}, 502)
        assert "127.0.0.1" not in body["error"]
        await gw.assert_ledger_consistent()
