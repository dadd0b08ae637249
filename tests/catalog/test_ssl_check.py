"""ssl-check through the gateway against real TLS servers with generated certificates."""

from __future__ import annotations

import pytest

from tests.peers.assertions import BAD_DOMAINS, assert_free_failure, assert_paid, assert_rejects_all
from tests.peers.dns import free_port, nsd_fixture  # noqa: F401
from tests.peers.web import CertFactory, ServerCert, TcpCanary, cert_factory_fixture, http_peer_factory_fixture  # noqa: F401

pytestmark = pytest.mark.dns

HOST = "good.targets.test"


def _settings(nsd_server, cert_factory: CertFactory, port: int, **extra):  # type: ignore[no-untyped-def]
    return {
        "dns_nameservers": [nsd_server.nameserver],
        "unsafe_allow_private_targets": ["127.0.0.1/32"],
        "ssl_check_ports": [443, port],
        "outbound_ca_file": cert_factory.ca_file,
        **extra,
    }


async def _check(gateway_factory, nsd, cert_factory, http_peer_factory, cert: ServerCert, host: str = HOST):  # type: ignore[no-untyped-def]
    peer = http_peer_factory(ssl_context=cert.server_context())
    async with gateway_factory(**_settings(nsd, cert_factory, peer.port)) as gw:
        token = await gw.new_session(100)
        data = await assert_paid(gw, token, "ssl-check", {"domain": host, "port": peer.port}, 5)
        await gw.assert_ledger_consistent()
        return data


def _ids(data) -> set[str]:  # type: ignore[no-untyped-def]
    return {f["id"] for f in data["findings"]}


async def test_valid_certificate(gateway_factory, nsd, cert_factory, http_peer_factory) -> None:
    data = await _check(gateway_factory, nsd, cert_factory, http_peer_factory, cert_factory.valid(HOST, days=90))
    assert data["valid"] is True
    assert data["trusted"] is True
    assert data["hostname_match"] is True
    assert data["protocol"] == "TLSv1.3"
    assert data["cipher"]
    assert data["sans"] == [HOST]
    assert data["ip"] == "127.0.0.1"
    assert 88 <= data["days_remaining"] <= 90
    assert data["chain_length"] == len(data["chain_details"]) >= 1
    assert data["chain_details"][0]["sha256_fingerprint"].count(":") == 31
    assert "trustme" in data["issuer"]
    assert _ids(data) == set()


async def test_expired_certificate(gateway_factory, nsd, cert_factory, http_peer_factory) -> None:
    data = await _check(gateway_factory, nsd, cert_factory, http_peer_factory, cert_factory.expired(HOST))
    assert data["valid"] is False
    assert data["days_remaining"] < 0
    assert "expired" in _ids(data)
    assert "expired" in (data["trust_error"] or "")


async def test_self_signed_certificate(gateway_factory, nsd, cert_factory, http_peer_factory) -> None:
    data = await _check(gateway_factory, nsd, cert_factory, http_peer_factory, cert_factory.self_signed(HOST))
    assert data["trusted"] is False
    assert data["chain_details"][0]["self_issued"] is True
    assert "self_signed" in _ids(data)


async def test_wrong_host(gateway_factory, nsd, cert_factory, http_peer_factory) -> None:
    data = await _check(
        gateway_factory, nsd, cert_factory, http_peer_factory, cert_factory.valid("other.example", "*.elsewhere.test")
    )
    assert data["trusted"] is True  # a good chain...
    assert data["hostname_match"] is False  # ...for another name
    assert data["valid"] is False
    assert "hostname_mismatch" in _ids(data)


async def test_incomplete_chain(gateway_factory, nsd, cert_factory, http_peer_factory) -> None:
    data = await _check(gateway_factory, nsd, cert_factory, http_peer_factory, cert_factory.incomplete_chain(HOST))
    assert data["trusted"] is False
    assert data["chain_length"] == 1
    assert "incomplete_chain" in _ids(data)


async def test_weak_key_and_sha1_signature(gateway_factory, nsd, cert_factory, http_peer_factory) -> None:
    data = await _check(gateway_factory, nsd, cert_factory, http_peer_factory, cert_factory.weak_sha1(HOST))
    assert data["chain_details"][0]["key_bits"] == 1024
    assert "sha1" in data["chain_details"][0]["signature_algorithm"].lower()
    assert {"weak_key", "sha1_signature"} <= _ids(data)
    assert data["valid"] is False


async def test_ai_summary_is_accepted(gateway_factory, nsd, cert_factory, http_peer_factory) -> None:
    peer = http_peer_factory(ssl_context=cert_factory.valid(HOST).server_context())
    async with gateway_factory(**_settings(nsd, cert_factory, peer.port)) as gw:
        token = await gw.new_session(100)
        response = await gw.call("ssl-check", {"domain": HOST, "port": peer.port, "ai_summary": True}, token=token)
        assert response.json()["cost_sats"] == 5
        assert response.json()["notes"]


async def test_bad_domains_and_ports_are_400_at_no_cost(gateway_factory, nsd, cert_factory) -> None:
    async with gateway_factory(**_settings(nsd, cert_factory, 8443)) as gw:
        token = await gw.new_session(100)
        await assert_rejects_all(gw, token, "ssl-check", "domain", BAD_DOMAINS)
        await assert_rejects_all(gw, token, "ssl-check", "port", [0, 22, 65536, "abc"], {"domain": HOST})


async def test_private_target_is_refused_at_no_cost(gateway_factory, nsd, cert_factory) -> None:
    async with gateway_factory(**_settings(nsd, cert_factory, 8443)) as gw:
        token = await gw.new_session(100)
        await assert_free_failure(gw, token, "ssl-check", {"domain": "ten.targets.test", "port": 8443}, 400, "refused")


async def test_closed_port_is_502_and_refunded(gateway_factory, nsd, cert_factory) -> None:
    port = free_port()
    async with gateway_factory(**_settings(nsd, cert_factory, port)) as gw:
        token = await gw.new_session(100)
        await assert_free_failure(gw, token, "ssl-check", {"domain": HOST, "port": port}, 502)
        await gw.assert_ledger_consistent()


async def test_silent_server_is_504_and_refunded(gateway_factory, nsd, cert_factory) -> None:
    canary = TcpCanary("127.0.0.1", hold=True)
    try:
        async with gateway_factory(**_settings(nsd, cert_factory, canary.port, outbound_timeout_s=1)) as gw:
            token = await gw.new_session(100)
            await assert_free_failure(gw, token, "ssl-check", {"domain": HOST, "port": canary.port}, 504)
    finally:
        canary.close()
