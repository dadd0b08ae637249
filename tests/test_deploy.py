"""The deployment artefacts refer to real settings, commands and paths (no container runtime needed)."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml  # locked through uvicorn[standard]

from arkgate.app import create_app
from arkgate.cli import app as cli_app
from arkgate.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
# Read by compose itself or by entry points, not by Settings.
NOT_SETTINGS = {"ARKGATE_CONFIG"}


def _command_tree() -> Any:
    # Typer ships its own copy of click: groups are recognised by their ``commands``.
    return typer.main.get_command(cli_app)


def assert_real_command(argv: list[str]) -> None:
    """``arkgate <sub> [<sub>...] [--option value]...`` names a real command and real options."""
    assert Path(argv[0]).name == "arkgate", argv
    command = _command_tree()
    rest = argv[1:]
    while hasattr(command, "commands") and rest and not rest[0].startswith("-"):
        assert rest[0] in command.commands, f"no command {rest[0]!r} in {argv}"
        command = command.commands[rest[0]]
        rest = rest[1:]
    assert not hasattr(command, "commands"), f"{argv} names a group, not a command"
    options = {opt for param in command.params for opt in getattr(param, "opts", [])}
    for word in rest:
        if word.startswith("--"):
            assert word.split("=", 1)[0] in options, f"{word} is not an option of {argv[:2]}: {sorted(options)}"
    context = command.make_context(argv[0], list(rest), resilient_parsing=False)
    assert context is not None


def assert_real_setting(variable: str) -> None:
    if variable in NOT_SETTINGS:
        return
    assert variable.startswith("ARKGATE_"), variable
    name = variable.removeprefix("ARKGATE_").lower()
    assert name in Settings.model_fields, f"{variable} is not a setting"


def _compose() -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())  # type: ignore[no-any-return]


def _app_paths() -> set[str]:
    app = create_app(Settings(payment_mode="free", data_dir=Path("/tmp/arkgate-deploy-test")))

    def paths(routes: list[Any]) -> set[str]:
        # FastAPI keeps an included router as one route that wraps the router's own.
        found: set[str] = set()
        for route in routes:
            inner = getattr(route, "original_router", None)
            found |= paths(inner.routes) if inner is not None else {getattr(route, "path", "")}
        return found

    return paths(app.routes)


def _require_path(path: str) -> None:
    assert path in _app_paths(), f"{path} is not served"


def test_compose_runs_two_gateways_on_shared_postgres_and_redis_with_real_settings_and_commands() -> None:
    services = _compose()["services"]
    served: list[str] = []
    gateways = {name: s for name, s in services.items() if s.get("command", [None, None])[:2] == ["arkgate", "serve"]}
    assert len(gateways) >= 2
    assert "postgres" in services and "redis" in services
    assert services["simulator"]["command"][:2] == ["arkgate", "simulator"]
    assert "barkd" in services["barkd"]["profiles"]
    urls = {s["environment"]["ARKGATE_DATABASE_URL"] for s in gateways.values()}
    assert len(urls) == 1 and next(iter(urls)).startswith("postgresql://")
    assert {s["environment"]["ARKGATE_RATE_LIMIT_STORAGE"] for s in gateways.values()} == {"redis://redis:6379/0"}
    data_mounts = [next(v for v in s["volumes"] if v.endswith(":/data")) for s in gateways.values()]
    assert len(set(data_mounts)) == len(data_mounts), "each instance needs its own data directory"
    for name, service in services.items():
        command = service.get("command")
        if command and command[0] == "arkgate":
            assert_real_command(command)
        for variable in service.get("environment", {}):
            if variable.startswith("ARKGATE_"):
                assert_real_setting(variable)
        health = service.get("healthcheck", {}).get("test", [])
        for path in re.findall(r"127\.0\.0\.1:8080(/[\w/]+)", " ".join(health)):
            _require_path(path)
            served.append(path)
    # The trusted proxy is the only address allowed to set X-Forwarded-*, and it is Caddy's.
    caddy_ip = services["caddy"]["networks"]["default"]["ipv4_address"]
    assert {s["environment"]["ARKGATE_FORWARDED_ALLOW_IPS"] for s in gateways.values()} == {caddy_ip}
    Settings(forwarded_allow_ips=caddy_ip)
    assert served, "the gateways have no health check"


def test_the_sample_toml_loads_into_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARKGATE_CONFIG", str(DEPLOY / "arkgate.toml"))
    settings = Settings()
    assert settings.public_url == "https://api.example.com"
    assert settings.forwarded_allow_ips == ["127.0.0.1", "::1"]
    assert settings.database_url.startswith("postgresql://")
    import tomllib

    keys = set(tomllib.loads((DEPLOY / "arkgate.toml").read_text())["arkgate"])
    assert keys <= set(Settings.model_fields), keys - set(Settings.model_fields)


def _dockerfile_instruction(name: str) -> list[str]:
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    return [line.split(None, 1)[1] for line in text.splitlines() if line.split(None, 1)[:1] == [name]]


def test_the_dockerfile_runs_a_real_command_as_a_non_root_user_from_the_lock() -> None:
    import json

    (cmd,) = _dockerfile_instruction("CMD")
    assert_real_command(json.loads(cmd))
    users = _dockerfile_instruction("USER")
    assert users and users[-1] not in ("root", "0")
    runs = " ".join(_dockerfile_instruction("RUN"))
    assert "uv sync --frozen --no-dev" in runs
    assert len(_dockerfile_instruction("FROM")) >= 2, "multi-stage"
    (healthcheck,) = _dockerfile_instruction("HEALTHCHECK")
    (path,) = re.findall(r"'(/health[\w/]*)'", healthcheck)
    for env in _dockerfile_instruction("ENV"):
        for variable in re.findall(r"\b(ARKGATE_\w+)=", env):
            assert_real_setting(variable)
    _require_path(path)


def test_the_systemd_unit_starts_a_real_command_sandboxed() -> None:
    lines = [line.strip() for line in (DEPLOY / "arkgate.service").read_text().splitlines()]
    directives = [line.split("=", 1) for line in lines if "=" in line and not line.startswith("#")]
    starts = [value for key, value in directives if key == "ExecStart"]
    assert len(starts) == 1
    assert_real_command(shlex.split(starts[0]))
    values = dict(directives)
    for key in ("DynamicUser", "NoNewPrivileges", "ProtectHome", "PrivateTmp"):
        assert values[key] == "yes", key
    assert values["ProtectSystem"] == "strict"
    assert values["StateDirectoryMode"] == "0700"
    for key, value in directives:
        if key == "Environment":
            assert_real_setting(value.split("=", 1)[0])


def test_docs_deploy_covers_what_an_operator_needs() -> None:
    text = (ROOT / "docs" / "deploy.md").read_text()
    for topic in ("TLS", "X-Forwarded-For", "Backups", "L402", "barkd", "Upgrades", "scaling.md", "What runs where"):
        assert topic in text, topic
    for artefact in ("Dockerfile", "deploy/compose.yaml", "deploy/arkgate.service", "deploy/arkgate.toml"):
        assert artefact in text


def test_the_image_builds_when_a_container_runtime_is_available() -> None:
    docker = shutil.which("docker")
    if docker is None or subprocess.run([docker, "info"], capture_output=True, timeout=30).returncode != 0:
        pytest.skip("no container runtime here (docker info fails): the artefacts are checked statically above")
    subprocess.run([docker, "build", "-q", "-t", "arkgate:test", str(ROOT)], check=True, timeout=1800)


def test_systemd_accepts_the_unit_and_rates_it_well_sandboxed(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    arkgate = Path(sys.executable).parent / "arkgate"
    unit = tmp_path / "arkgate.service"
    unit.write_text((DEPLOY / "arkgate.service").read_text().replace("/opt/arkgate/.venv/bin/arkgate", str(arkgate)))
    verify = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True, timeout=60)
    assert verify.returncode == 0 and verify.stderr.strip() == "", verify.stderr
    security = subprocess.run(
        [analyze, "security", "--offline=yes", str(unit)], capture_output=True, text=True, timeout=60
    )
    (exposure,) = re.findall(r"Overall exposure level for arkgate\.service: ([\d.]+)", security.stdout)
    assert float(exposure) <= 2.0, security.stdout[-2000:]
