from __future__ import annotations


async def test_free_session_can_call_qr_generate(gateway):
    token = await gateway.new_session(10)
    response = await gateway.call("qr-generate", {"data": "hello"}, token=token)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["success"] is True
    assert body["cost_sats"] == 2
    assert body["balance_remaining"] == 8
    assert await gateway.balance(token) == 8
    await gateway.assert_ledger_consistent()
