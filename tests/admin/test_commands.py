"""``arkgate admin ...`` against a real gateway served by uvicorn (barkd mode on the simulator)."""

from __future__ import annotations

import json
from typing import Any

from typer.testing import CliRunner

from arkgate.cli import app
from tests.admin.conftest import ADMIN_TOKEN
from tests.live import live_gateway as live_server

runner = CliRunner()


def invoke(args: list[str], env: dict[str, str] | None = None) -> Any:
    return runner.invoke(app, ["admin", *args], env=env)


def test_admin_commands_talk_to_the_admin_api(make_settings, simulator):
    settings = make_settings(
        admin_token=ADMIN_TOKEN,
        payment_mode="barkd",
        barkd_url=simulator.url,
        barkd_token=simulator.token,
        refresh_check_interval_s=3600,
        reconcile_interval_s=3600,
    )
    with live_server(settings) as server:
        env = {"ARKGATE_URL": server.url, "ARKGATE_ADMIN_TOKEN": ADMIN_TOKEN}
        result = invoke(["overview", "--json"], env)
        assert result.exit_code == 0, result.output
        overview = json.loads(result.stdout)
        assert overview["liabilities_sats"] == 0
        assert overview["wallet"]["spendable_sat"] == 0
        assert overview["solvent"] is True

        result = invoke(["overview"], env)
        assert result.exit_code == 0, result.output
        summary = result.stdout.splitlines()
        assert summary[0].startswith("arkgate overview: signet, payment mode barkd")
        assert "  owed         0 sats (unspent session balances)" in summary
        assert any(line.startswith("  wallet       assets 0 sats, surplus 0 sats: solvent") for line in summary)
        assert "  endpoints    no calls yet" in summary
        assert len(summary) < 15

        result = invoke(["health", "--url", server.url, "--token", ADMIN_TOKEN])
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["barkd_reachable"] is True

        result = invoke(["refresh"], env)
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["refreshed"] is False

        result = invoke(["sweep", "--dry-run", "--destination", "tb1qw508d6qejxtdg4y5r3zarvary0c5xw7kxpjzsx"], env)
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["plan"]["sweepable"] is False

        result = invoke(["exit", "status"], env)
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout) == {"exits": []}

        result = invoke(["exit", "progress", "--fee-rate", "3"], env)
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["done"] is True

        result = invoke(["exit", "claim"], env)
        assert result.exit_code == 1
        assert "no exit is claimable yet" in result.stderr

        result = invoke(["exit", "start", "--vtxo", "not-a-vtxo"], env)
        assert result.exit_code == 1
        assert "Error (400)" in result.stderr

        result = invoke(["overview"], {"ARKGATE_URL": server.url, "ARKGATE_ADMIN_TOKEN": "wrong"})
        assert result.exit_code == 1
        assert "Error (401)" in result.stderr
        assert ADMIN_TOKEN not in result.output

        result = invoke(["overview", "--url", server.url], {"ARKGATE_ADMIN_TOKEN": ""})
        assert result.exit_code == 2
        assert "no admin token" in result.stderr


def test_unreachable_gateway_is_a_clear_error():
    result = invoke(["overview", "--url", "http://127.0.0.1:9", "--token", "x"])
    assert result.exit_code == 1
    assert "cannot reach the gateway" in result.stderr
