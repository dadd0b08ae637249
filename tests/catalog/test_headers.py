"""headers through the gateway against real HTTP(S) servers with good and bad headers."""

from __future__ import annotations

import pytest

from tests.peers.assertions import assert_free_failure, assert_paid, assert_rejects_all
from tests.peers.dns import free_port, nsd_fixture  # noqa: F401
from tests.peers.netaudit import connections_fixture  # noqa: F401
from tests.peers.web import TcpCanary, cert_factory_fixture, http_peer_factory_fixture  # noqa: F401

pytestmark = pytest.mark.dns

GOOD_HEADERS = [
    ("Strict-Transport-Security", "max-age=63072000; includeSubDomains; preload"),
    ("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'"),
    ("X-Frame-Options", "DENY"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "strict-origin-when-cross-origin"),
    ("Permissions-Policy", "camera=(), microphone=()"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
    ("Cross-Origin-Resource-Policy", "same-origin"),
    ("Set-Cookie", "session=abc; Secure; HttpOnly; SameSite=Lax; Path=/"),
    ("Server", "nginx"),
]
BAD_HEADERS = [
    ("Content-Security-Policy", "default-src * 'unsafe-inline'"),
    ("Server", "Apache/2.4.41 (Ubuntu)"),
    ("X-Powered-By", "PHP/7.2.1"),
    ("Set-Cookie", "session=abc; Path=/"),
    ("Set-Cookie", "prefs=dark; HttpOnly; SameSite=None"),
]


def _settings(nsd_server, cert_factory, *ports: int, **extra):  # type: ignore[no-untyped-def]
    return {
        "dns_nameservers": [nsd_server.nameserver],
        "unsafe_allow_private_targets": ["127.0.0.1/32"],
        "outbound_allowed_ports": [80, 443, *ports],
        "outbound_ca_file": cert_factory.ca_file,
        **extra,
    }


async def test_good_headers_over_https_after_redirect_grade_a(
    gateway_factory, nsd, cert_factory, http_peer_factory
) -> None:
    tls = http_peer_factory(ssl_context=cert_factory.valid("good.targets.test").server_context())
    tls.route("/", headers=GOOD_HEADERS, body="<html>ok</html>")
    plain = http_peer_factory()
    plain.redirect("/", f"https://good.targets.test:{tls.port}/", 301)
    async with gateway_factory(**_settings(nsd, cert_factory, tls.port, plain.port)) as gw:
        token = await gw.new_session(100)
        start = f"http://good.targets.test:{plain.port}/"
        data = await assert_paid(gw, token, "headers", {"url": start}, 3)
        assert data["grade"] == "A"
        assert data["score"] == 100
        assert data["https"] is True
        assert data["final_url"] == f"https://good.targets.test:{tls.port}/"
        assert data["redirects"] == [
            {"url": start, "status_code": 301, "location": f"https://good.targets.test:{tls.port}/"}
        ]
        assert data["missing"] == []
        assert data["checks"]["hsts"]["ok"] is True
        assert data["cookies"] == [
            {"name": "session", "secure": True, "http_only": True, "same_site": "lax", "issues": []}
        ]
        assert data["headers"]["x-frame-options"] == "DENY"
        await gw.assert_ledger_consistent()


async def test_bad_headers_are_found(gateway_factory, nsd, cert_factory, http_peer_factory) -> None:
    tls = http_peer_factory(ssl_context=cert_factory.valid("bad.targets.test").server_context())
    tls.route("/", headers=BAD_HEADERS, body="hi")
    async with gateway_factory(**_settings(nsd, cert_factory, tls.port)) as gw:
        token = await gw.new_session(100)
        data = await assert_paid(gw, token, "headers", {"url": f"https://bad.targets.test:{tls.port}/"}, 3)
        assert data["grade"] == "F"
        assert set(data["missing"]) >= {"hsts", "x_frame_options", "x_content_type_options", "referrer_policy"}
        messages = " | ".join(f["message"] for f in data["findings"])
        assert "unsafe-inline" in messages
        assert "Apache/2.4.41" in messages
        assert "PHP/7.2.1" in messages
        issues = {c["name"]: c["issues"] for c in data["cookies"]}
        assert any("Secure" in i for i in issues["session"]) and any("HttpOnly" in i for i in issues["session"])
        assert any("SameSite=None without Secure" in i for i in issues["prefs"])


async def test_plain_http_site_reports_hsts_useless(gateway_factory, nsd, cert_factory, http_peer_factory) -> None:
    plain = http_peer_factory()
    plain.route("/", headers=[("Strict-Transport-Security", "max-age=63072000")], body="x")
    async with gateway_factory(**_settings(nsd, cert_factory, plain.port)) as gw:
        token = await gw.new_session(100)
        data = await assert_paid(gw, token, "headers", {"url": f"http://www.targets.test:{plain.port}/"}, 3)
        assert data["https"] is False
        assert data["checks"]["hsts"]["points"] == 0
        assert "plain HTTP" in " ".join(f["message"] for f in data["findings"])


async def test_redirect_to_private_address_is_refused_at_no_cost(
    gateway_factory, nsd, cert_factory, http_peer_factory, connections
) -> None:
    canary = TcpCanary("127.0.0.2")
    try:
        plain = http_peer_factory()
        plain.redirect("/", f"http://127.0.0.2:{canary.port}/admin")
        async with gateway_factory(**_settings(nsd, cert_factory, plain.port, canary.port)) as gw:
            token = await gw.new_session(100)
            await assert_free_failure(
                gw, token, "headers", {"url": f"http://public.targets.test:{plain.port}/"}, 400, "redirect refused"
            )
        assert canary.connections == 0
        assert ("127.0.0.2", canary.port) not in connections.destinations
    finally:
        canary.close()


BAD_URLS = [
    "",
    "   ",
    "file:///etc/passwd",
    "ftp://www.targets.test/",
    "http://",
    "http://user:pw@www.targets.test/",
    "http://www.targets.test\\@evil.test/",
    "http://exa mple.test/",
    "https://" + "a" * 2100 + ".test/",
    "http://169.254.169.254/latest/meta-data/",
    "http://2130706433/",
    "http://[::1]/",
    "http://ten.targets.test/",
    "http://www.targets.test:22/",
    None,
    42,
]


async def test_bad_or_hostile_urls_are_400_at_no_cost(gateway_factory, nsd, cert_factory) -> None:
    async with gateway_factory(**_settings(nsd, cert_factory)) as gw:
        token = await gw.new_session(100)
        await assert_rejects_all(gw, token, "headers", "url", BAD_URLS)


async def test_refused_connection_is_502_and_refunded(gateway_factory, nsd, cert_factory) -> None:
    port = free_port()
    async with gateway_factory(**_settings(nsd, cert_factory, port)) as gw:
        token = await gw.new_session(100)
        await assert_free_failure(gw, token, "headers", {"url": f"http://www.targets.test:{port}/"}, 502)
        await gw.assert_ledger_consistent()


async def test_silent_site_is_504_and_refunded(gateway_factory, nsd, cert_factory) -> None:
    canary = TcpCanary("127.0.0.1", hold=True)
    try:
        settings = _settings(nsd, cert_factory, canary.port, outbound_timeout_s=1)
        async with gateway_factory(**settings) as gw:
            token = await gw.new_session(100)
            await assert_free_failure(gw, token, "headers", {"url": f"http://www.targets.test:{canary.port}/"}, 504)
    finally:
        canary.close()
