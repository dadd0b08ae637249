"""One source of truth: every description of the catalog comes from the registry and agrees on prices."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import httpx
from mcp import Client

from arkgate.api.openapi import operation_id
from arkgate.catalog.registry import load_catalog

# Every backend configured (nothing listens there): all endpoints are available, so all are priced
# everywhere. How unavailable endpoints are shown is tested in test_availability.py.
BACKENDS = {
    "ai_base_url": "http://127.0.0.1:9/v1",
    "translate_base_url": "http://127.0.0.1:9",
    "image_base_url": "http://127.0.0.1:9/v1",
    # Any existing file will do: no screenshot is taken, and machines without Chromium still list it.
    "chromium_path": Path(sys.executable),
}


async def test_every_endpoint_has_the_same_price_in_all_six_outputs(live_gateway_factory):
    catalog = load_catalog()
    with live_gateway_factory(catalog, **BACKENDS) as gw:
        async with httpx.AsyncClient(base_url=gw.url, timeout=30) as http:
            openapi = (await http.get("/openapi.json")).json()
            listing = (await http.get("/v1/catalog")).json()
            arkapi = (await http.get("/.well-known/arkapi.json")).json()
            arkgate = (await http.get("/.well-known/arkgate.json")).json()
            llms = (await http.get("/llms.txt")).text
            llms_full = (await http.get("/llms-full.txt")).text
        async with Client(f"{gw.url}/mcp/") as client:
            tools = {tool.name: tool for tool in (await client.list_tools()).tools}
        settings = gw.runtime.settings

    # the same manifest, except that arkapi.json labels ArkAPI's tools with ArkAPI's categories
    assert {**arkapi, "tools": None} == {**arkgate, "tools": None}
    assert [{**t, "category": None} for t in arkapi["tools"]] == [{**t, "category": None} for t in arkgate["tools"]]
    in_catalog = {entry["id"]: entry for entry in listing["endpoints"]}
    in_manifest = {tool["id"]: tool for tool in arkapi["tools"]}
    assert len(catalog) > 0
    assert set(in_catalog) == set(in_manifest) == {e.id for e in catalog}
    assert arkapi["capabilities"] == [e.id for e in catalog]
    for endpoint in catalog:
        # The listed price (ArkAPI's cost_sats) is the most a call can cost; metered calls may cost less.
        price = endpoint.listed_price_sats(settings)
        operation = openapi["paths"][endpoint.path][endpoint.method.lower()]
        assert operation["x-cost-sats"] == price, endpoint.id
        assert operation["x-max-cost-sats"] == endpoint.max_price_sats(settings)
        assert operation["operationId"] == operation_id(endpoint)
        assert in_catalog[endpoint.id]["cost_sats"] == price
        assert in_manifest[endpoint.id]["cost_sats"] == price
        assert in_manifest[endpoint.id]["max_cost_sats"] == endpoint.max_price_sats(settings)
        tool = tools[endpoint.module_name]
        assert tool.meta["arkgate/cost_sats"] == price
        assert tool.meta["arkgate/max_cost_sats"] == endpoint.max_price_sats(settings)
        assert tool.meta["arkgate/min_cost_sats"] == endpoint.min_price_sats(settings)
        assert in_manifest[endpoint.id]["min_cost_sats"] == endpoint.min_price_sats(settings)
        line = re.search(
            rf"^- `{re.escape(endpoint.id)}` \((GET|POST) [^)]+\): [^\n]*?\. (?:up to )?(\d+) sats? per call",
            llms,
            re.MULTILINE,
        )
        assert line is not None, endpoint.id
        assert int(line.group(2)) == price
        assert line.group(1) == endpoint.method
        # The full text: the price line, the fields, a curl example with the endpoint's own example input.
        section = llms_full.split(f"### {endpoint.id}\n", 1)[1].split("\n### ", 1)[0]
        assert re.search(rf"- Price: (?:up to )?{price}\b", section), endpoint.id
        assert "curl -s" in section and endpoint.path in section
        for field in endpoint.request_model.model_fields:
            assert f"`{field}`" in section, (endpoint.id, field)
        if endpoint.metered is not None:
            rate = endpoint.metered.rate(settings)
            assert operation["x-pricing"]["rate"] == rate
            assert in_catalog[endpoint.id]["pricing"]["rate"] == rate
            assert in_manifest[endpoint.id]["pricing"]["rate"] == rate
            assert rate in tool.description and rate in llms


async def test_manifest_keeps_arkapi_shape(gateway):
    manifest = (await gateway.client.get("/.well-known/arkapi.json")).json()
    for key in (
        "name",
        "description",
        "openapi_url",
        "llms_url",
        "llms_full_url",
        "catalog_url",
        "version",
        "auth",
        "funding",
        "pricing_model",
        "discovery",
        "capabilities",
        "tools",
    ):
        assert key in manifest, key
    assert manifest["auth"]["type"] == "bearer"
    assert manifest["pricing_model"] == {"type": "pay_per_call", "unit": "sats", "cost_field": "x-cost-sats"}
    for tool in manifest["tools"]:
        assert {"id", "path", "method", "cost_sats", "category", "description", "sample_intent"} <= set(tool)
    assert manifest["openapi_url"] == "http://gateway/openapi.json"


async def test_quote_prices_n_calls(gateway):
    one = (await gateway.client.get("/v1/quote", params={"endpoint": "qr-generate", "calls": 25})).json()
    line = one["quotes"][0]
    assert line["price_sats"] == 2 and line["calls"] == 25
    assert line["min_total_sats"] == line["max_total_sats"] == line["session_sats"] == 50

    everything = (await gateway.client.get("/v1/quote")).json()
    assert {q["endpoint"] for q in everything["quotes"]} == {e.id for e in gateway.runtime.catalog}
    for q in everything["quotes"]:
        endpoint = gateway.runtime.catalog.get(q["endpoint"])
        assert q["max_total_sats"] == endpoint.max_price_sats(gateway.settings)

    unknown = await gateway.client.get("/v1/quote", params={"endpoint": "nope"})
    assert unknown.status_code == 404 and unknown.json()["success"] is False
    bad = await gateway.client.get("/v1/quote", params={"endpoint": "qr-generate", "calls": 0})
    assert bad.status_code == 400


async def test_llms_txt_explains_how_to_pay(gateway):
    text = (await gateway.client.get("/llms.txt")).text
    assert "POST http://gateway/v1/sessions" in text
    assert "Authorization: Bearer <token>" in text
    assert "L402" in text and "/mcp/" in text
    full = (await gateway.client.get("/llms-full.txt")).text
    assert "curl -s -X POST http://gateway/api/qr-generate" in full
    assert '"data": "https://example.com"' in full
