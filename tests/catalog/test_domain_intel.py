"""domain-intel through the gateway against nsd, RDAP, HTTP and HTTPS peers on loopback."""

from __future__ import annotations

import pytest

from tests.ai_backends.fixtures import ai_overrides
from tests.ai_backends.server import AiBackend
from tests.peers.assertions import BAD_DOMAINS, assert_free_failure, assert_paid, assert_rejects_all
from tests.peers.dns import free_port, nsd_fixture, silent_dns_fixture  # noqa: F401
from tests.peers.netaudit import connections_fixture  # noqa: F401
from tests.peers.web import HttpPeer, cert_factory_fixture, http_peer_factory_fixture  # noqa: F401
from tests.peers.whois import RDAP_JSON, fixture_text

pytestmark = pytest.mark.dns

SITE_HEADERS = [
    ("Content-Type", "text/html; charset=utf-8"),
    ("Server", "nginx"),
    ("Strict-Transport-Security", "max-age=63072000; includeSubDomains"),
    ("Content-Security-Policy", "default-src 'self'"),
    ("X-Frame-Options", "SAMEORIGIN"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
]
HOMEPAGE = (
    '<html><head><meta name="generator" content="WordPress 6.5">'
    '<link rel="stylesheet" href="/wp-content/themes/x/style.css">'
    '<script src="/wp-includes/js/jquery/jquery.min.js"></script></head><body>hi</body></html>'
)
SECURITY_TXT = (
    "Contact: mailto:security@intel.test\n"
    "Contact: https://intel.test/report\n"
    "Expires: 2099-12-31T23:59:59Z\n"
    "Policy: https://intel.test/security-policy\n"
    "Preferred-Languages: en, de\n"
)
ROBOTS_TXT = (
    "User-agent: *\nDisallow: /wp-admin/\nAllow: /wp-admin/admin-ajax.php\n\nSitemap: https://intel.test/sitemap.xml\n"
)


@pytest.fixture
def site(nsd, cert_factory, http_peer_factory):  # type: ignore[no-untyped-def]
    tls: HttpPeer = http_peer_factory(ssl_context=cert_factory.valid("intel.test", "www.intel.test").server_context())
    tls.route("/", headers=SITE_HEADERS, body=HOMEPAGE)
    tls.route("/.well-known/security.txt", headers=[("Content-Type", "text/plain")], body=SECURITY_TXT)
    tls.route("/robots.txt", headers=[("Content-Type", "text/plain; charset=utf-8")], body=ROBOTS_TXT)
    plain: HttpPeer = http_peer_factory()
    plain.redirect("/", f"https://intel.test:{tls.port}/", 301)
    rdap: HttpPeer = http_peer_factory()
    rdap.route(
        "/rdap/domain/intel.test", headers=[("Content-Type", RDAP_JSON)], body=fixture_text("rdap/com-example.json")
    )
    settings = {
        "dns_nameservers": [nsd.nameserver],
        "unsafe_allow_private_targets": ["127.0.0.1/32"],
        "outbound_allowed_ports": [plain.port, tls.port],
        "intel_http_port": plain.port,
        "intel_https_port": tls.port,
        "outbound_ca_file": cert_factory.ca_file,
        "rdap_base_url": f"http://127.0.0.1:{rdap.port}/rdap/",
    }
    return settings, tls, plain, rdap


async def test_full_report_and_cache(gateway_factory, site) -> None:
    settings, tls, plain, rdap = site
    async with gateway_factory(**settings) as gw:
        token = await gw.new_session(100)
        data = await assert_paid(gw, token, "domain-intel", {"domain": "intel.test"}, 25)
        assert data["errors"] == {}
        assert data["registration"]["registrar"] == "RESERVED-Internet Assigned Numbers Authority"
        assert data["whois"] == data["registration"]
        assert data["dns"]["a"] == ["127.0.0.1"]
        assert data["ssl"]["valid"] is True and data["ssl"]["sans"] == ["intel.test", "www.intel.test"]
        assert data["headers"]["grade"] in ("A", "B")
        assert data["email_auth"]["dmarc"]["policy"] == "quarantine"
        assert data["security_txt"]["emails"] == ["security@intel.test"]
        assert data["security_txt"]["expired"] is False
        assert data["security_txt"]["preferred_languages"] == ["en", "de"]
        assert data["robots_txt"]["user_agents"] == ["*"]
        assert data["robots_txt"]["sitemaps"] == ["https://intel.test/sitemap.xml"]
        assert data["robots_txt"]["disallow_count"] == 1
        # ArkAPI's nested fields
        assert data["robots_txt"]["disallow"] == ["/wp-admin/"]
        assert data["robots_txt"]["allow"] == ["/wp-admin/admin-ajax.php"]
        assert data["providers"]["mail_provider"] == "intel.test"
        assert data["providers"]["behind_cloudflare"] is False
        tech = data["tech_fingerprint"]
        assert tech["cms"] == "WordPress"
        assert {"WordPress", "jQuery", "nginx"} <= set(tech["detected"])
        behaviour = data["http_behavior"]
        assert behaviour["https_redirect"] is True
        assert behaviour["status_chain"] == [301, 200]
        assert behaviour["redirect_chain"] == [f"https://intel.test:{tls.port}/"]
        assert behaviour["canonical_host"] == "intel.test"
        assert data["resolved_ips"][0]["scope"] == "loopback"
        assert data["subdomains"] == ["mail.intel.test", "www.intel.test"]
        assert data["providers"]["registrar"].startswith("RESERVED")
        assert data["findings"] and isinstance(data["recommendations"], list)
        assert data["cache"]["cached"] is False

        hits = len(tls.hits) + len(plain.hits) + len(rdap.hits)
        assert data["ai_summary"] is None and data["ai_summary_note"].startswith("not requested")
        assert data["ct_subdomains"] == []
        again = await assert_paid(gw, token, "domain-intel", {"domain": "intel.test", "ai_summary": True}, 25)
        assert again["cache"]["cached"] is True
        assert again["ai_summary"] is None
        assert again["ai_summary_note"] == "no AI backend is configured on this gateway"
        assert len(tls.hits) + len(plain.hits) + len(rdap.hits) == hits  # served from the cache
        await gw.assert_ledger_consistent()


async def test_broken_sections_degrade_without_failing_the_call(gateway_factory, site) -> None:
    settings, tls, _plain, rdap = site
    tls.route("/.well-known/security.txt", status=404, body="nope")
    tls.route("/security.txt", status=404, body="nope")
    rdap.route("/rdap/domain/intel.test", status=500, body="down")
    async with gateway_factory(**{**settings, "intel_http_port": free_port()}) as gw:
        token = await gw.new_session(100)
        data = await assert_paid(gw, token, "domain-intel", {"domain": "intel.test"}, 25)
        assert set(data["errors"]) == {"whois", "http_behavior"}
        assert data["http_behavior"] is None and data["registration"] is None
        assert data["security_txt"] == {**data["security_txt"], "present": False}
        assert data["ssl"]["valid"] is True
        assert any("security.txt" in r for r in data["recommendations"])


async def test_private_host_is_not_fetched_but_dns_is_reported(gateway_factory, site, connections) -> None:
    settings, *_ = site
    async with gateway_factory(**settings) as gw:
        token = await gw.new_session(100)
        data = await assert_paid(gw, token, "domain-intel", {"domain": "private.test"}, 25)
        assert data["dns"]["a"] == ["10.20.30.40"]
        for section in ("ssl", "headers", "http_behavior"):
            assert "refused" in data["errors"][section]
        assert data["resolved_ips"][0]["scope"] == "private"
    assert "10.20.30.40" not in connections.hosts()


async def test_bad_domains_are_400_at_no_cost(gateway_factory, nsd) -> None:
    async with gateway_factory(dns_nameservers=[nsd.nameserver]) as gw:
        token = await gw.new_session(100)
        await assert_rejects_all(gw, token, "domain-intel", "domain", BAD_DOMAINS)


async def test_everything_down_is_504_and_refunded(gateway_factory, silent_dns) -> None:
    settings = {
        "dns_nameservers": [silent_dns.nameserver],
        "outbound_timeout_s": 1,
        "rdap_base_url": f"http://127.0.0.1:{free_port()}/",
    }
    async with gateway_factory(**settings) as gw:
        token = await gw.new_session(100)
        await assert_free_failure(gw, token, "domain-intel", {"domain": "intel.test"}, 504)
        await gw.assert_ledger_consistent()


async def test_ai_summary_comes_from_the_configured_backend(gateway_factory, site) -> None:
    settings, *_ = site
    backend = AiBackend().start()
    try:
        async with gateway_factory(**settings, **ai_overrides(backend)) as gw:
            token = await gw.new_session(100)
            data = await assert_paid(gw, token, "domain-intel", {"domain": "intel.test", "ai_summary": True}, 25)
        summary = data["ai_summary"]
        assert summary["answer"] and summary["model"]
        assert (
            summary["usage"]["total_tokens"]
            == summary["usage"]["prompt_tokens"] + summary["usage"]["completion_tokens"]
        )
        assert data["ai_summary_note"] is None
        assert "sk-test-secret-key-123" not in str(data)
    finally:
        backend.stop()
