"""The ``arkgate`` command: serve, demo, migrate, settings, simulator, sim."""

from __future__ import annotations

import asyncio
import errno
import json
import os
import socket
import sys
import tomllib
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from pydantic import ValidationError

from arkgate.settings import Settings, describe_invalid

# Errors are one line (see fail()); a library's traceback is for --traceback only.
app = typer.Typer(
    help="arkgate: pay-per-call API gateway funded by Lightning or Ark.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
_show_tracebacks = False


def fail(message: str, hint: str = "") -> NoReturn:
    """Print one ``Error: ...`` line (with a hint when there is one) and exit 1."""
    typer.echo(f"Error: {message}" + (f". Hint: {hint}" if hint else ""), err=True)
    raise typer.Exit(1)


def arkgate_version() -> str:
    try:
        return package_version("arkgate")
    except PackageNotFoundError:
        return "unknown"


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"arkgate {arkgate_version()}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_print_version, is_eager=True, help="Print arkgate's version and exit."),
    ] = False,
    traceback: Annotated[
        bool, typer.Option("--traceback", help="Show the full traceback of an unexpected error.")
    ] = False,
) -> None:
    global _show_tracebacks
    _show_tracebacks = traceback


def load_settings(**overrides: Any) -> Settings:
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        fail(f"invalid settings: {describe_invalid(exc)}", "see docs/configuration.md")
    except (OSError, tomllib.TOMLDecodeError) as exc:
        fail(f"cannot read the settings file {os.environ.get('ARKGATE_CONFIG')}: {exc}", "check --config")
    except ValueError as exc:
        fail(str(exc), "see docs/configuration.md")


def bind(host: str, port: int, *, setting: str = "ARKGATE_PORT / --port") -> socket.socket:
    """The listening socket, bound before anything starts so a taken port is one clear line."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except socket.gaierror as exc:
        fail(f"cannot listen on {host}: {exc.strerror}", "set ARKGATE_HOST / --host to an address of this machine")
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            fail(f"port {port} on {host} is already in use", f"stop what runs there or choose another port ({setting})")
        if exc.errno == errno.EACCES:
            fail(f"no permission to listen on port {port}", f"use a port above 1023 ({setting})")
        fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}", f"check ARKGATE_HOST and {setting}")
    return sock


def _display_url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _prepare_database(settings: Settings) -> None:
    """Migrate before serving, so an unreachable or refusing database is one line, not a traceback."""
    from sqlalchemy.engine import make_url

    from arkgate.db import migrate as migrations
    from arkgate.db.engine import Database

    async def _run() -> None:
        database = Database(settings.effective_database_url)
        try:
            await migrations.upgrade(database)
        finally:
            await database.dispose()

    try:
        asyncio.run(_run())
    except Exception as exc:
        shown = make_url(settings.effective_database_url).render_as_string(hide_password=True)
        reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        fail(f"cannot open the database {shown}: {reason}", "check ARKGATE_DATABASE_URL and that the server runs")


def run_gateway(settings: Settings, sock: socket.socket | None = None) -> None:
    import uvicorn

    from arkgate.app import create_app
    from arkgate.logs import configure_logging
    from arkgate.serving import server_config

    sock = sock if sock is not None else bind(settings.host, settings.port)
    _prepare_database(settings)
    configure_logging(settings.log_level, json_lines=settings.log_json)
    host, port = sock.getsockname()[:2]
    where = f"{_display_url(host, port)} ({settings.network}, payment mode {settings.payment_mode}"
    if settings.workers > 1:
        from uvicorn.supervisors import Multiprocess

        # Each worker process builds its own app from the same environment (an app factory).
        os.environ["ARKGATE_HOST"], os.environ["ARKGATE_PORT"] = settings.host, str(port)
        os.environ["ARKGATE_WORKERS"] = str(settings.workers)
        factory = "arkgate.app:create_app_from_environment"
        config = server_config(factory, settings, factory=True, workers=settings.workers)
        typer.echo(f"arkgate {arkgate_version()} listening on {where}, {settings.workers} workers)", err=True)
        Multiprocess(config, sockets=[sock]).run()
        return

    class Server(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets)
            if self.started:  # the app started and the socket accepts: say where
                typer.echo(f"arkgate {arkgate_version()} listening on {where}); Ctrl-C stops it", err=True)

    config = server_config(create_app(settings), settings)
    Server(config).run(sockets=[sock])


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (ARKGATE_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (ARKGATE_PORT).")] = None,
    config: Annotated[Path | None, typer.Option(help="TOML settings file (ARKGATE_CONFIG).")] = None,
    workers: Annotated[int | None, typer.Option(help="Worker processes (ARKGATE_WORKERS).")] = None,
) -> None:
    """Run the gateway: settings are checked, the database migrated, then it prints where it listens."""
    if config is not None:
        os.environ["ARKGATE_CONFIG"] = str(config)
    run_gateway(load_settings(host=host, port=port, workers=workers))


@app.command()
def demo(
    port: Annotated[int, typer.Option(envvar="ARKGATE_PORT", help="Gateway port (ARKGATE_PORT).")] = 8080,
    simulator_port: Annotated[
        int, typer.Option(envvar="ARKGATE_SIM_PORT", help="Simulator port (ARKGATE_SIM_PORT).")
    ] = 3000,
    state_dir: Annotated[Path, typer.Option(help="Where the demo keeps its data.")] = Path(".arkgate/demo"),
) -> None:
    """Run the bundled barkd simulator and the gateway together on embedded SQLite."""
    from arkgate.simulator.commands import URL_FILE
    from arkgate.simulator.server import SimulatorServer

    host = load_settings(port=port).host  # the operator's other ARKGATE_* settings must be valid too
    sock = bind(host, port, setting="make demo PORT=... / --port")
    simulator = SimulatorServer(state_dir / "simulator", port=simulator_port)
    try:
        simulator.start()
    except OSError as exc:
        simulator.stop()
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            fail(
                f"the simulator's port {simulator_port} is already in use",
                "stop what runs there or choose another (make demo SIM_PORT=... / --simulator-port)",
            )
        fail(f"cannot start the simulator: {exc}")
    url_file = state_dir / URL_FILE
    try:
        # `arkgate sim ...` reads this file to find the demo's simulator wherever its port is.
        url_file.write_text(simulator.url + "\n")
        settings = load_settings(
            host=host,
            port=sock.getsockname()[1],
            data_dir=state_dir,
            barkd_url=simulator.url,
            barkd_token=simulator.token,
            payment_mode="barkd",
            network="signet",
            demo=True,
            simulator_url=simulator.url,
        )
        gateway = f"http://{settings.host}:{settings.port}"
        typer.echo(
            f"""
arkgate demo
  gateway    {gateway}   (web pages, API, /docs, /llms.txt, /mcp)
  simulator  {simulator.url}   (barkd REST API; payer controls under /_sim/)

Try it:
  curl -s -X POST {gateway}/v1/sessions -H 'Content-Type: application/json' -d '{{"amount_sats": 500}}'
  arkgate sim pay <lightning_invoice>      # or: arkgate sim send <ark_address> 500
  curl -s {gateway}/v1/balance -H 'Authorization: Bearer <token>'
  curl -s -X POST {gateway}/api/qr-generate -H 'Authorization: Bearer <token>' \\
       -H 'Content-Type: application/json' -d '{{"data": "hello"}}'
""",
            err=True,
        )
        run_gateway(settings, sock)
    finally:
        url_file.unlink(missing_ok=True)
        simulator.stop()


@app.command()
def migrate() -> None:
    """Apply database migrations (serve also does this at start-up)."""
    _prepare_database(load_settings())
    typer.echo("database is up to date")


@app.command("settings")
def show_settings(
    markdown: Annotated[bool, typer.Option("--markdown", help="Print the reference table of every setting.")] = False,
) -> None:
    """Print the effective settings (secrets masked), or the reference table with --markdown."""
    if markdown:
        typer.echo(settings_reference(), nl=False)
        return
    settings = load_settings()
    values = json.loads(settings.model_dump_json())
    for name, value in values.items():
        if Settings.model_fields[name].annotation is not None and "Secret" in str(
            Settings.model_fields[name].annotation
        ):
            value = "**********" if value else value
        typer.echo(f"{name} = {json.dumps(value)}")


def settings_reference() -> str:
    """docs/configuration.md's table, generated from the Settings class."""
    lines = [
        "| Variable | Default | Description |",
        "|---|---|---|",
    ]
    for name, field in Settings.model_fields.items():
        default = field.get_default(call_default_factory=True)
        shown = "—" if default in (None, "", []) else f"`{json.dumps(default, default=str)}`"
        description = (field.description or "").replace("|", "\\|")
        lines.append(f"| `ARKGATE_{name.upper()}` | {shown} | {description} |")
    return "\n".join(lines) + "\n"


def doctor() -> None:
    """Check this deployment against the mainnet checklist (docs/mainnet.md); exit 1 if anything fails."""
    from arkgate.admin.doctor import diagnose

    checks = asyncio.run(diagnose(load_settings()))
    for check in checks:
        typer.echo(check.line())
    failed = [c for c in checks if not c.ok]
    typer.echo(f"{len(checks) - len(failed)}/{len(checks)} checks pass")
    if failed:
        raise typer.Exit(1)


def _register_subcommands() -> None:
    """Sub-commands that live with their packages."""
    from arkgate.admin.commands import admin_app
    from arkgate.client_cli import call, create_key, withdraw
    from arkgate.simulator import commands as sim_commands

    app.command("simulator", help="Run the bundled barkd simulator.")(sim_commands.simulator)
    app.add_typer(sim_commands.sim_app, name="sim", help="Payer and world controls of the simulator.")
    app.add_typer(admin_app, name="admin", help="Operator console: overview, health, refresh, sweep, exits.")
    app.command("doctor", help="Check this deployment against the mainnet checklist.")(doctor)
    app.command("call", help="Create a session, pay it, and call an endpoint.")(call)
    app.command("create-key", help="Create a capped sub-key of a session, for another agent.")(create_key)
    app.command("withdraw", help="Pay a session's balance out to an invoice, Lightning or Ark address.")(withdraw)


_register_subcommands()


def main() -> None:
    try:
        # Not standalone: usage errors come back here and are printed as one line, like every other error.
        result = app(standalone_mode=False)
    except (KeyboardInterrupt, typer.Abort):
        sys.exit(130)
    except Exception as exc:
        format_message = getattr(exc, "format_message", None)
        exit_code = getattr(exc, "exit_code", None)
        if callable(format_message) and isinstance(exit_code, int):
            # click's exceptions (Typer vendors click): usage errors, bad parameters, no command given.
            if type(exc).__name__ == "NoArgsIsHelpError":
                typer.echo(format_message(), err=True)
            else:
                ctx = getattr(exc, "ctx", None)
                hint = f". Hint: {ctx.command_path} --help" if ctx is not None else ""
                first = (str(format_message()).splitlines() or [""])[0].rstrip(".")
                typer.echo(f"Error: {first}{hint}", err=True)
            sys.exit(exit_code)
        if _show_tracebacks:
            raise
        first = (str(exc).splitlines() or [""])[0]
        typer.echo(
            f"Error: unexpected {type(exc).__name__}: {first}. Hint: run again with --traceback "
            "(arkgate --traceback ...) and report it",
            err=True,
        )
        sys.exit(1)
    sys.exit(result if isinstance(result, int) else 0)
