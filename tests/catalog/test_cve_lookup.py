"""cve-lookup against recorded NVD CVE API 2.0 answers on loopback."""

from __future__ import annotations

import pytest

from tests.upstreams import UpstreamServer, upstream_server_fixture  # noqa: F401
from tests.upstreams.checks import assert_not_charged, assert_paid

NVD = "/rest/json/cves/2.0"


@pytest.fixture
def nvd(upstream_server: UpstreamServer) -> UpstreamServer:
    upstream_server.serve_file(NVD, "nvd/empty.json")
    upstream_server.serve_file(NVD, "nvd/cve_2024_3400.json", query={"cveId": "CVE-2024-3400"})
    upstream_server.serve_file(NVD, "nvd/cve_2021_44228.json", query={"cveId": "CVE-2021-44228"})
    return upstream_server


def overrides(server: UpstreamServer, timeout_s: float = 5.0, **extra: object) -> dict[str, object]:
    return {"nvd_url": f"{server.url}{NVD}", "upstream_retry_backoff_s": 0, "nvd_timeout_s": timeout_s, **extra}


async def test_record_with_cvss_v31_and_v40_cwe_and_kev(gateway_factory, nvd: UpstreamServer) -> None:
    async with gateway_factory(**overrides(nvd)) as gw:
        token = await gw.new_session(sats=50)
        data = assert_paid(await gw.call("cve-lookup", {"cve": "cve-2024-3400"}, token=token), 3)
    assert data["cve_id"] == "CVE-2024-3400"
    assert data["severity"] == "CRITICAL"
    assert data["cvss_score"] == 10.0
    assert data["cvss_version"] == "3.1"
    assert data["cvss"]["v3_1"]["source"] == "nvd@nist.gov"  # NVD's Primary score preferred over the CNA's
    assert data["cvss"]["v4_0"]["vector"].startswith("CVSS:4.0/AV:N")
    assert data["cvss"]["v4_0"]["severity"] == "CRITICAL"
    assert data["cwes"] == ["CWE-77", "CWE-20"]
    assert data["has_kev"] is True
    assert data["kev"]["date_added"] == "2024-04-12"
    assert data["kev"]["action_due"] == "2024-04-19"
    assert data["kev"]["name"].startswith("Palo Alto Networks PAN-OS")
    assert data["primary_reference_url"] == "https://security.paloaltonetworks.com/CVE-2024-3400"
    assert data["nvd_url"] == "https://nvd.nist.gov/vuln/detail/CVE-2024-3400"
    assert data["affected_cpes"] == [
        "cpe:2.3:o:paloaltonetworks:pan-os:10.2.0:-:*:*:*:*:*:*",
        "cpe:2.3:o:paloaltonetworks:pan-os:11.0.0:-:*:*:*:*:*:*",
    ]
    assert data["published_at"] == "2024-04-12T08:15:06Z"
    # ArkAPI's names
    assert (data["found"], data["source"]) == (True, "NVD")
    assert data["published"].startswith("2024-04-12T08:15:06")
    assert data["last_modified"] and data["vulnerability_status"] == data["status"]
    assert data["kev_added"] == "2024-04-12" and data["required_action"] == data["kev"]["required_action"]
    assert data["references"] == [r["url"] for r in data["reference_details"]]
    assert "https://security.paloaltonetworks.com/CVE-2024-3400" in data["references"]
    assert data["description"].startswith("A command injection")


async def test_v2_severity_sits_outside_cvss_data(gateway_factory, nvd: UpstreamServer) -> None:
    async with gateway_factory(**overrides(nvd)) as gw:
        token = await gw.new_session(sats=50)
        data = assert_paid(await gw.call("cve-lookup", {"cve": "CVE-2021-44228"}, token=token), 3)
    assert data["cvss"]["v2_0"] == {
        "version": "2.0",
        "score": 9.3,
        "severity": "HIGH",
        "vector": "AV:N/AC:M/Au:N/C:C/I:C/A:C",
        "source": "nvd@nist.gov",
        "type": "Primary",
    }
    assert data["cwes"] == ["CWE-20", "CWE-400", "CWE-502", "CWE-917"]


async def test_second_lookup_is_cached_and_key_goes_in_a_header(gateway_factory, nvd: UpstreamServer) -> None:
    async with gateway_factory(**overrides(nvd, nvd_api_key="nvd-secret-key")) as gw:
        token = await gw.new_session(sats=50)
        first = await gw.call("cve-lookup", {"cve": "CVE-2024-3400"}, token=token)
        assert_paid(first, 3)
        assert_paid(await gw.call("cve-lookup", {"cve": "CVE-2024-3400"}, token=token), 3)
    assert nvd.hits(NVD) == 1
    sent = nvd.requests_to(NVD)[0]
    assert sent.headers["apikey"] == "nvd-secret-key"
    assert "nvd-secret-key" not in str(sent.query)
    assert "nvd-secret-key" not in first.text


async def test_unknown_cve_is_not_charged(gateway_factory, nvd: UpstreamServer) -> None:
    async with gateway_factory(**overrides(nvd)) as gw:
        token = await gw.new_session(sats=50)
        resp = await gw.call("cve-lookup", {"cve": "CVE-2099-0001"}, token=token)
        body = await assert_not_charged(gw, resp, token, 50, 404)
    assert "CVE-2099-0001" in body["error"]


@pytest.mark.parametrize("cve", ["", "CVE-24-3400", "CVE-2024-12", "2024-3400", "CVE-1998-0001", "CVE-2024-3400; DROP"])
async def test_malformed_ids_are_a_free_400(gateway_factory, nvd: UpstreamServer, cve: str) -> None:
    async with gateway_factory(**overrides(nvd)) as gw:
        token = await gw.new_session(sats=50)
        await assert_not_charged(gw, await gw.call("cve-lookup", {"cve": cve}, token=token), token, 50, 400)
    assert nvd.hits(NVD) == 0


@pytest.mark.parametrize(("mode", "status"), [("fail", 502), ("hang", 504)])
async def test_nvd_failure_is_refunded(gateway_factory, nvd: UpstreamServer, mode: str, status: int) -> None:
    nvd.fail(NVD, 500) if mode == "fail" else nvd.hang(NVD)
    async with gateway_factory(**overrides(nvd, 0.3, nvd_api_key="nvd-secret-key")) as gw:
        token = await gw.new_session(sats=50)
        resp = await gw.call("cve-lookup", {"cve": "CVE-2024-3400"}, token=token)
        body = await assert_not_charged(gw, resp, token, 50, status, hidden=(nvd.url, "nvd-secret-key"))
    assert "NVD" in body["error"]
