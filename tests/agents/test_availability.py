"""Endpoints a gateway cannot serve are never sold: every output marks them, or hides them on request."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from mcp import Client

from arkgate.catalog.registry import load_catalog, needs_file, needs_module, needs_setting

# ai-chat has no backend in the test settings (ai_base_url is empty); qr-generate needs none.
IDS = ("qr-generate", "ai-chat", "translate")


async def outputs(url: str) -> dict[str, Any]:
    """Every description of the catalog a client can read, fetched from a running gateway."""
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        got: dict[str, Any] = {
            "catalog": (await http.get("/v1/catalog")).json(),
            "openapi": (await http.get("/openapi.json")).json(),
            "arkapi": (await http.get("/.well-known/arkapi.json")).json(),
            "arkgate": (await http.get("/.well-known/arkgate.json")).json(),
            "quote": (await http.get("/v1/quote")).json(),
            "llms": (await http.get("/llms.txt")).text,
            "llms_full": (await http.get("/llms-full.txt")).text,
            "index": (await http.get("/")).text,
            "docs": (await http.get("/docs")).text,
        }
    async with Client(f"{url}/mcp/") as client:
        got["mcp"] = {tool.name for tool in (await client.list_tools()).tools}
    return got


def card(index_html: str, endpoint_id: str) -> str:
    """The catalog page's card of one endpoint."""
    match = re.search(rf'<li class="card endpoint[^"]*" id="ep-{endpoint_id}">(.*?)</li>', index_html, re.S)
    assert match is not None, endpoint_id
    return match.group(0)


async def test_an_unconfigured_endpoint_is_marked_unavailable_in_every_output(live_gateway_factory):
    with live_gateway_factory(load_catalog(only=IDS)) as gw:
        got = await outputs(gw.url)

    entries = {e["id"]: e for e in got["catalog"]["endpoints"]}
    assert entries["qr-generate"]["available"] is True and entries["qr-generate"]["unavailable_reason"] is None
    for endpoint_id, setting in (("ai-chat", "ARKGATE_AI_BASE_URL"), ("translate", "ARKGATE_TRANSLATE_BASE_URL")):
        assert entries[endpoint_id]["available"] is False
        assert setting in entries[endpoint_id]["unavailable_reason"]

        operation = got["openapi"]["paths"][f"/api/{endpoint_id}"]["post"]
        assert operation["x-available"] is False
        assert operation["x-unavailable-reason"] == entries[endpoint_id]["unavailable_reason"]
        assert operation["description"].startswith("**Not available on this gateway")
        assert "503" in operation["responses"]

        for manifest in (got["arkapi"], got["arkgate"]):
            tool = next(t for t in manifest["tools"] if t["id"] == endpoint_id)
            assert tool["available"] is False and tool["unavailable_reason"]
            assert tool["mcp_tool"] is None
            assert endpoint_id not in manifest["capabilities"]

        quote = next(q for q in got["quote"]["quotes"] if q["endpoint"] == endpoint_id)
        assert quote["available"] is False

        line = next(x for x in got["llms"].splitlines() if x.startswith(f"- `{endpoint_id}`"))
        assert "Not available on this gateway" in line
        section = got["llms_full"].split(f"### {endpoint_id}\n", 1)[1].split("\n### ", 1)[0]
        assert "- Availability: **Not available on this gateway" in section

        html = card(got["index"], endpoint_id)
        assert "Not available on this gateway" in html
        assert "Call for" not in html and "tryit-form" not in html
        assert f"<code>{endpoint_id}</code>:" in got["docs"]

    assert "qr-generate" in got["arkapi"]["capabilities"]
    assert "2 more endpoints are listed but not available" in got["llms"]
    assert "Call for 2 sats" in card(got["index"], "qr-generate")
    assert 'id="unavailable"' in got["docs"]
    # MCP lists only what can be called (documented in docs/agents.md).
    assert "qr_generate" in got["mcp"]
    assert "ai_chat" not in got["mcp"] and "translate" not in got["mcp"]


async def test_hidden_mode_removes_unavailable_endpoints_everywhere(live_gateway_factory):
    with live_gateway_factory(load_catalog(only=IDS), unavailable_endpoints="hide") as gw:
        got = await outputs(gw.url)
        async with httpx.AsyncClient(base_url=gw.url, timeout=30) as http:
            routed = await http.post("/api/ai-chat", json={"prompt": "hi"})

    assert routed.status_code == 404
    assert [e["id"] for e in got["catalog"]["endpoints"]] == ["qr-generate"]
    assert not any(path.startswith(("/api/ai-chat", "/api/translate")) for path in got["openapi"]["paths"])
    assert [t["id"] for t in got["arkapi"]["tools"]] == ["qr-generate"]
    assert [q["endpoint"] for q in got["quote"]["quotes"]] == ["qr-generate"]
    for text in (got["llms"], got["llms_full"], got["index"], got["docs"]):
        assert "ai-chat" not in text and "Not available on this gateway" not in text
    assert "ai_chat" not in got["mcp"]


async def test_configured_backends_make_the_endpoints_available(live_gateway_factory):
    configured = {
        "ai_base_url": "http://127.0.0.1:9/v1",
        "translate_base_url": "http://127.0.0.1:9",
    }
    with live_gateway_factory(load_catalog(only=IDS), **configured) as gw:
        got = await outputs(gw.url)
    assert all(e["available"] for e in got["catalog"]["endpoints"])
    assert {"ai_chat", "translate", "qr_generate"} <= got["mcp"]
    assert "Not available" not in got["llms"] + got["llms_full"] + got["index"]
    assert "Call for" in card(got["index"], "ai-chat")


def test_requirements_report_the_first_missing_piece(make_settings, tmp_path):
    settings = make_settings(chromium_path=tmp_path / "no-chromium")
    assert needs_setting("ai_base_url", "chat model backend")(settings) is not None
    assert needs_setting("whois_server", "WHOIS server")(settings) is None
    missing_browser = needs_file("chromium_path", "the Chromium browser")(settings)
    assert missing_browser is not None and "Chromium" in missing_browser
    assert needs_module("json")(settings) is None
    # An optional extra that is not installed (light installs): the reason says how to get it.
    reason = needs_module("arkgate_no_such_package.sub", extra="ai")(settings)
    assert reason is not None and "arkgate[ai]" in reason
    screenshot = load_catalog(only=["screenshot"]).evaluated(settings)
    assert "Chromium" in (screenshot.unavailable_reason("screenshot") or "")


@pytest.mark.parametrize("mode", ["show", "hide", "bogus"])
def test_the_setting_accepts_show_and_hide_only(make_settings, mode):
    if mode == "bogus":
        with pytest.raises(ValueError, match="unavailable_endpoints"):
            make_settings(unavailable_endpoints=mode)
    else:
        assert make_settings(unavailable_endpoints=mode).unavailable_endpoints == mode
