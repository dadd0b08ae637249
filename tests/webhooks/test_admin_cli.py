"""``arkgate admin webhooks list|redeliver`` against a gateway served by uvicorn."""

from __future__ import annotations

import json

import httpx
from typer.testing import CliRunner

from arkgate.cli import app
from tests.admin.conftest import ADMIN_TOKEN, admin_headers
from tests.conftest import wait_for_sync
from tests.live import live_gateway

runner = CliRunner()
SECRET = "whsec_" + "Y2xpLXRlc3Qtb3BlcmF0b3Itc2VjcmV0"


def test_list_and_redeliver_from_the_command_line(make_settings, receiver_factory):
    receiver = receiver_factory()
    settings = make_settings(
        admin_token=ADMIN_TOKEN, webhook_url=receiver.url, webhook_secret=SECRET, webhook_backoff_s=0
    )
    with live_gateway(settings) as server:
        env = {"ARKGATE_URL": server.url, "ARKGATE_ADMIN_TOKEN": ADMIN_TOKEN}
        sent = httpx.post(f"{server.url}/admin/api/alerts/test", headers=admin_headers(), timeout=30).json()
        delivery_id = sent["delivery_id"]
        wait_for_sync(lambda: len(receiver.accepted()) == 1)

        listed = runner.invoke(app, ["admin", "webhooks", "list", "--limit", "5"], env=env)
        assert listed.exit_code == 0, listed.output
        [row] = json.loads(listed.stdout)["deliveries"]
        assert (row["id"], row["event"], row["status"], row["session_id"]) == (delivery_id, "test", "delivered", None)

        again = runner.invoke(app, ["admin", "webhooks", "redeliver", str(delivery_id)], env=env)
        assert again.exit_code == 0, again.output
        wait_for_sync(lambda: len(receiver.accepted()) == 2)
        first, second = receiver.accepted()
        assert first.message_id == second.message_id  # a redelivery keeps its webhook-id
        payloads = receiver.verify_all(SECRET)
        assert [p["type"] for p in payloads] == ["alert.test", "alert.test"]

        missing = runner.invoke(app, ["admin", "webhooks", "redeliver", "424242"], env=env)
        assert missing.exit_code == 1
        assert "does not exist" in missing.output
