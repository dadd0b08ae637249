"""A third-party endpoint package, installed beside arkgate, is served, priced and charged like a built-in one.

``arkgate_word_count/`` is a complete plugin package (its own pyproject.toml with the ``arkgate``
entry point). The test installs it into a temporary directory the way an installer lays out a
pure-Python wheel (the sources plus a ``.dist-info`` with ``entry_points.txt``; no build backend
or network needed), puts that directory on a real ``arkgate serve`` process's PYTHONPATH and pays
for a call through the simulator.
"""

from __future__ import annotations

import inspect
import shutil
import time
import tomllib
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pluggy
import pytest

from arkgate import hookspecs
from arkgate.app import create_app
from arkgate.catalog.registry import StartupError, load_catalog
from arkgate.hookspecs import hookimpl
from arkgate.plugins import plugin_endpoints, plugin_manager
from tests.served import served_gateway

PACKAGE = Path(__file__).parent / "arkgate_word_count"


def install(package: Path, target: Path) -> None:
    """Lay ``package`` out in ``target`` as installing its wheel would: the module and its dist-info."""
    project = tomllib.loads((package / "pyproject.toml").read_text())["project"]
    module = project["name"].replace("-", "_")
    shutil.copytree(package / module, target / module)
    info = target / f"{module}-{project['version']}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {project['name']}\nVersion: {project['version']}\n")
    lines = []
    for group, entries in project["entry-points"].items():
        lines.append(f"[{group}]")
        lines.extend(f"{name} = {value}" for name, value in entries.items())
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n")
    (info / "INSTALLER").write_text("tests\n")


def _poll(check: Any, timeout_s: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout_s
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.02)
    raise AssertionError(f"condition not met within {timeout_s} s; last value: {last!r}")


def test_installed_plugin_endpoint_is_listed_with_its_price_and_charged_through_the_meter(
    tmp_path, simulator, monkeypatch
):
    site = tmp_path / "site"
    install(PACKAGE, site)
    monkeypatch.setenv("PYTHONPATH", str(site))
    settings = {
        "payment_mode": "barkd",
        "barkd_url": simulator.url,
        "barkd_token": simulator.token,
        "max_unfunded_sessions_per_ip": 0,
    }
    with served_gateway(tmp_path, **settings) as gw, httpx.Client(base_url=gw.url, timeout=30) as client:
        operation = client.get("/openapi.json").json()["paths"]["/api/word-count"]["post"]
        assert operation["x-cost-sats"] == 2
        listed = {e["id"]: e for e in client.get("/v1/catalog").json()["endpoints"]}
        assert listed["word-count"]["price_sats"] == 2
        assert "/api/word-count" in client.get("/llms.txt").text

        created = client.post("/v1/sessions", json={"amount_sats": 500}).json()
        token = created["token"]
        auth = {"Authorization": f"Bearer {token}"}
        simulator.pay_invoice(created["funding"]["lightning_invoice"])
        _poll(lambda: client.get("/v1/balance", headers=auth).json()["balance_sats"] == 500)

        response = client.post("/api/word-count", json={"text": "pay per call"}, headers=auth)
        assert response.status_code == 200, response.text
        assert response.json()["data"] == {"words": 3}
        assert client.get("/v1/balance", headers=auth).json()["balance_sats"] == 498

        unpaid = client.post("/api/word-count", json={"text": "no token"})
        assert unpaid.status_code == 402


def _plugin(**hooks: Any) -> ModuleType:
    module = ModuleType("a_plugin")
    for name, function in hooks.items():
        setattr(module, name, hookimpl(function))
    return module


def test_a_plugin_endpoint_joins_the_catalog_and_its_route_is_served():
    from tests.plugins.arkgate_word_count import arkgate_word_count as word_count

    manager = plugin_manager(plugins=[word_count], entry_points=False)
    catalog = load_catalog(extra=plugin_endpoints(manager))
    assert catalog.get("word-count") is word_count.WORD_COUNT


def test_a_misspelt_hook_stops_start_up():
    def register_endpoint() -> list[Any]:  # the spec is register_endpoints
        return []

    with pytest.raises(pluggy.PluginValidationError):
        plugin_manager(plugins=[_plugin(register_endpoint=register_endpoint)], entry_points=False)


def test_a_plugin_returning_something_else_than_endpoints_stops_start_up():
    manager = plugin_manager(plugins=[_plugin(register_endpoints=lambda: ["word-count"])], entry_points=False)
    with pytest.raises(StartupError, match="not an Endpoint"):
        plugin_endpoints(manager)


def test_a_plugin_endpoint_with_a_taken_id_stops_start_up(make_settings):
    from tests.plugins.arkgate_word_count import arkgate_word_count as word_count

    clash = _plugin(register_endpoints=lambda: [word_count.WORD_COUNT])
    manager = plugin_manager(plugins=[word_count, clash], entry_points=False)
    with pytest.raises(StartupError, match="word-count"):
        create_app(make_settings(), plugins=manager)


def test_extending_md_shows_the_tested_package():
    """docs/extending.md's example is this package, line for line."""
    doc = (Path(__file__).parents[2] / "docs" / "extending.md").read_text()
    source = (PACKAGE / "arkgate_word_count" / "__init__.py").read_text()
    assert f"```python\n# arkgate_word_count/__init__.py\n{source}```" in doc
    project = (PACKAGE / "pyproject.toml").read_text().split("\n", 1)[1]  # past its own comment line
    assert f"```toml\n# pyproject.toml\n{project}```" in doc


def test_every_hook_is_documented_with_its_signature():
    """Each spec in arkgate.hookspecs has a row in docs/development.md's hook table (Datasette's rule)."""
    doc = (Path(__file__).parents[2] / "docs" / "development.md").read_text()
    specs = [name for name, value in vars(hookspecs).items() if hasattr(value, "arkgate_spec")]
    assert specs == ["register_endpoints"]
    for name in specs:
        parameters = ", ".join(inspect.signature(getattr(hookspecs, name)).parameters)
        assert f"| `{name}` | `({parameters}) -> " in doc, name
