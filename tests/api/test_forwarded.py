"""Behind a proxy: X-Forwarded-For and -Proto count only from ARKGATE_FORWARDED_ALLOW_IPS.

A real ``arkgate serve`` on 127.0.0.1; clients bind 127.0.0.2 (the trusted proxy) or
127.0.0.3 (anyone else) as their source address.
"""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.served import served_gateway

PROXY, STRANGER = "127.0.0.2", "127.0.0.3"


def _client(source: str) -> httpx.Client:
    return httpx.Client(transport=httpx.HTTPTransport(local_address=source), timeout=30)


def _create(client: httpx.Client, url: str, forwarded_for: str) -> int:
    response = client.post(f"{url}/v1/sessions", json={"amount_sats": 500}, headers={"X-Forwarded-For": forwarded_for})
    return response.status_code


def test_rate_limits_follow_the_real_client_only_through_a_trusted_proxy(tmp_path: Path) -> None:
    with (
        served_gateway(
            tmp_path,
            rate_limits="on",
            rate_limit_sessions="2/minute",
            forwarded_allow_ips="127.0.0.2/32,10.0.0.0/8",
        ) as gw,
        _client(PROXY) as proxy,
        _client(STRANGER) as stranger,
    ):
        # Through the proxy each real client has its own window.
        assert [_create(proxy, gw.url, "198.51.100.1") for _ in range(3)] == [201, 201, 429]
        assert _create(proxy, gw.url, "198.51.100.2") == 201
        # From an untrusted address the header is ignored: the window is the stranger's own.
        assert [_create(stranger, gw.url, f"198.51.100.{n}") for n in (10, 11, 12)] == [201, 201, 429]


def test_the_public_scheme_comes_from_a_trusted_proxy_only(tmp_path: Path) -> None:
    with (
        served_gateway(tmp_path, forwarded_allow_ips="127.0.0.2") as gw,
        _client(PROXY) as proxy,
        _client(STRANGER) as stranger,
    ):
        headers = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "198.51.100.7", "Host": "api.example.com"}
        trusted = proxy.get(f"{gw.url}/.well-known/arkapi.json", headers=headers).text
        assert "https://api.example.com" in trusted
        untrusted = stranger.get(f"{gw.url}/.well-known/arkapi.json", headers=headers).text
        assert "https://api.example.com" not in untrusted
        assert "http://api.example.com" in untrusted
