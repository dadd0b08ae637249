"""The ``arkgate`` command: serve, demo, migrate, settings, simulator, sim."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError

from arkgate.settings import Settings

app = typer.Typer(help="arkgate: pay-per-call API gateway funded by Lightning or Ark.", no_args_is_help=True)


def load_settings(**overrides: Any) -> Settings:
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        typer.echo(f"Error: invalid settings: {exc}", err=True)
        raise typer.Exit(1) from None
    except ValueError as exc:
        typer.echo(f"Error: {exc}", err=True)
        raise typer.Exit(1) from None


def run_gateway(settings: Settings) -> None:
    import uvicorn

    from arkgate.app import create_app
    from arkgate.logs import configure_logging

    configure_logging(settings.log_level, json_lines=settings.log_json)
    if settings.workers > 1:
        # Each worker process builds its own app from the same environment (an app factory).
        os.environ["ARKGATE_HOST"], os.environ["ARKGATE_PORT"] = settings.host, str(settings.port)
        os.environ["ARKGATE_WORKERS"] = str(settings.workers)
        uvicorn.run(
            "arkgate.app:create_app_from_environment",
            factory=True,
            workers=settings.workers,
            host=settings.host,
            port=settings.port,
            log_level="warning",
            access_log=False,
            proxy_headers=False,
        )
        return
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level="warning",
        access_log=False,
        proxy_headers=False,
    )


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (ARKGATE_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (ARKGATE_PORT).")] = None,
    config: Annotated[Path | None, typer.Option(help="TOML settings file (ARKGATE_CONFIG).")] = None,
    workers: Annotated[int | None, typer.Option(help="Worker processes (ARKGATE_WORKERS).")] = None,
) -> None:
    """Run the gateway."""
    if config is not None:
        os.environ["ARKGATE_CONFIG"] = str(config)
    run_gateway(load_settings(host=host, port=port, workers=workers))


@app.command()
def demo(
    port: Annotated[int, typer.Option(help="Gateway port.")] = 8080,
    simulator_port: Annotated[int, typer.Option(help="Simulator port.")] = 3000,
    state_dir: Annotated[Path, typer.Option(help="Where the demo keeps its data.")] = Path(".arkgate/demo"),
) -> None:
    """Run the bundled barkd simulator and the gateway together on embedded SQLite."""
    from arkgate.simulator.server import SimulatorServer

    simulator = SimulatorServer(state_dir / "simulator", port=simulator_port)
    with simulator:
        settings = load_settings(
            port=port,
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
  arkgate sim pay <lightning_invoice> --url {simulator.url}      # or: arkgate sim send <ark_address> 500
  curl -s {gateway}/v1/balance -H 'Authorization: Bearer <token>'
  curl -s -X POST {gateway}/api/qr-generate -H 'Authorization: Bearer <token>' \\
       -H 'Content-Type: application/json' -d '{{"data": "hello"}}'
""",
            err=True,
        )
        run_gateway(settings)


@app.command()
def migrate() -> None:
    """Apply database migrations (serve also does this at start-up)."""
    from arkgate.db import migrate as migrations
    from arkgate.db.engine import Database

    settings = load_settings()

    async def _run() -> None:
        database = Database(settings.effective_database_url)
        await migrations.upgrade(database)
        await database.dispose()

    asyncio.run(_run())
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


def _register_subcommands() -> None:
    """Sub-commands that live with their packages."""
    from arkgate.admin.commands import admin_app
    from arkgate.client_cli import call
    from arkgate.simulator import commands as sim_commands

    app.command("simulator", help="Run the bundled barkd simulator.")(sim_commands.simulator)
    app.add_typer(sim_commands.sim_app, name="sim", help="Payer and world controls of the simulator.")
    app.add_typer(admin_app, name="admin", help="Operator console: overview, health, refresh, sweep, exits.")
    app.command("call", help="Create a session, pay it, and call an endpoint.")(call)


_register_subcommands()


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
