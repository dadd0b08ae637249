"""Every instant the API writes has the one wire form: RFC 3339 in UTC, whole seconds, ``Z``."""

from __future__ import annotations

import re

from tests.conftest import Gateway

WIRE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


async def test_session_balance_and_key_instants_use_the_one_wire_form(gateway: Gateway) -> None:
    token = await gateway.new_session(500)
    auth = {"Authorization": f"Bearer {token}"}
    balance = (await gateway.client.get("/v1/balance", headers=auth)).json()
    assert WIRE.match(balance["expires_at"]), balance
    created = await gateway.client.post("/v1/sessions/me/keys", json={"label": "t", "cap_sats": 10}, headers=auth)
    assert created.status_code in (200, 201), created.text
    key = created.json()
    assert WIRE.match(key["created_at"]), key
    assert key["revoked_at"] is None
