"""whois through the gateway: RDAP from a local server, port-43 WHOIS fallback from a local server."""

from __future__ import annotations

from tests.peers.assertions import BAD_DOMAINS, assert_free_failure, assert_paid, assert_rejects_all
from tests.peers.dns import free_port
from tests.peers.whois import WhoisPeer, rdap_peer_fixture, whois_peer_fixture  # noqa: F401


def _settings(rdap, whois, **extra):  # type: ignore[no-untyped-def]
    return {
        "rdap_bootstrap_url": f"http://127.0.0.1:{rdap.port}/bootstrap/dns.json",
        "whois_server": "127.0.0.1",
        "whois_port": whois.port,
        "whois_timeout_s": 2,
        **extra,
    }


async def test_rdap_answer_is_parsed(gateway_factory, rdap_peer, whois_peer) -> None:
    async with gateway_factory(**_settings(rdap_peer, whois_peer)) as gw:
        token = await gw.new_session(100)
        data = await assert_paid(gw, token, "whois", {"domain": "example.com"}, 5)
        assert data["source"] == "rdap"
        assert data["registered"] is True
        assert data["registrar"] == "RESERVED-Internet Assigned Numbers Authority"
        assert data["registrar_iana_id"] == "376"
        assert data["created_date"] == "1995-08-14T04:00:00Z"
        assert data["expiry_date"] == "2026-08-13T04:00:00Z"
        assert data["updated_date"] == "2025-08-14T07:01:39Z"
        assert "client transfer prohibited" in data["status"]
        assert data["nameservers"] == ["a.iana-servers.net", "b.iana-servers.net"]
        assert data["dnssec"] is True
        assert data["rdap"]["handle"] == "2336799_DOMAIN_COM-VRSN"
        assert whois_peer.queries == []  # RDAP answered: no WHOIS needed
        assert "127.0.0.1" not in str(data["evidence"])
        await gw.assert_ledger_consistent()


async def test_cctld_without_rdap_falls_back_to_port_43(gateway_factory, rdap_peer, whois_peer) -> None:
    async with gateway_factory(**_settings(rdap_peer, whois_peer)) as gw:
        token = await gw.new_session(100)
        data = await assert_paid(gw, token, "whois", {"domain": "example.co.uk"}, 5)
        assert data["source"] == "whois"
        assert data["registered"] is True
        assert data["registrar"].startswith("Nom-IQ Ltd. dba COM LAUDE")
        assert data["created_date"] == "1996-11-26T00:00:00Z"
        assert data["expiry_date"] == "2027-11-26T00:00:00Z"
        assert data["nameservers"] == ["ns1.example-dns.co.uk", "ns2.example-dns.co.uk"]
        assert "Nominet" in data["raw_text"]
        assert whois_peer.queries == ["example.co.uk"]


async def test_denic_answer_is_parsed(gateway_factory, rdap_peer, whois_peer) -> None:
    async with gateway_factory(**_settings(rdap_peer, whois_peer)) as gw:
        token = await gw.new_session(100)
        data = await assert_paid(gw, token, "whois", {"domain": "beispiel.de"}, 5)
        assert data["registered"] is True
        assert data["nameservers"] == ["ns1.beispiel-dns.de", "ns2.beispiel-dns.de"]
        assert data["dnssec"] is True
        assert data["updated_date"] == "2024-03-12T20:44:25Z"


async def test_rdap_down_falls_back_to_whois(gateway_factory, rdap_peer, whois_peer) -> None:
    rdap_peer.route("/com/v1/domain/example.com", status=503, body="busy")
    async with gateway_factory(**_settings(rdap_peer, whois_peer)) as gw:
        token = await gw.new_session(100)
        data = await assert_paid(gw, token, "whois", {"domain": "example.com"}, 5)
        assert data["source"] == "whois"
        assert data["registrar"] == "RESERVED-Internet Assigned Numbers Authority"
        assert data["dnssec"] is True
        assert "RDAP unavailable" in data["evidence"][0]


async def test_ai_summary_is_accepted(gateway_factory, rdap_peer, whois_peer) -> None:
    async with gateway_factory(**_settings(rdap_peer, whois_peer)) as gw:
        token = await gw.new_session(100)
        response = await gw.call("whois", {"domain": "example.com", "ai_summary": True}, token=token)
        assert response.json()["cost_sats"] == 5
        assert response.json()["notes"]


async def test_bad_domains_are_400_at_no_cost(gateway_factory, rdap_peer, whois_peer) -> None:
    async with gateway_factory(**_settings(rdap_peer, whois_peer)) as gw:
        token = await gw.new_session(100)
        await assert_rejects_all(gw, token, "whois", "domain", BAD_DOMAINS)
    assert whois_peer.queries == [] and rdap_peer.hits == []


async def test_unknown_tld_is_400_at_no_cost(gateway_factory, rdap_peer, whois_peer) -> None:
    async with gateway_factory(**_settings(rdap_peer, whois_peer, whois_server="")) as gw:
        token = await gw.new_session(100)
        await assert_free_failure(gw, token, "whois", {"domain": "example.test"}, 400, "no RDAP or WHOIS service")


async def test_both_upstreams_refused_is_502_and_refunded(gateway_factory) -> None:
    dead = free_port()
    settings = {
        "rdap_bootstrap_url": f"http://127.0.0.1:{dead}/bootstrap/dns.json",
        "whois_server": "127.0.0.1",
        "whois_port": dead,
    }
    async with gateway_factory(**settings) as gw:
        token = await gw.new_session(100)
        body = await assert_free_failure(gw, token, "whois", {"domain": "example.com"}, 502)
        assert str(dead) not in body["error"]
        await gw.assert_ledger_consistent()


async def test_silent_whois_server_is_504_and_refunded(gateway_factory, rdap_peer) -> None:
    silent = WhoisPeer({}, silent=True)
    try:
        async with gateway_factory(**_settings(rdap_peer, silent, whois_timeout_s=1)) as gw:
            token = await gw.new_session(100)
            await assert_free_failure(gw, token, "whois", {"domain": "example.co.uk"}, 504)
    finally:
        silent.close()
