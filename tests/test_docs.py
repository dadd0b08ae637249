"""Docs that are generated or promised stay true."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from arkgate.catalog.registry import builtin_module_names, load_catalog
from arkgate.cli import settings_reference
from tests.conftest import wait_for

ROOT = Path(__file__).resolve().parents[1]


def test_every_setting_is_documented():
    text = (ROOT / "docs" / "configuration.md").read_text()
    assert settings_reference() in text, "docs/configuration.md is stale: regenerate with `arkgate settings --markdown`"


def test_readme_gives_the_two_quick_start_commands():
    readme = (ROOT / "README.md").read_text()
    assert "make demo" in readme and "make test" in readme


def test_every_endpoint_module_declares_an_endpoint_with_a_doc_page():
    catalog = load_catalog()
    declared = {endpoint.module_name for endpoint in catalog}
    assert set(builtin_module_names()) == declared
    docs = "".join(path.read_text() for path in (ROOT / "docs").glob("endpoints-*.md"))
    missing = [endpoint.id for endpoint in catalog if endpoint.id not in docs and endpoint.id != "qr-generate"]
    assert missing == []


def readme_sample(opening: str) -> Any:
    """The JSON answer the README shows in ``# ...`` comment lines, starting at the line that opens with
    ``opening``; ``{...}`` stands for any object."""
    lines = (ROOT / "README.md").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"# {opening}"))
    text = ""
    for line in lines[start:]:
        if not line.startswith("# "):
            break
        text += line[2:].strip()
    return json.loads(text.replace("{...}", '"<any object>"'))


def same_shape(sample: Any, real: Any, where: str = "answer") -> list[str]:
    """Where the README's sample and a real answer differ in keys or JSON types."""
    if sample == "<any object>":
        return [] if isinstance(real, dict) else [f"{where}: expected an object"]
    if isinstance(sample, dict) and isinstance(real, dict):
        problems = [f"{where}: the README lacks {sorted(set(real) - set(sample))}"] if set(real) - set(sample) else []
        if set(sample) - set(real):
            problems.append(f"{where}: the gateway no longer sends {sorted(set(sample) - set(real))}")
        for key in set(sample) & set(real):
            problems += same_shape(sample[key], real[key], f"{where}.{key}")
        return problems
    kinds = (bool, int, str, list, type(None))
    sample_kind = next((kind for kind in kinds if isinstance(sample, kind)), dict)
    return [] if isinstance(real, sample_kind) else [f"{where}: {type(sample).__name__} vs {type(real).__name__}"]


async def test_readme_sample_answers_have_the_real_answers_shape(gateway_factory, simulator):
    async with gateway_factory(payment_mode="barkd", barkd_url=simulator.url, barkd_token=simulator.token) as gw:
        created = (await gw.client.post("/v1/sessions", json={"amount_sats": 500})).json()
        simulator.pay_invoice(created["funding"]["lightning_invoice"])
        auth = {"Authorization": f"Bearer {created['token']}"}

        async def funded() -> Any:
            body = (await gw.client.get("/v1/balance", headers=auth)).json()
            return body if body.get("balance_sats") == 500 else None

        balance = await wait_for(funded)
        paid = (await gw.client.post("/api/qr-generate", json={"data": "hello"}, headers=auth)).json()
    assert same_shape(readme_sample('{"token"'), created) == []
    assert same_shape(readme_sample('{"balance_sats"'), balance) == []
    assert same_shape(readme_sample('{"success":true'), paid) == []
    assert readme_sample('{"success":true')["cost_sats"] == paid["cost_sats"]


def test_endpoint_counts_in_readme_and_changelog_come_from_the_registry():
    count = len(load_catalog())
    for name in ("README.md", "CHANGELOG.md"):
        stated = [int(n) for n in re.findall(r"\b(\d+) endpoints\b", (ROOT / name).read_text())]
        assert all(n == count for n in stated), f"{name} says {stated} endpoints; the registry has {count}"
    assert re.search(rf"\b{count} endpoints\b", (ROOT / "CHANGELOG.md").read_text())


def test_readme_describes_the_admin_page_as_read_only():
    """The dashboard only reads the admin API; actions are the CLI's (and the API's)."""
    page = (ROOT / "arkgate" / "admin" / "static" / "app.js").read_text()
    assert "method:" not in page and '"POST"' not in page  # the page sends no writes
    readme = (ROOT / "README.md").read_text()
    assert "`/admin` is a read-only dashboard" in readme
