"""Two gateways on one database: each event reaches the receiver exactly once, retries included.

Both instances notice the same facts at the same moment (the same payout finishing, the same
balance crossing, the same session nearing expiry) and both try to resume pending deliveries;
the dedupe key and the delivery claims leave one delivery per event. PostgreSQL and MariaDB
run too when their URLs are set.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator

import pytest

from arkgate.payments.ledger import hash_token
from arkgate.webhooks.events import WithdrawalFinished
from tests.conftest import running_gateway, wait_for
from tests.databases import backends, scratch_database
from tests.webhooks.conftest import build_catalog, session_with_webhook, webhook_settings


@pytest.fixture(params=backends())
async def database_url(request: pytest.FixtureRequest, tmp_path) -> AsyncIterator[str]:
    async with scratch_database(request.param, str(tmp_path / "db.sqlite3")) as url:
        yield url


async def test_each_event_is_delivered_exactly_once_by_two_instances(
    database_url, make_settings, tmp_path, receiver_factory
):
    receiver = receiver_factory([500, 500])  # the first two attempts fail: retries run with both instances up
    common = webhook_settings(
        receiver,
        database_url=database_url,
        session_ttl_s=60,
        webhook_expiring_before_s=300,
        webhook_scan_interval_s=0.05,
    )
    settings_a = make_settings(data_dir=tmp_path / "a", **common)
    settings_b = make_settings(data_dir=tmp_path / "b", **common)
    async with (
        running_gateway(settings_a, catalog=build_catalog()) as a,
        running_gateway(settings_b, catalog=build_catalog()) as b,
    ):
        token, secret = await session_with_webhook(a, receiver.url, sats=10, low_balance_sats=5)
        session = await b.runtime.ledger.session_by_token(hash_token(token))
        assert session is not None
        hooks = [a.runtime.webhooks, b.runtime.webhooks]
        finished = WithdrawalFinished(
            session_id=session.id,
            withdrawal_id="wd_1",
            status="completed",
            amount_sats=3,
            fee_sats=1,
            destination_kind="ark",
        )
        await asyncio.gather(*(h.emit_withdrawal(finished) for h in hooks))
        await asyncio.gather(*(h.check_balance(session.id, 4) for h in hooks))
        await asyncio.gather(*(h.scan_expiring() for h in hooks))  # and the leader's own scan
        response = await b.call("broken", {}, token=token)  # call.refunded, noticed by b alone
        assert response.status_code == 502
        await b.runtime.webhooks.drain()
        await asyncio.gather(*(h.deliverer.resume_pending() for h in hooks))

        expected = ["balance.low", "call.refunded", "session.expiring", "withdrawal.completed"]

        async def all_delivered() -> bool:
            rows = await a.runtime.webhooks.deliverer.deliveries(limit=100)
            return len(rows) == len(expected) and all(r.status == "delivered" for r in rows)

        await wait_for(all_delivered, timeout_s=20)
        accepted = receiver.accepted()
        assert sorted(r.payload["type"] for r in accepted) == expected
        assert Counter(r.message_id for r in accepted).most_common(1)[0][1] == 1
        assert [r.answered for r in receiver.of()].count(500) == 2
        receiver.verify_all(secret)  # every attempt, failed or not, verifies
        # Nothing more arrives: both instances are idle and agree nothing is pending.
        assert await asyncio.gather(*(h.deliverer.resume_pending() for h in hooks)) in ([0, 0],)
        assert sorted(r.payload["type"] for r in receiver.accepted()) == expected
