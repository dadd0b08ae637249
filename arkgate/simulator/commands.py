"""CLI: ``arkgate simulator`` (serve) and ``arkgate sim ...`` (drive a running simulator).

``arkgate sim`` finds the simulator to drive from ``--url`` / ``ARKGATE_SIM_URL``, else from the
``simulator.url`` file that ``arkgate demo`` (``make demo``) and ``arkgate simulator`` write into their
state directories, else http://127.0.0.1:3000.
"""

from __future__ import annotations

import errno
import json
import socket
from pathlib import Path
from typing import Annotated, Any, NoReturn

import httpx
import typer

DEFAULT_URL = "http://127.0.0.1:3000"
DEFAULT_STATE_DIR = Path(".arkgate/simulator")
DEMO_STATE_DIR = Path(".arkgate/demo")
URL_FILE = "simulator.url"

sim_app = typer.Typer(help="Drive a running barkd simulator (payers, blocks, the Ark server).", no_args_is_help=True)

Url = Annotated[
    str | None,
    typer.Option(
        "--url",
        envvar="ARKGATE_SIM_URL",
        help="Simulator base URL (ARKGATE_SIM_URL); default: the running demo's, found in "
        f"{DEMO_STATE_DIR / URL_FILE}, else {DEFAULT_URL}.",
        show_default=False,
    ),
]


def _fail(message: str, hint: str) -> NoReturn:
    typer.echo(f"Error: {message}. Hint: {hint}", err=True)
    raise typer.Exit(1)


def simulator(
    host: Annotated[str, typer.Option(help="Bind address (loopback unless you mean it).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port of the simulated barkd REST API.")] = 3000,
    state_dir: Annotated[Path, typer.Option(help="Where the wallet state and auth_token are kept.")] = (
        DEFAULT_STATE_DIR
    ),
    network: Annotated[str, typer.Option(help="Network the simulated wallet is on.")] = "signet",
    compat: Annotated[str, typer.Option(help="barkd version to behave as: 0.8.0, 0.6.0 or 0.1.4.")] = "0.8.0",
    no_auth: Annotated[bool, typer.Option(help="Accept requests without the bearer token (loopback only).")] = False,
) -> None:
    """Run the bundled barkd simulator (one merchant wallet) until interrupted."""
    import uvicorn

    from arkgate.simulator.app import create_simulator_app

    if no_auth and host not in ("127.0.0.1", "localhost", "::1"):
        raise typer.BadParameter("--no-auth works on loopback binds only, as in barkd")
    try:
        app = create_simulator_app(state_dir, network, compat=compat, no_auth=no_auth)
    except ValueError as exc:
        _fail(str(exc), "see arkgate simulator --help")
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        taken = exc.errno == errno.EADDRINUSE
        _fail(
            f"port {port} on {host} is already in use" if taken else f"cannot listen on {host}:{port}: {exc}",
            "stop what runs there or choose another with --port",
        )
    port = sock.getsockname()[1]  # the real one when --port 0
    url = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
    url_file = state_dir / URL_FILE
    url_file.write_text(url + "\n")
    typer.echo(f"barkd simulator ({compat}, {network}) on {url}", err=True)
    typer.echo(f"token file: {state_dir / 'auth_token'}", err=True)
    try:
        uvicorn.Server(uvicorn.Config(app, log_level="info")).run(sockets=[sock])
    finally:
        url_file.unlink(missing_ok=True)


def resolve_url(url: str | None) -> tuple[str, str]:
    """The simulator's URL and where it came from (for error messages)."""
    if url:
        return url, "--url / ARKGATE_SIM_URL"
    for state_dir in (DEMO_STATE_DIR, DEFAULT_STATE_DIR):
        path = state_dir / URL_FILE
        if path.is_file() and path.read_text().strip():
            return path.read_text().strip(), str(path)
    return DEFAULT_URL, "the default"


def _post(url: str | None, name: str, body: dict[str, Any]) -> None:
    base, source = resolve_url(url)
    try:
        response = httpx.post(f"{base.rstrip('/')}/_sim/{name}", json=body, timeout=30)
    except httpx.HTTPError as exc:
        reason = "connection refused" if isinstance(exc, httpx.ConnectError) else type(exc).__name__
        _fail(
            f"cannot reach the simulator at {base} ({source}): {reason}",
            "start it with `make demo` (or `arkgate simulator`), or point --url / ARKGATE_SIM_URL at it",
        )
    try:
        payload = response.json()
    except ValueError:
        _fail(f"{base} answered {response.status_code} without JSON", "is that URL the simulator's?")
    if response.status_code != 200:
        message = payload.get("message") or payload.get("error") if isinstance(payload, dict) else payload
        typer.echo(f"Error ({response.status_code}): {message or json.dumps(payload)}", err=True)
        raise typer.Exit(1)
    typer.echo(json.dumps(payload, indent=2))


@sim_app.command()
def pay(invoice: Annotated[str, typer.Argument(help="The BOLT11 invoice to pay.")], url: Url = None) -> None:
    """Pay a BOLT11 invoice of the simulated wallet from an outside payer."""
    _post(url, "pay-invoice", {"invoice": invoice})


@sim_app.command()
def send(
    address: Annotated[str, typer.Argument(help="An Ark address of the simulated wallet.")],
    amount: Annotated[int, typer.Argument(help="Sats to send.")],
    url: Url = None,
    vtxos: Annotated[int, typer.Option(help="Split the payment into this many VTXOs.")] = 1,
) -> None:
    """Send AMOUNT sats to an Ark ADDRESS of the simulated wallet (optionally as several VTXOs)."""
    _post(url, "send-ark", {"address": address, "amount_sat": amount, "vtxos": vtxos})


@sim_app.command()
def mine(n: Annotated[int, typer.Argument(help="How many blocks.")] = 1, url: Url = None) -> None:
    """Mine N blocks (rounds, exits and boards advance)."""
    _post(url, "mine", {"blocks": n})


@sim_app.command()
def offline(url: Url = None) -> None:
    """Take the simulated Ark server offline."""
    _post(url, "server", {"online": False})


@sim_app.command()
def online(url: Url = None) -> None:
    """Bring the simulated Ark server back online."""
    _post(url, "server", {"online": True})


@sim_app.command(name="round")
def run_round(url: Url = None) -> None:
    """Run a round now."""
    _post(url, "round", {})
