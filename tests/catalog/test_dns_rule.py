"""One rule for names that do not exist and resolvers that fail, on every endpoint that resolves the caller's name.

A real nsd serves the test zones: ``missing.open.test`` does not exist (NXDOMAIN, a free 404
``domain_not_found``), ``example.org`` is a zone it does not serve (it answers REFUSED, as a
locked-down resolver would). A socket that never answers gives timeouts, and a closed port means
no nameserver can be reached. Resolver failures are the gateway's problem: 502/504, refunded.
whois and domain-check are not here: they ask the registry (RDAP, WHOIS), where an unknown name
is the answer "available", not an error.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.peers.assertions import assert_free_failure
from tests.peers.dns import free_port, nsd_fixture, silent_dns_fixture  # noqa: F401

pytestmark = pytest.mark.dns

# (endpoint, request for a name) for each endpoint that resolves a caller's name.
DNS_ENDPOINTS: list[tuple[str, Any]] = [
    ("dns-lookup", lambda name: {"domain": name}),
    ("domain-intel", lambda name: {"domain": name}),
    ("email-auth-check", lambda name: {"domain": name}),
    ("axfr-check", lambda name: {"domain": name}),
    ("ssl-check", lambda name: {"domain": name}),
    ("headers", lambda name: {"url": f"https://{name}/"}),
    ("url-to-markdown", lambda name: {"url": f"https://{name}/"}),
]
IDS = [endpoint_id for endpoint_id, _ in DNS_ENDPOINTS]


@pytest.mark.parametrize(("endpoint_id", "request_for"), DNS_ENDPOINTS, ids=IDS)
async def test_a_name_that_does_not_exist_is_a_free_404(gateway_factory, nsd, endpoint_id, request_for) -> None:
    async with gateway_factory(dns_nameservers=[nsd.nameserver]) as gw:
        token = await gw.new_session(100)
        body = await assert_free_failure(
            gw, token, endpoint_id, request_for("missing.open.test"), 404, "missing.open.test does not exist"
        )
        assert body["error_code"] == "domain_not_found"
        await gw.assert_ledger_consistent()


@pytest.mark.parametrize(("endpoint_id", "request_for"), DNS_ENDPOINTS, ids=IDS)
async def test_a_refusing_resolver_is_a_refunded_502(gateway_factory, nsd, endpoint_id, request_for) -> None:
    async with gateway_factory(dns_nameservers=[nsd.nameserver]) as gw:
        token = await gw.new_session(100)
        body = await assert_free_failure(gw, token, endpoint_id, request_for("example.org"), 502)
        assert body["error_code"] == "upstream_error"
        assert "127.0.0.1" not in body["error"] and str(nsd.port) not in body["error"]
        await gw.assert_ledger_consistent()


@pytest.mark.parametrize(("endpoint_id", "request_for"), DNS_ENDPOINTS, ids=IDS)
async def test_an_unreachable_resolver_is_a_refunded_504(gateway_factory, endpoint_id, request_for) -> None:
    # Nothing listens on the port: dnspython retries until its lifetime runs out, so this is a timeout.
    async with gateway_factory(dns_nameservers=[f"127.0.0.1:{free_port()}"], outbound_timeout_s=1) as gw:
        token = await gw.new_session(100)
        body = await assert_free_failure(gw, token, endpoint_id, request_for("open.test"), 504)
        assert body["error_code"] == "upstream_timeout"
        await gw.assert_ledger_consistent()


@pytest.mark.parametrize(("endpoint_id", "request_for"), DNS_ENDPOINTS, ids=IDS)
async def test_a_silent_resolver_is_a_refunded_504(gateway_factory, silent_dns, endpoint_id, request_for) -> None:
    async with gateway_factory(dns_nameservers=[silent_dns.nameserver], outbound_timeout_s=1) as gw:
        token = await gw.new_session(100)
        body = await assert_free_failure(gw, token, endpoint_id, request_for("open.test"), 504)
        assert body["error_code"] == "upstream_timeout"
        await gw.assert_ledger_consistent()
