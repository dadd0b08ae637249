"""The MCP server over streamable HTTP, driven by the official SDK's client against a real uvicorn server."""

from __future__ import annotations

from typing import Any

import httpx
import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from tests.agents.conftest import offline_catalog
from tests.conftest import wait_for
from tests.upstreams import UpstreamServer

SESSION_TOOLS = {"create_session", "session_funding", "check_balance", "top_up", "create_key", "withdraw"}


def text_of(result: Any) -> str:
    return "\n".join(block.text for block in result.content if getattr(block, "type", "") == "text")


async def test_tools_list_and_a_paid_call_debits_the_price(live_gateway_factory):
    with live_gateway_factory(offline_catalog("qr-generate", "btc-price")) as gw:
        token = gw.create_session(100)["token"]
        async with Client(f"{gw.url}/mcp/") as client:
            listed = (await client.list_tools()).tools
            names = {tool.name for tool in listed}
            assert names == {"qr_generate", "btc_price"} | SESSION_TOOLS
            qr = next(tool for tool in listed if tool.name == "qr_generate")
            assert "2 sats" in qr.description
            assert qr.meta["arkgate/cost_sats"] == 2
            assert qr.input_schema["required"] == ["data"]
            assert {"data", "format", "session_token"} <= set(qr.input_schema["properties"])

            result = await client.call_tool("qr_generate", {"data": "hello", "session_token": token})
            assert not result.is_error, text_of(result)
            assert result.structured_content["cost_sats"] == 2
            assert result.structured_content["data"]["format"] == "png"
            assert result.structured_content["balance_remaining"] == 98
        assert gw.balance(token) == 98
        # The call was settled when the tool answered, not left in flight.
        calls = httpx.get(f"{gw.url}/v1/sessions/me/calls", headers={"Authorization": f"Bearer {token}"}).json()
        assert [call["status"] for call in calls["calls"]] == ["ok"]

        # Bad input is a tool error that costs nothing, exactly as over HTTP.
        async with Client(f"{gw.url}/mcp/") as client:
            bad = await client.call_tool("qr_generate", {"data": "   ", "session_token": token})
        assert bad.is_error and bad.structured_content["code"] == 400
        assert gw.balance(token) == 98


async def test_the_authorization_header_of_the_mcp_connection_pays(live_gateway_factory):
    with live_gateway_factory(offline_catalog("qr-generate")) as gw:
        token = gw.create_session(10)["token"]
        http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=30)
        async with http, Client(streamable_http_client(f"{gw.url}/mcp/", http_client=http)) as client:
            result = await client.call_tool("qr_generate", {"data": "via header"})
            assert not result.is_error, text_of(result)
            balance = await client.call_tool("check_balance", {})
            assert balance.structured_content["balance_sats"] == 8
        assert gw.balance(token) == 8


async def test_an_empty_session_gets_payment_instructions_not_a_protocol_error(live_gateway_factory):
    with live_gateway_factory(offline_catalog("qr-generate")) as gw:
        token = gw.create_session(1)["token"]  # free mode: funded with 1 sat, the call costs 2
        async with Client(f"{gw.url}/mcp/") as client:
            result = await client.call_tool("qr_generate", {"data": "x", "session_token": token})
        assert result.is_error
        assert result.structured_content["code"] == 402
        assert result.structured_content["shortfall_sats"] == 1
        assert "topup" in text_of(result)
        assert gw.balance(token) == 1


async def test_unfunded_session_over_mcp_gets_invoice_ark_address_and_amount(
    live_gateway_factory, paid_settings, simulator
):
    settings = paid_settings()
    with live_gateway_factory(offline_catalog("qr-generate"), **settings.model_dump()) as gw:
        async with Client(f"{gw.url}/mcp/") as client:
            created = await client.call_tool("create_session", {"amount_sats": 50})
            assert not created.is_error, text_of(created)
            session = created.structured_content
            token = session["token"]
            invoice = session["funding"]["lightning_invoice"]
            assert invoice.startswith("lntbs") and session["funding"]["ark_address"].startswith("tark1")

            unpaid = await client.call_tool("qr_generate", {"data": "x", "session_token": token})
            assert unpaid.is_error
            text = text_of(unpaid)
            assert invoice in text and session["funding"]["ark_address"] in text
            payment = unpaid.structured_content["payment"]
            assert payment["lightning_invoice"] == invoice and payment["amount_sats"] == 50

            funding = await client.call_tool("session_funding", {"session_token": token})
            assert funding.structured_content["funding"]["lightning_invoice"] == invoice

            simulator.pay_invoice(invoice)
            await wait_for(lambda: gw.balance(token) == 50)
            paid = await client.call_tool("qr_generate", {"data": "x", "session_token": token})
            assert not paid.is_error, text_of(paid)
            assert paid.structured_content["balance_remaining"] == 48

            topup = await client.call_tool("top_up", {"amount_sats": 100, "session_token": token})
            assert topup.structured_content["funding"]["lightning_invoice"].startswith("lntbs")

            # No token at all: a session is opened and the result says how to pay it.
            tokenless = await client.call_tool("qr_generate", {"data": "x"})
            assert tokenless.is_error
            offered = tokenless.structured_content["payment"]
            assert offered["token"].startswith("ak_") and offered["lightning_invoice"] and offered["ark_address"]
            assert offered["amount_sats"] == settings.default_session_sats


async def test_session_tools_refuse_unknown_tokens_and_bad_amounts(live_gateway_factory):
    with live_gateway_factory(offline_catalog("qr-generate")) as gw:
        async with Client(f"{gw.url}/mcp/") as client:
            unknown = await client.call_tool("check_balance", {"session_token": "ak_nope"})
            assert unknown.is_error and "unknown" in text_of(unknown)
            missing = await client.call_tool("check_balance", {})
            assert missing.is_error and "session_token" in text_of(missing)
            bad = await client.call_tool("create_session", {"amount_sats": 0})
            assert bad.is_error and "at least" in text_of(bad)
            created = await client.call_tool("create_session", {"amount_sats": 20})
            token = created.structured_content["token"]
        assert gw.balance(token) == 20  # free mode funds at once


async def test_create_key_hands_out_a_capped_sub_key_that_cannot_manage_the_session(live_gateway_factory):
    with live_gateway_factory(offline_catalog("qr-generate")) as gw:
        token = gw.create_session(100)["token"]
        async with Client(f"{gw.url}/mcp/") as client:
            created = await client.call_tool("create_key", {"label": "helper", "cap_sats": 4, "session_token": token})
            assert not created.is_error, text_of(created)
            child = created.structured_content["token"]
            assert created.structured_content["cap_sats"] == 4 and child.startswith("ak_")
            for i in range(3):
                result = await client.call_tool("qr_generate", {"data": f"{i}", "session_token": child})
                assert result.is_error == (i == 2), text_of(result)
            assert "cap" in text_of(result)
            balance = await client.call_tool("check_balance", {"session_token": child})
            assert balance.structured_content["balance_sats"] == 0
            assert balance.structured_content["key"]["spent_sats"] == 4
            for tool, args in (("create_key", {}), ("top_up", {"amount_sats": 100})):
                refused = await client.call_tool(tool, {**args, "session_token": child})
                assert refused.is_error and "a sub-key cannot" in text_of(refused)
        assert gw.balance(token) == 96


async def test_foreign_host_headers_are_refused(live_gateway_factory):
    with live_gateway_factory(offline_catalog("qr-generate")) as gw:
        response = httpx2.post(
            f"{gw.url}/mcp/",
            json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
            headers={"Host": "evil.example", "Accept": "application/json, text/event-stream"},
        )
    assert response.status_code == 421


async def test_a_get_endpoint_tool_sends_its_arguments_as_the_query(live_gateway_factory):
    prices = UpstreamServer().start()
    prices.serve_file("/api/v3/simple/price", "coingecko/simple_price.json")
    overrides = {"btc_price_providers": ["coingecko"], "coingecko_url": f"{prices.url}/api/v3"}
    try:
        with live_gateway_factory(offline_catalog("btc-price"), **overrides) as gw:
            token = gw.create_session(5)["token"]
            async with Client(f"{gw.url}/mcp/") as client:
                result = await client.call_tool("btc_price", {"currency": "EUR", "session_token": token})
                assert not result.is_error, text_of(result)
                assert result.structured_content["cost_sats"] == 1
                refused = await client.call_tool("btc_price", {"currency": "NOPE", "session_token": token})
                assert refused.is_error and refused.structured_content["code"] == 400
            assert gw.balance(token) == 4
    finally:
        prices.stop()


async def test_post_mcp_without_slash_answers_without_a_redirect(live_gateway_factory):
    initialize = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
    }
    headers = {"Accept": "application/json, text/event-stream"}
    with live_gateway_factory(offline_catalog("qr-generate")) as gw:
        async with httpx.AsyncClient(follow_redirects=False, timeout=30) as http:
            for path in ("/mcp", "/mcp/"):
                response = await http.post(f"{gw.url}{path}", json=initialize, headers=headers)
                assert response.status_code == 200, (path, response.status_code, response.headers.get("location"))
                assert response.json()["result"]["serverInfo"]["name"]
        async with Client(f"{gw.url}/mcp") as client:
            assert "qr_generate" in {tool.name for tool in (await client.list_tools()).tools}


async def test_the_withdraw_tool_quotes_then_pays_an_ark_address(live_gateway_factory, paid_settings, simulator):
    settings = paid_settings()
    with live_gateway_factory(offline_catalog("qr-generate"), **settings.model_dump()) as gw:
        created = gw.create_session(800)
        token = created["token"]
        simulator.pay_invoice(created["funding"]["lightning_invoice"])
        await wait_for(lambda: gw.balance(token) == 800)
        address = simulator.payee_address()
        async with Client(f"{gw.url}/mcp/") as client:
            quote = await client.call_tool(
                "withdraw", {"destination": address, "amount_sats": 500, "quote_only": True, "session_token": token}
            )
            assert not quote.is_error, text_of(quote)
            assert quote.structured_content["net_sats"] == 500
            paid = await client.call_tool("withdraw", {"destination": address, "session_token": token})
            assert not paid.is_error, text_of(paid)
            assert paid.structured_content["status"] == "completed"
            assert paid.structured_content["net_sats"] == 800
            bad = await client.call_tool("withdraw", {"destination": "nonsense", "session_token": token})
            assert bad.is_error and "BOLT11" in text_of(bad)
        assert simulator.payee_received(address)["received_sat"] == 800
        assert gw.balance(token) == 0
