"""The real ``arkgate`` command in a subprocess: one-line errors with hints, --version, where it listens,
the demo's ports and simulator discovery, the overview summary's neighbours, binary results saved to files."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import typer

from arkgate.catalog.registry import load_catalog
from arkgate.cli import app
from tests.conftest import offline_defaults
from tests.live import live_gateway

ARKGATE = str(Path(sys.executable).with_name("arkgate"))
START_TIMEOUT_S = 60.0


def offline_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The environment of a gateway process that can reach nothing off this machine."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("ARKGATE_")}
    for name, value in offline_defaults().items():
        shown = ",".join(str(item) for item in value) if isinstance(value, list) else str(value)
        env[f"ARKGATE_{name.upper()}"] = shown
    env.update(ARKGATE_DATA_DIR=str(tmp_path / "data"), ARKGATE_PAYMENT_MODE="free", ARKGATE_RATE_LIMITS="off")
    env.update(extra)
    return env


def run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([ARKGATE, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=120)


def assert_one_line_error(result: subprocess.CompletedProcess[str], *expected: str) -> None:
    assert result.returncode != 0, result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: ") and "Traceback" not in result.stderr
    for text in expected:
        assert text in lines[0], lines[0]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def running(args: list[str], env: dict[str, str], cwd: Path, ready: str) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """Start ``arkgate ARGS`` and wait for a stderr line containing ``ready``; stop it at the end."""
    process = subprocess.Popen([ARKGATE, *args], env=env, cwd=cwd, stderr=subprocess.PIPE, text=True)
    assert process.stderr is not None
    seen: list[str] = []
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            line = process.stderr.readline()
            if not line:
                break
            seen.append(line)
            if ready in line:
                yield process, line.strip()
                return
        pytest.fail(f"arkgate {' '.join(args)} did not print {ready!r}:\n{''.join(seen)}")
    finally:
        process.terminate()
        process.wait(timeout=30)
        process.stderr.close()


def test_version():
    result = subprocess.run([ARKGATE, "--version"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    assert result.stdout.strip().startswith("arkgate ") and result.stdout.strip() != "arkgate unknown"


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("ARKGATE_DNS_NAMESERVERS", "resolver.example"),
        ("ARKGATE_DNS_NAMESERVERS", "127.0.0.1:99999"),
        ("ARKGATE_PORT", "99999"),
        ("ARKGATE_HOST", "not a host"),
        ("ARKGATE_BARKD_URL", "localhost:3000"),
        ("ARKGATE_AI_BASE_URL", "ftp://127.0.0.1/v1"),
        ("ARKGATE_NEWS_FEEDS", "http://127.0.0.1:9/feed,not-a-url"),
        ("ARKGATE_OUTBOUND_ALLOWED_PORTS", "80,0"),
        ("ARKGATE_RATE_LIMIT_CALLS", "lots"),
        ("ARKGATE_LOG_LEVEL", "loud"),
        ("ARKGATE_DATABASE_URL", "oracle://db"),
    ],
)
def test_invalid_setting_stops_serve_with_one_line_naming_it(tmp_path, variable, value):
    result = run(["serve"], offline_env(tmp_path, **{variable: value}), tmp_path)
    assert_one_line_error(result, "invalid settings", variable)


def test_unreadable_settings_file_is_one_line(tmp_path):
    result = run(["serve", "--config", str(tmp_path / "missing.toml")], offline_env(tmp_path), tmp_path)
    assert_one_line_error(result, "missing.toml")


def test_taken_port_is_one_line_with_a_hint(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run(["serve", "--port", str(port)], offline_env(tmp_path), tmp_path)
    assert_one_line_error(result, f"port {port}", "already in use", "Hint:")


def test_unreachable_database_is_one_line_without_its_password(tmp_path):
    url = f"postgresql://arkgate:s3cret@127.0.0.1:{free_port()}/arkgate"
    result = run(["serve", "--port", "0"], offline_env(tmp_path, ARKGATE_DATABASE_URL=url), tmp_path)
    assert_one_line_error(result, "cannot open the database", "ARKGATE_DATABASE_URL")
    assert "s3cret" not in result.stderr


def test_serve_prints_where_it_listens(tmp_path):
    with running(["serve", "--port", "0"], offline_env(tmp_path), tmp_path, "listening on") as (_, line):
        url = line.split("listening on ", 1)[1].split()[0]
        assert url.startswith("http://127.0.0.1:")
        assert httpx.get(f"{url}/health/live").json() == {"status": "ok"}


def test_demo_honours_its_ports_and_arkgate_sim_finds_its_simulator(tmp_path):
    port, sim_port = free_port(), free_port()
    env = offline_env(tmp_path, ARKGATE_PORT=str(port), ARKGATE_SIM_PORT=str(sim_port))
    with running(["demo"], env, tmp_path, "listening on") as (_, line):
        assert f"http://127.0.0.1:{port}" in line
        assert (tmp_path / ".arkgate/demo/simulator.url").read_text().strip() == f"http://127.0.0.1:{sim_port}"
        health = httpx.get(f"http://127.0.0.1:{port}/health").json()
        assert health["status"] == "ok" and health["barkd"]["reachable"] is True
        # No --url: `arkgate sim` reads the demo's simulator.url from the same state directory.
        mined = run(["sim", "mine", "2"], offline_env(tmp_path), tmp_path)
        assert mined.returncode == 0, mined.stderr
        assert json.loads(mined.stdout)["blocks"] == 2


def test_arkgate_sim_finds_a_standalone_simulator(tmp_path):
    with running(["simulator", "--port", "0"], offline_env(tmp_path), tmp_path, "token file:"):
        url = (tmp_path / ".arkgate/simulator/simulator.url").read_text().strip()
        assert url.startswith("http://127.0.0.1:") and not url.endswith(":0")
        mined = run(["sim", "mine"], offline_env(tmp_path), tmp_path)
        assert mined.returncode == 0, mined.stderr
        assert json.loads(mined.stdout)["blocks"] == 1


def test_standalone_simulator_on_a_taken_port_is_one_line(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run(["simulator", "--port", str(port)], offline_env(tmp_path), tmp_path)
    assert_one_line_error(result, f"port {port}", "--port")


def test_demo_with_a_taken_simulator_port_is_one_line(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        sim_port = taken.getsockname()[1]
        result = run(["demo", "--port", "0", "--simulator-port", str(sim_port)], offline_env(tmp_path), tmp_path)
    assert_one_line_error(result, f"port {sim_port}", "SIM_PORT")


@pytest.mark.parametrize(
    "args",
    [
        ["sim", "pay", "lntbs1"],
        ["call", "qr-generate", "--json", '{"data": "x"}', "--token", "ak_x"],
        ["admin", "overview", "--token", "x"],
    ],
    ids=["sim", "call", "admin"],
)
def test_refused_connection_is_one_line_with_a_hint(tmp_path, args):
    dead = f"http://127.0.0.1:{free_port()}"
    env = offline_env(tmp_path, ARKGATE_SIM_URL=dead, ARKGATE_URL=dead)
    result = run(args, env, tmp_path)
    assert_one_line_error(result, "cannot reach", "connection refused", "Hint:")


def test_call_saves_the_qr_image_to_a_file_and_prints_its_path(make_settings, tmp_path):
    with live_gateway(make_settings(), load_catalog(only=("qr-generate",))) as gw:
        token = gw.create_session(10)["token"]
        args = ["call", "qr-generate", "--json", '{"data": "hello"}', "--url", gw.url, "--token", token]
        result = run([*args, "--save-dir", str(tmp_path / "out")], offline_env(tmp_path), tmp_path)
    assert result.returncode == 0, result.stderr
    saved = tmp_path / "out" / "qr-generate.png"
    assert saved.read_bytes().startswith(b"\x89PNG")
    assert f"saved {saved} (" in result.stderr
    answer: dict[str, Any] = json.loads(result.stdout)
    assert answer["data"]["image_base64"] == f"saved to {saved}"
    assert answer["data"]["data_uri"] == f"saved to {saved}"  # the same bytes: one file
    assert len(result.stdout) < 2000  # no page of base64
    assert base64.b64encode(saved.read_bytes()).decode() not in result.stdout


def _options(command: Any, path: str) -> Iterator[tuple[str, Any]]:
    for param in command.params:
        yield f"{path} {param.name}", param
    for name, sub in getattr(command, "commands", {}).items():
        yield from _options(sub, f"{path} {name}")


def test_every_cli_option_and_argument_has_help_text():
    every = list(_options(typer.main.get_command(app), "arkgate"))
    assert any(where == "arkgate sim send vtxos" for where, _ in every)  # the walk reaches sub-commands
    missing = [where for where, param in every if not getattr(param, "help", None) and param.name != "help"]
    assert missing == []


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["call", "qr-generate", "--json", "{nope"], "--json is not valid JSON"),
        (["serve", "--port", "abc"], "arkgate serve --help"),
        (["frobnicate"], "No such command 'frobnicate'"),
    ],
)
def test_usage_errors_are_one_line(tmp_path, args, expected):
    assert_one_line_error(run(args, offline_env(tmp_path), tmp_path), expected)
