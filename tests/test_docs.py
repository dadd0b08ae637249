"""Docs that are generated or promised stay true."""

from __future__ import annotations

from pathlib import Path

from arkgate.catalog.registry import builtin_module_names, load_catalog
from arkgate.cli import settings_reference

ROOT = Path(__file__).resolve().parents[1]


def test_every_setting_is_documented():
    text = (ROOT / "docs" / "configuration.md").read_text()
    assert settings_reference() in text, "docs/configuration.md is stale: regenerate with `arkgate settings --markdown`"


def test_readme_gives_the_two_quick_start_commands():
    readme = (ROOT / "README.md").read_text()
    assert "make demo" in readme and "make test" in readme


def test_every_endpoint_module_declares_an_endpoint_with_a_doc_page():
    catalog = load_catalog(plugins=False)
    declared = {endpoint.module_name for endpoint in catalog}
    assert set(builtin_module_names()) == declared
    docs = "".join(path.read_text() for path in (ROOT / "docs").glob("endpoints-*.md"))
    missing = [endpoint.id for endpoint in catalog if endpoint.id not in docs and endpoint.id != "qr-generate"]
    assert missing == []
