"""CLI: ``arkgate simulator`` (serve) and ``arkgate sim ...`` (drive a running simulator)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import typer

DEFAULT_URL = "http://127.0.0.1:3000"
DEFAULT_STATE_DIR = Path(".arkgate/simulator")

sim_app = typer.Typer(help="Drive a running barkd simulator (payers, blocks, the Ark server).")


def simulator(
    host: str = "127.0.0.1",
    port: int = 3000,
    state_dir: Path = DEFAULT_STATE_DIR,
    network: str = "signet",
    compat: str = "0.8.0",
    no_auth: bool = False,
) -> None:
    """Run the bundled barkd simulator (one merchant wallet) until interrupted."""
    import uvicorn

    from arkgate.simulator.app import create_simulator_app

    if no_auth and host not in ("127.0.0.1", "localhost", "::1"):
        raise typer.BadParameter("--no-auth works on loopback binds only, as in barkd")
    app = create_simulator_app(state_dir, network, compat=compat, no_auth=no_auth)
    typer.echo(f"barkd simulator ({compat}, {network}) on http://{host}:{port}")
    typer.echo(f"token file: {state_dir / 'auth_token'}")
    uvicorn.run(app, host=host, port=port, log_level="info")


def _post(url: str, name: str, body: dict[str, Any]) -> None:
    response = httpx.post(f"{url.rstrip('/')}/_sim/{name}", json=body, timeout=30)
    typer.echo(json.dumps(response.json(), indent=2))
    if response.status_code != 200:
        raise typer.Exit(1)


@sim_app.command()
def pay(invoice: str, url: str = DEFAULT_URL) -> None:
    """Pay a BOLT11 invoice of the simulated wallet from an outside payer."""
    _post(url, "pay-invoice", {"invoice": invoice})


@sim_app.command()
def send(address: str, amount: int, url: str = DEFAULT_URL, vtxos: int = 1) -> None:
    """Send AMOUNT sats to an Ark ADDRESS of the simulated wallet (optionally as several VTXOs)."""
    _post(url, "send-ark", {"address": address, "amount_sat": amount, "vtxos": vtxos})


@sim_app.command()
def mine(n: int = typer.Argument(1), url: str = DEFAULT_URL) -> None:
    """Mine N blocks (rounds, exits and boards advance)."""
    _post(url, "mine", {"blocks": n})


@sim_app.command()
def offline(url: str = DEFAULT_URL) -> None:
    """Take the simulated Ark server offline."""
    _post(url, "server", {"online": False})


@sim_app.command()
def online(url: str = DEFAULT_URL) -> None:
    """Bring the simulated Ark server back online."""
    _post(url, "server", {"online": True})


@sim_app.command(name="round")
def run_round(url: str = DEFAULT_URL) -> None:
    """Run a round now."""
    _post(url, "round", {})
