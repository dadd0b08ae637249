"""``arkgate doctor``: one failing test per checklist item, and a clean bill for a mainnet-style deployment
against the simulator in mainnet mode."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from arkgate.admin.doctor import CHECKLIST, diagnose
from arkgate.cli import app
from arkgate.settings import Settings
from arkgate.simulator.server import SimulatorServer
from tests.conftest import BARKD_COMPAT

STRONG_ADMIN_TOKEN = "adm_Xq8v2LmN4pR7tY1wZ3kB6cD9fG0hJ5sA"


@contextlib.contextmanager
def mainnet_barkd(
    tmp_path: Path, *, compat: str = BARKD_COMPAT, fund_onchain: bool = True
) -> Iterator[SimulatorServer]:
    """A mainnet wallet holding one VTXO, its on-chain wallet funded for exits (or not)."""
    with SimulatorServer(tmp_path / "mainnet", network="mainnet", compat=compat, vtxo_lifetime=2016) as sim:
        with httpx.Client(base_url=sim.url, headers=sim.headers()) as barkd:
            address = barkd.post("/api/v1/wallet/addresses/next").json()["address"]
        sim.send_ark(address, 50_000)
        if fund_onchain:
            sim.fund_onchain(100_000)
            sim.mine(1)
        yield sim


def mainnet_settings(make_settings: Callable[..., Settings], sim: SimulatorServer, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "network": "bitcoin",
        "payment_mode": "barkd",
        "barkd_url": sim.url,
        "barkd_token": sim.token,
        "public_url": "https://api.example.com",
        "admin_token": STRONG_ADMIN_TOKEN,
        "backups_configured": True,
        **overrides,
    }
    return make_settings(**values)


def failing(checks: list[Any]) -> dict[str, str]:
    return {c.id: c.detail for c in checks if not c.ok}


async def test_a_correct_mainnet_deployment_passes_every_check(make_settings, tmp_path):
    with mainnet_barkd(tmp_path) as sim:
        checks = await diagnose(mainnet_settings(make_settings, sim))
    assert failing(checks) == {}
    assert [c.id for c in checks] == [
        "network",
        "barkd_version",
        "public_url",
        "admin_token",
        "l402_key",
        "backups",
        "refresh_margins",
        "exits_fundable",
        "free_mode",
    ]
    assert len(checks) == len(CHECKLIST)


def test_the_doctor_command_prints_the_checklist(tmp_path):
    with mainnet_barkd(tmp_path) as sim:
        env = {
            "ARKGATE_NETWORK": "bitcoin",
            "ARKGATE_PAYMENT_MODE": "barkd",
            "ARKGATE_BARKD_URL": sim.url,
            "ARKGATE_BARKD_TOKEN": sim.token,
            "ARKGATE_PUBLIC_URL": "https://api.example.com",
            "ARKGATE_ADMIN_TOKEN": STRONG_ADMIN_TOKEN,
            "ARKGATE_BACKUPS_CONFIGURED": "true",
            "ARKGATE_DATA_DIR": str(tmp_path / "data"),
        }
        good = CliRunner().invoke(app, ["doctor"], env=env)
        bad = CliRunner().invoke(app, ["doctor"], env={**env, "ARKGATE_PUBLIC_URL": ""})
    assert good.exit_code == 0, good.output
    assert "9/9 checks pass" in good.stdout
    assert bad.exit_code == 1
    assert "[FAIL] TLS public URL" in bad.stdout
    assert sim.token not in good.output + bad.output


@pytest.mark.parametrize(
    ("check", "overrides", "expected"),
    [
        ("public_url", {"public_url": "http://api.example.com"}, "https://"),
        ("admin_token", {"admin_token": "admin123"}, "at least 32 random characters"),
        ("l402_key", {"backups_configured": False}, "l402_root_key"),
        ("backups", {"backups_configured": False, "l402_root_key": "k" * 64}, "back up the database"),
        ("refresh_margins", {"refresh_before_blocks": 100}, "under 144"),
        ("refresh_margins", {"refresh_schedule_margin_blocks": 12}, "under 36"),
    ],
    ids=["tls-public-url", "weak-admin-token", "l402-key-not-backed-up", "no-backups", "refresh-window", "schedule"],
)
async def test_each_setting_misconfiguration_fails_its_check(make_settings, tmp_path, check, overrides, expected):
    with mainnet_barkd(tmp_path) as sim:
        checks = await diagnose(mainnet_settings(make_settings, sim, **overrides))
    failed = failing(checks)
    assert set(failed) == {check} | ({"backups"} if check == "l402_key" else set())
    assert expected in failed[check]


async def test_a_network_mismatch_fails(make_settings, tmp_path):
    with mainnet_barkd(tmp_path) as sim:
        checks = await diagnose(mainnet_settings(make_settings, sim, network="signet"))
    failed = failing(checks)
    assert set(failed) == {"network"}
    assert "barkd's Ark server is on bitcoin" in failed["network"]


async def test_an_old_barkd_fails_the_version_check(make_settings, tmp_path):
    with mainnet_barkd(tmp_path, compat="0.1.4") as sim:
        failed = failing(await diagnose(mainnet_settings(make_settings, sim)))
    assert "upgrade to 0.6 or 0.8" in failed["barkd_version"]


async def test_exits_not_fundable_on_chain_fail(make_settings, tmp_path):
    with mainnet_barkd(tmp_path, fund_onchain=False) as sim:
        failed = failing(await diagnose(mainnet_settings(make_settings, sim)))
    assert set(failed) == {"exits_fundable"}
    assert "fund it" in failed["exits_fundable"]


async def test_free_mode_fails(make_settings, tmp_path):
    # Settings refuse free mode on mainnet outright; the doctor still flags it in a signet rehearsal.
    settings = make_settings(payment_mode="free", public_url="https://api.example.com", backups_configured=True)
    failed = failing(await diagnose(settings))
    assert "free_mode" in failed
    assert "gives calls away" in failed["free_mode"]
