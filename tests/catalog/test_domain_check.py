"""domain-check through the gateway: RDAP 404 and per-registry WHOIS 'no match' wording."""

from __future__ import annotations

import pytest

from arkgate.catalog._security.registration import no_match
from tests.peers.assertions import BAD_DOMAINS, assert_free_failure, assert_paid, assert_rejects_all
from tests.peers.dns import free_port
from tests.peers.whois import fixture_text, rdap_peer_fixture, whois_peer_fixture  # noqa: F401


def _settings(rdap, whois, **extra):  # type: ignore[no-untyped-def]
    return {
        "rdap_bootstrap_url": f"http://127.0.0.1:{rdap.port}/bootstrap/dns.json",
        "whois_server": "127.0.0.1",
        "whois_port": whois.port,
        "whois_timeout_s": 2,
        **extra,
    }


@pytest.mark.parametrize(
    ("domain", "availability", "source", "evidence"),
    [
        ("example.com", "registered", "rdap", "returned the domain object"),
        ("available-example.com", "available", "rdap", "404 Not Found"),
        ("example.co.uk", "registered", "whois", "registration data"),
        ("available-example.co.uk", "available", "whois", "No match for"),
        ("beispiel.de", "registered", "whois", "registration data"),
        ("frei-beispiel.de", "available", "whois", "Status: free"),
    ],
)
async def test_verdict_and_evidence(
    gateway_factory, rdap_peer, whois_peer, domain, availability, source, evidence
) -> None:
    async with gateway_factory(**_settings(rdap_peer, whois_peer)) as gw:
        token = await gw.new_session(100)
        data = await assert_paid(gw, token, "domain-check", {"domain": domain}, 3)
        assert data["availability"] == availability
        assert data["available"] is (availability == "available")
        assert data["registered"] is (availability == "registered")
        assert data["source"] == source
        assert evidence in " ".join(data["evidence"])
        if domain == "example.com":  # ArkAPI's registration fields, from the recorded RDAP answer
            assert data["created_date"] and data["name_servers"]


async def test_unrecognised_whois_answer_is_unknown(gateway_factory, rdap_peer, whois_peer) -> None:
    whois_peer.answers["odd.co.uk"] = "% rate limit exceeded, try again later\r\n"
    async with gateway_factory(**_settings(rdap_peer, whois_peer)) as gw:
        token = await gw.new_session(100)
        data = await assert_paid(gw, token, "domain-check", {"domain": "odd.co.uk"}, 3)
        assert data["availability"] == "unknown"
        assert data["available"] is False  # ArkAPI types it bool; availability says unknown


def test_no_match_patterns_cover_recorded_registries() -> None:
    assert no_match(fixture_text("whois/com-no-match.txt"))
    assert no_match(fixture_text("whois/uk-no-match.txt"))
    assert no_match(fixture_text("whois/de-free.txt"))
    for registered in ("whois/com-example.com.txt", "whois/uk-example.co.uk.txt", "whois/de-beispiel.de.txt"):
        assert no_match(fixture_text(registered)) is None


async def test_bad_domains_are_400_at_no_cost(gateway_factory, rdap_peer, whois_peer) -> None:
    async with gateway_factory(**_settings(rdap_peer, whois_peer)) as gw:
        token = await gw.new_session(100)
        await assert_rejects_all(gw, token, "domain-check", "domain", BAD_DOMAINS)


async def test_upstreams_down_is_502_and_refunded(gateway_factory) -> None:
    dead = free_port()
    settings = {
        "rdap_bootstrap_url": f"http://127.0.0.1:{dead}/bootstrap/dns.json",
        "whois_server": "127.0.0.1",
        "whois_port": dead,
    }
    async with gateway_factory(**settings) as gw:
        token = await gw.new_session(100)
        await assert_free_failure(gw, token, "domain-check", {"domain": "example.com"}, 502)
        await gw.assert_ledger_consistent()
