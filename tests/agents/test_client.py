"""The Python client and ``arkgate call`` against a real gateway on a loopback port."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from arkgate.client import ArkgateAPIError, ArkgateClient, PaymentRequired
from tests.agents.conftest import offline_catalog
from tests.upstreams import UpstreamServer


@pytest.fixture
def prices():
    server = UpstreamServer().start()
    server.serve_file("/api/v3/simple/price", "coingecko/simple_price.json")
    yield server
    server.stop()


def test_client_creates_a_session_waits_and_calls_post_and_get_endpoints(live_gateway_factory, prices):
    overrides = {"btc_price_providers": ["coingecko"], "coingecko_url": f"{prices.url}/api/v3"}
    with live_gateway_factory(offline_catalog("qr-generate", "btc-price"), **overrides) as gw:
        with ArkgateClient(gw.url) as client:
            with pytest.raises(PaymentRequired) as refused:
                client.call("qr-generate", {"data": "x"})
            assert refused.value.status == 402 and refused.value.payment is None  # free mode: no invoice

            assert client.quote("qr-generate", calls=3)["max_total_sats"] == 6
            created = client.create_session(20)
            assert client.token == created["token"]
            assert client.wait_for_funding(2) == 20
            qr = client.call("qr-generate", {"data": "hello"})
            assert qr["success"] is True and qr["cost_sats"] == 2
            price = client.call("btc-price", {"currency": "EUR"})
            assert price["endpoint"] == "/api/btc-price" and price["balance_remaining"] == 17
            with pytest.raises(ArkgateAPIError) as bad:
                client.call("qr-generate", {"data": ""})
            assert bad.value.status == 400
            assert client.balance()["balance_sats"] == 17


def test_arkgate_call_shows_the_invoice_waits_for_payment_and_prints_the_result(
    live_gateway_factory, paid_settings, simulator, tmp_path
):
    settings = paid_settings(default_session_sats=40)
    with live_gateway_factory(offline_catalog("qr-generate"), **settings.model_dump()) as gw:
        command = [
            sys.executable,
            "-c",
            "from arkgate.cli import main; main()",
            "call",
            "qr-generate",
            "--json",
            '{"data": "from the terminal"}',
            "--url",
            gw.url,
            "--wait",
            "60",
        ]
        process = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=tmp_path,  # images land here
        )
        try:
            seen: list[str] = []
            invoice = None
            deadline = time.monotonic() + 60
            while invoice is None and time.monotonic() < deadline:
                line = process.stderr.readline()
                if not line:
                    break
                seen.append(line)
                if line.startswith("lntbs"):
                    invoice = line.strip()
            assert invoice is not None, "".join(seen)
            simulator.pay_invoice(invoice)
            out, err = process.communicate(timeout=60)
        finally:
            if process.poll() is None:
                process.kill()
    assert process.returncode == 0, err
    shown = "".join(seen) + err
    assert "Session token: ak_" in shown and "Pay 40 sats" in shown
    assert "█" in shown or "▀" in shown or "▄" in shown  # the QR code, drawn in the terminal
    result = json.loads(out)
    assert result["success"] is True and result["cost_sats"] == 2 and result["balance_remaining"] == 38


def test_arkgate_call_with_a_token_and_bad_json(live_gateway_factory, tmp_path):
    from typer.testing import CliRunner

    from arkgate.cli import app

    with live_gateway_factory(offline_catalog("qr-generate")) as gw:
        token = gw.create_session(10)["token"]
        runner = CliRunner()
        ok = runner.invoke(
            app,
            [
                "call",
                "qr-generate",
                "--json",
                '{"data": "x"}',
                "--url",
                gw.url,
                "--token",
                token,
                "--save-dir",
                tmp_path,
            ],
        )
        assert ok.exit_code == 0, ok.output
        assert json.loads(ok.stdout)["balance_remaining"] == 8
        bad = runner.invoke(app, ["call", "qr-generate", "--json", "{nope", "--url", gw.url, "--token", token])
        assert bad.exit_code == 2 and "not valid JSON" in bad.output
        refused = runner.invoke(
            app, ["call", "qr-generate", "--json", '{"data": ""}', "--url", gw.url, "--token", token]
        )
        assert refused.exit_code == 1
        assert gw.balance(token) == 8


def test_client_and_arkgate_create_key_hand_out_capped_sub_keys(live_gateway_factory):
    from typer.testing import CliRunner

    from arkgate.cli import app

    with live_gateway_factory(offline_catalog("qr-generate")) as gw:
        with ArkgateClient(gw.url) as parent:
            parent.create_session(50)
            key = parent.create_key(label="worker", cap_sats=4, allowed=["qr-generate"])
            with ArkgateClient(gw.url, key["token"]) as child:
                assert child.call("qr-generate", {"data": "a"})["cost_sats"] == 2
                assert child.balance()["balance_sats"] == 2  # the session's 48, capped by the key's 2 left
                with pytest.raises(ArkgateAPIError) as forbidden:
                    child.create_key(cap_sats=1)
                assert forbidden.value.status == 403
                assert [c["key_id"] for c in parent.calls()] == [key["key_id"]]
                assert parent.key(key["key_id"])["spent_sats"] == 2
                assert parent.revoke_key(key["key_id"])["status"] == "revoked"
                with pytest.raises(ArkgateAPIError) as revoked:
                    child.call("qr-generate", {"data": "b"})
                assert revoked.value.status == 401
            assert [k["status"] for k in parent.list_keys()] == ["revoked"]

            runner = CliRunner()
            args = ["create-key", "--url", gw.url, "--token", parent.token, "--label", "cli", "--cap", "6"]
            made = runner.invoke(app, [*args, "--allow", "utility", "--daily-cap", "4"])
            assert made.exit_code == 0, made.output
            shown = json.loads(made.stdout)
            assert shown["token"].startswith("ak_") and shown["label"] == "cli"
            assert (shown["cap_sats"], shown["daily_cap_sats"], shown["allowed"]) == (6, 4, ["utility"])
            refused = runner.invoke(app, ["create-key", "--url", gw.url, "--token", shown["token"]])
            assert refused.exit_code == 1 and "sub-key cannot create keys" in refused.output


def test_client_and_arkgate_withdraw_pay_the_balance_out(live_gateway_factory, paid_settings, simulator):
    from typer.testing import CliRunner

    from arkgate.cli import app

    settings = paid_settings(payout_fee_base_sats=1)
    with live_gateway_factory(offline_catalog("qr-generate"), **settings.model_dump()) as gw:
        with ArkgateClient(gw.url) as client:
            created = client.create_session(900)
            simulator.pay_invoice(created["funding"]["lightning_invoice"])
            client.wait_for_funding(900, timeout_s=30, first_delay_s=0.05)
            address = simulator.payee_address()
            quote = client.withdraw(address, 400, quote_only=True)
            assert (quote["fee_sats"], quote["net_sats"]) == (1, 399)
            paid = client.withdraw(address, 400)
            assert paid["status"] == "completed" and paid["balance_sats"] == 500
            with pytest.raises(ArkgateAPIError) as refused:
                client.withdraw(address, 5000)
            assert refused.value.status == 402
            token = client.token
        runner = CliRunner()
        shown = runner.invoke(app, ["withdraw", address, "--token", token, "--quote", "--url", gw.url])
        assert shown.exit_code == 0, shown.output
        assert json.loads(shown.output)["net_sats"] == 499
        closed = runner.invoke(app, ["withdraw", address, "--token", token, "--close", "--url", gw.url])
        assert closed.exit_code == 0, closed.output
        assert json.loads(closed.output)["status"] == "closed"
        again = runner.invoke(app, ["withdraw", address, "--token", token, "--url", gw.url])
        assert again.exit_code == 1 and "closed" in again.output
    assert simulator.payee_received(address) == {"destination": address, "received_sat": 399 + 499, "payments": 2}
