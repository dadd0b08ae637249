from __future__ import annotations


async def test_health_reports_database_and_mode(gateway):
    body = (await gateway.client.get("/health")).json()
    assert body["status"] == "ok" and body["database"] == "ok" and body["payment_mode"] == "free"


async def test_metrics_count_calls_and_sats(gateway):
    token = await gateway.new_session(10)
    await gateway.call("qr-generate", {"data": "m"}, token=token)
    text = (await gateway.client.get("/metrics")).text
    assert 'arkgate_calls_total{endpoint="qr-generate",outcome="ok"} 1.0' in text
    assert 'arkgate_sats_charged_total{endpoint="qr-generate"} 2.0' in text
    assert token not in text


async def test_catalog_lists_every_endpoint_with_its_price(gateway):
    body = (await gateway.client.get("/v1/catalog")).json()
    by_id = {entry["id"]: entry for entry in body["endpoints"]}
    assert by_id["qr-generate"]["cost_sats"] == 2 and by_id["qr-generate"]["path"] == "/api/qr-generate"
    assert {"id", "method", "path", "cost_sats", "category", "description"} <= set(by_id["qr-generate"])


async def test_session_token_is_stored_only_as_a_hash(gateway):
    from sqlalchemy import select

    from arkgate.db import tables as t

    token = await gateway.new_session(5)
    async with gateway.runtime.database.read() as conn:
        stored = [row.token_hash for row in await conn.execute(select(t.sessions))]
    assert token not in stored and all(len(h) == 64 for h in stored)
