"""cve-search against recorded NVD keyword-search answers on loopback."""

from __future__ import annotations

import json

import pytest

from tests.upstreams import FIXTURES_DIR, UpstreamServer, upstream_server_fixture  # noqa: F401
from tests.upstreams.checks import assert_not_charged, assert_paid

NVD = "/rest/json/cves/2.0"
QUERY = "wordpress information disclosure"


@pytest.fixture
def nvd(upstream_server: UpstreamServer) -> UpstreamServer:
    upstream_server.serve_file(NVD, "nvd/empty.json")
    upstream_server.serve_file(NVD, "nvd/search_wordpress.json", query={"keywordSearch": QUERY})
    return upstream_server


def overrides(server: UpstreamServer, timeout_s: float = 5.0) -> dict[str, object]:
    return {"nvd_url": f"{server.url}{NVD}", "upstream_retry_backoff_s": 0, "nvd_timeout_s": timeout_s}


async def test_matches_newest_first_with_severity(gateway_factory, nvd: UpstreamServer) -> None:
    async with gateway_factory(**overrides(nvd)) as gw:
        token = await gw.new_session(sats=50)
        data = assert_paid(await gw.call("cve-search", {"query": QUERY, "limit": 5}, token=token), 4)
    assert data["query"] == QUERY
    assert data["total_results"] == 3
    assert [r["cve_id"] for r in data["results"]] == ["CVE-2024-31210", "CVE-2023-39999", "CVE-2017-5487"]
    newest, middle, oldest = data["results"]
    assert (newest["severity"], newest["cvss_score"], newest["cvss_version"]) == ("HIGH", 8.6, "4.0")
    assert (middle["severity"], middle["cvss_score"], middle["cvss_version"]) == ("MEDIUM", 4.3, "3.1")
    assert (oldest["severity"], oldest["cvss_score"], oldest["cvss_version"]) == ("MEDIUM", 5.3, "3.0")
    assert middle["cwes"] == ["CWE-200"]
    assert middle["nvd_url"] == "https://nvd.nist.gov/vuln/detail/CVE-2023-39999"
    sent = nvd.requests_to(NVD)[0].query
    assert (sent["keywordSearch"], sent["resultsPerPage"], sent["startIndex"]) == (QUERY, "5", "0")


async def test_many_matches_fetch_the_newest_page(gateway_factory, nvd: UpstreamServer) -> None:
    recorded = json.loads((FIXTURES_DIR / "nvd/search_wordpress.json").read_text())
    oldest_page = {
        **recorded,
        "totalResults": 12,
        "resultsPerPage": 2,
        "vulnerabilities": recorded["vulnerabilities"][:2],
    }
    newest_page = {
        **recorded,
        "totalResults": 12,
        "resultsPerPage": 2,
        "startIndex": 10,
        "vulnerabilities": recorded["vulnerabilities"][1:],
    }
    nvd.serve_json(NVD, oldest_page, query={"keywordSearch": "wordpress", "startIndex": "0"})
    nvd.serve_json(NVD, newest_page, query={"keywordSearch": "wordpress", "startIndex": "10"})
    async with gateway_factory(**overrides(nvd)) as gw:
        token = await gw.new_session(sats=50)
        data = assert_paid(await gw.call("cve-search", {"query": "wordpress", "limit": 2}, token=token), 4)
    assert data["total_results"] == 12
    assert [r["cve_id"] for r in data["results"]] == ["CVE-2024-31210", "CVE-2023-39999"]


async def test_no_match_is_an_empty_result(gateway_factory, nvd: UpstreamServer) -> None:
    async with gateway_factory(**overrides(nvd)) as gw:
        token = await gw.new_session(sats=50)
        data = assert_paid(await gw.call("cve-search", {"query": "no such product"}, token=token), 4)
    assert data == {"query": "no such product", "total_results": 0, "results": []}


async def test_repeat_search_is_cached(gateway_factory, nvd: UpstreamServer) -> None:
    async with gateway_factory(**overrides(nvd)) as gw:
        token = await gw.new_session(sats=50)
        assert_paid(await gw.call("cve-search", {"query": QUERY}, token=token), 4)
        assert_paid(await gw.call("cve-search", {"query": f"  {QUERY.upper()} "}, token=token), 4)
    assert nvd.hits(NVD) == 1


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"query": ""},
        {"query": " x "},
        {"query": "a" * 201},
        {"query": QUERY, "limit": "five"},
    ],
)
async def test_bad_input_is_a_free_400(gateway_factory, nvd: UpstreamServer, payload: dict) -> None:
    async with gateway_factory(**overrides(nvd)) as gw:
        token = await gw.new_session(sats=50)
        await assert_not_charged(gw, await gw.call("cve-search", payload, token=token), token, 50, 400)


@pytest.mark.parametrize(("mode", "status"), [("fail", 502), ("hang", 504)])
async def test_nvd_failure_is_refunded(gateway_factory, nvd: UpstreamServer, mode: str, status: int) -> None:
    nvd.fail(NVD, 503) if mode == "fail" else nvd.hang(NVD)
    async with gateway_factory(**overrides(nvd, 0.3)) as gw:
        token = await gw.new_session(sats=50)
        resp = await gw.call("cve-search", {"query": QUERY}, token=token)
        await assert_not_charged(gw, resp, token, 50, status, hidden=(nvd.url,))
    if mode == "fail":
        assert nvd.hits(NVD) == 3  # first try + two retries of a transient 503
