"""email-auth-check through the gateway against nsd serving good, weak, broken and missing setups."""

from __future__ import annotations

import pytest

from tests.peers.assertions import BAD_DOMAINS, assert_free_failure, assert_paid, assert_rejects_all
from tests.peers.dns import nsd_fixture, silent_dns_fixture  # noqa: F401

pytestmark = pytest.mark.dns


def _messages(data) -> str:  # type: ignore[no-untyped-def]
    return " | ".join(f["message"] for f in data["findings"])


async def test_strong_setup_grades_a(gateway_factory, nsd) -> None:
    async with gateway_factory(dns_nameservers=[nsd.nameserver]) as gw:
        token = await gw.new_session(100)
        data = await assert_paid(gw, token, "email-auth-check", {"domain": "open.test"}, 4)
        assert data["grade"] == "A"
        assert data["spf"]["present"] and data["spf"]["valid"]
        assert data["spf"]["all_policy"] == "fail"
        assert data["spf"]["dns_lookups"] == 1
        assert data["dmarc"]["policy"] == "reject"
        assert data["dmarc"]["rua"] == ["mailto:dmarc@open.test"]
        assert data["dkim"]["present"] is True
        assert [(k["selector"], k["key_type"], k["key_bits"]) for k in data["dkim"]["keys"]] == [
            ("default", "rsa", 2048)
        ]
        assert data["mx"]["hosts"] == ["mail.open.test", "backup-mail.open.test"]
        assert data["mta_sts"]["present"] and data["mta_sts"]["id"] == "20240101"
        # mta-sts.open.test has no address: the policy is reported missing, the call still succeeds
        assert data["mta_sts"]["policy_error"]
        assert data["bimi"]["logo_url"] == "https://open.test/logo.svg"
        # ArkAPI's fields
        assert (data["spf"]["mode"], data["dmarc"]["mode"]) == ("enforced", "reject")
        assert data["dkim"]["selector_used"] == "default"
        assert data["dkim"]["found_selectors"] == ["default"]
        assert data["dkim"]["records"]["default"].startswith("v=DKIM1")


async def test_weak_setup_reports_plus_all_p_none_and_weak_dkim(gateway_factory, nsd) -> None:
    async with gateway_factory(dns_nameservers=[nsd.nameserver]) as gw:
        token = await gw.new_session(100)
        data = await assert_paid(gw, token, "email-auth-check", {"domain": "closed.test"}, 4)
        assert data["grade"] == "F"
        assert data["spf"]["all_policy"] == "pass"
        text = _messages(data)
        assert "+all" in text
        assert "p=none" in text
        assert "no rua" in text
        assert "weak 1024-bit" in text
        assert any(f["severity"] == "critical" for f in data["findings"])


async def test_spf_over_lookup_limit_and_quarantine(gateway_factory, nsd) -> None:
    async with gateway_factory(dns_nameservers=[nsd.nameserver]) as gw:
        token = await gw.new_session(100)
        data = await assert_paid(gw, token, "email-auth-check", {"domain": "mid.test"}, 4)
        assert data["spf"]["present"] is True
        assert data["spf"]["valid"] is False
        assert "lookup" in (data["spf"]["error"] or "").lower()
        assert data["dmarc"]["policy"] == "quarantine"
        assert data["mta_sts"]["present"] is True
        assert "SPF record is invalid" in _messages(data)
        assert data["grade"] in ("D", "E", "F")


async def test_missing_records_grade_f_without_leaking_the_resolver(gateway_factory, nsd) -> None:
    async with gateway_factory(dns_nameservers=[nsd.nameserver]) as gw:
        token = await gw.new_session(100)
        response = await gw.call("email-auth-check", {"domain": "bare.test"}, token=token)
        data = response.json()["data"]
        assert data["grade"] == "F"
        assert not data["spf"]["present"] and not data["dmarc"]["present"] and not data["dkim"]["present"]
        assert "No SPF record" in _messages(data)
        assert "No DMARC record" in _messages(data)
        assert str(nsd.port) not in response.text


async def test_bad_domains_are_400_at_no_cost(gateway_factory, nsd) -> None:
    async with gateway_factory(dns_nameservers=[nsd.nameserver]) as gw:
        token = await gw.new_session(100)
        await assert_rejects_all(gw, token, "email-auth-check", "domain", BAD_DOMAINS)


async def test_resolver_timeout_is_refunded(gateway_factory, silent_dns) -> None:
    async with gateway_factory(dns_nameservers=[silent_dns.nameserver], outbound_timeout_s=1) as gw:
        token = await gw.new_session(100)
        await assert_free_failure(gw, token, "email-auth-check", {"domain": "open.test"}, 504)
        await gw.assert_ledger_consistent()


async def test_given_selector_is_the_only_one_checked(gateway_factory, nsd) -> None:
    async with gateway_factory(dns_nameservers=[nsd.nameserver]) as gw:
        token = await gw.new_session(100)
        data = await assert_paid(gw, token, "email-auth-check", {"domain": "closed.test", "selector": " Selector1 "}, 4)
        assert data["dkim"]["selectors_checked"] == ["selector1"]
        assert data["dkim"]["selector_used"] == "selector1"
        assert data["spf"]["mode"] == "permissive" and data["dmarc"]["mode"] == "monitoring"
        missing = await assert_paid(gw, token, "email-auth-check", {"domain": "open.test", "selector": "nope"}, 4)
        assert missing["dkim"]["present"] is False and missing["dkim"]["found_selectors"] == []


@pytest.mark.parametrize("selector", ["a.b", "bad selector", "x" * 64, "sel/1", "ü"])
async def test_invalid_selector_is_a_free_400_as_in_arkapi(gateway_factory, nsd, selector: str) -> None:
    async with gateway_factory(dns_nameservers=[nsd.nameserver]) as gw:
        token = await gw.new_session(100)
        await assert_free_failure(
            gw, token, "email-auth-check", {"domain": "open.test", "selector": selector}, 400, "invalid DKIM selector"
        )
