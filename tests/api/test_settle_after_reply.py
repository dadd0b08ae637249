"""A call that gives nothing back is answered before its settlement commits; a crash in between is the sweep's."""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import timedelta
from typing import Any

import httpx

from arkgate.catalog.registry import load_catalog
from arkgate.db.engine import utcnow
from arkgate.payments.charging import INTERRUPTED
from arkgate.payments.ledger import hash_token
from tests.conftest import wait_for_sync
from tests.live import live_gateway

QR = {"data": "settle after the reply"}


class HeldSettlements:
    """Stands in for ``Ledger.settle``: holds each settlement until released, then runs it or fails it."""

    def __init__(self, settle: Any) -> None:
        self.settle = settle
        self.release = threading.Event()
        self.fail = False
        self.ended = threading.Event()

    async def __call__(self, call_id: str, **kwargs: Any) -> Any:
        try:
            while not self.release.is_set():
                await asyncio.sleep(0.01)
            if self.fail:  # the process died before this commit
                raise RuntimeError("the gateway stopped before the settlement committed")
            return await self.settle(call_id, **kwargs)
        finally:
            self.ended.set()


def call_statuses(gw: Any, token: str) -> list[str]:
    response = httpx.get(f"{gw.url}/v1/sessions/me/calls", headers={"Authorization": f"Bearer {token}"}, timeout=30)
    assert response.status_code == 200, response.text
    return [call["status"] for call in response.json()["calls"]]


def test_the_answer_does_not_wait_for_a_plain_settlement_and_a_crash_before_it_is_refunded_once(make_settings):
    with live_gateway(make_settings(), load_catalog(only=("qr-generate",))) as gw:
        token = gw.create_session(100)["token"]
        ledger = gw.runtime.ledger
        session = gw.run(ledger.session_by_token(hash_token(token)))
        held = HeldSettlements(ledger.settle)
        ledger.settle = held
        try:
            started = time.monotonic()
            answer = httpx.post(
                f"{gw.url}/api/qr-generate", json=QR, headers={"Authorization": f"Bearer {token}"}, timeout=30
            )
            assert answer.status_code == 200, answer.text
            body = answer.json()
            price = body["cost_sats"]
            assert price > 0 and body["balance_remaining"] == 100 - price
            # Answered while its settlement still waits: the call is in flight, its debit final.
            assert not held.ended.is_set() and time.monotonic() - started < 30
            assert gw.run(ledger.in_flight_call_ids(session.id)) == {body["call_id"]}
            assert call_statuses(gw, token) == ["in_flight"]
            assert gw.balance(token) == 100 - price

            held.fail = True
            held.release.set()
            assert held.ended.wait(10)
        finally:
            held.release.set()  # never left holding the server's shutdown
            ledger.settle = held.settle

        # The crash sweep finds the record and refunds the call once, as interrupted.
        later = utcnow() + timedelta(hours=1)
        swept = gw.run(ledger.sweep_interrupted(include_own=True, now=later))
        assert [settled.call_id for settled in swept] == [body["call_id"]]
        assert gw.run(ledger.sweep_interrupted(include_own=True, now=later)) == []
        assert gw.balance(token) == 100
        (receipt,) = gw.run(ledger.receipts_of(session.id))
        assert receipt.refund_reason == INTERRUPTED and receipt.refunded_sats == receipt.charged_sats == price
        assert gw.run(ledger.inconsistent_sessions()) == []

        # Unhindered, the settlement follows the answer: the call ends ``ok``, nothing refunded.
        again = httpx.post(
            f"{gw.url}/api/qr-generate", json=QR, headers={"Authorization": f"Bearer {token}"}, timeout=30
        )
        assert again.status_code == 200, again.text
        wait_for_sync(lambda: call_statuses(gw, token) == ["ok", "interrupted"])
        assert gw.run(ledger.in_flight_call_ids(session.id)) == set()
        assert gw.balance(token) == 100 - price
        assert gw.run(ledger.inconsistent_sessions()) == []
