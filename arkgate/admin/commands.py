"""``arkgate admin ...``: the admin API from a terminal (prints its JSON).

Every command takes ``--url`` (``ARKGATE_URL``, default http://127.0.0.1:8080) and ``--token``
(``ARKGATE_ADMIN_TOKEN``). A refusal prints the gateway's message to stderr and exits 1.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import httpx
import typer

admin_app = typer.Typer(help="Operator console: overview, wallet health, refresh, sweeps, exits.", no_args_is_help=True)
exit_app = typer.Typer(help="Emergency exits: start, progress, status, claim.", no_args_is_help=True)
admin_app.add_typer(exit_app, name="exit")

Url = Annotated[str, typer.Option("--url", envvar="ARKGATE_URL", help="Gateway base URL.")]
Token = Annotated[str, typer.Option("--token", envvar="ARKGATE_ADMIN_TOKEN", help="Admin token.", show_default=False)]
DEFAULT_URL = "http://127.0.0.1:8080"
FeeRate = Annotated[int | None, typer.Option("--fee-rate", help="Fee rate in sat/vB.", min=1)]
Vtxos = Annotated[list[str] | None, typer.Option("--vtxo", help="A VTXO id (repeatable).")]


def _call(
    url: str, token: str, method: str, path: str, body: dict[str, Any] | None = None, *, show: bool = True
) -> Any:
    if not token:
        typer.echo("Error: no admin token. Hint: pass --token or set ARKGATE_ADMIN_TOKEN", err=True)
        raise typer.Exit(2)
    try:
        response = httpx.request(
            method,
            f"{url.rstrip('/')}/admin/api/{path}",
            json=body if method == "POST" else None,
            headers={"Authorization": f"Bearer {token}"},
            timeout=60,
        )
    except httpx.HTTPError as exc:
        reason = "connection refused" if isinstance(exc, httpx.ConnectError) else type(exc).__name__
        typer.echo(
            f"Error: cannot reach the gateway at {url}: {reason}. Hint: start it or set --url / ARKGATE_URL",
            err=True,
        )
        raise typer.Exit(1) from None
    try:
        payload = response.json()
    except ValueError:
        payload = {"error": response.text}
    if not response.is_success:
        message = payload.get("error") if isinstance(payload, dict) else payload
        typer.echo(f"Error ({response.status_code}): {message}", err=True)
        raise typer.Exit(1)
    if show:
        typer.echo(json.dumps(payload, indent=2, sort_keys=True))
    return payload


@admin_app.command()
def overview(
    url: Url = DEFAULT_URL,
    token: Token = "",
    as_json: Annotated[bool, typer.Option("--json", help="Print the raw overview document (JSON).")] = False,
) -> None:
    """Revenue, liabilities against the wallet, solvency, usage and funding."""
    document = _call(url, token, "GET", "overview", show=as_json)
    if not as_json:
        typer.echo(summarize_overview(document))


def _sats(value: Any) -> str:
    return "unknown" if value is None else f"{int(value):,} sats"


def summarize_overview(doc: dict[str, Any]) -> str:
    """The overview as a dozen lines a person reads at a glance (``--json`` has everything)."""
    revenue = doc.get("revenue") or {}
    lines = [
        f"arkgate overview: {doc.get('network')}, payment mode {doc.get('payment_mode')}, at {doc.get('generated_at')}",
        f"  revenue      today {_sats(revenue.get('today_sats'))}, 7 days {_sats(revenue.get('last_7d_sats'))}, "
        f"all time {_sats(revenue.get('all_time_sats'))}",
        f"  owed         {_sats(doc.get('liabilities_sats'))} (unspent session balances)",
    ]
    if doc.get("wallet_error"):
        lines.append(f"  wallet       unavailable: {doc['wallet_error']}")
    elif doc.get("wallet") is None:
        lines.append("  wallet       none (free mode: nothing real is owed)")
    else:
        verdict = "solvent" if doc.get("solvent") else "NOT SOLVENT"
        low = "; below the alert margin" if doc.get("solvency_low") else ""
        lines.append(
            f"  wallet       assets {_sats(doc.get('assets_sats'))}, surplus {_sats(doc.get('surplus_sats'))}: "
            f"{verdict}{low}"
        )
    sessions = doc.get("sessions") or {}
    lines.append(
        "  sessions     "
        + (
            ", ".join(
                f"{status} {item['count']} ({_sats(item['balance_sats'])})" for status, item in sorted(sessions.items())
            )
            or "none"
        )
    )
    funding = doc.get("funding") or {}
    lines.append(
        "  funding      "
        + (
            ", ".join(
                f"{rail} {item['count']} ({_sats(item['amount_sats'])})" for rail, item in sorted(funding.items())
            )
            or "none"
        )
        + f"; receive fees {_sats(doc.get('receive_fees_sats') or 0)}"
    )
    endpoints = doc.get("endpoints") or []
    top = ", ".join(f"{item['endpoint']} {item['calls']} calls ({_sats(item['sats'])})" for item in endpoints[:5])
    more = f" and {len(endpoints) - 5} more" if len(endpoints) > 5 else ""
    lines.append(f"  endpoints    {top or 'no calls yet'}{more}")
    attention = doc.get("attention") or {}
    orphans, late = attention.get("orphan_payments", 0), attention.get("late_payments", 0)
    flag = "  <- look at these (--json lists them)" if orphans or late else ""
    lines.append(f"  attention    orphan payments {orphans}, late payments {late}{flag}")
    return "\n".join(lines)


@admin_app.command()
def health(url: Url = DEFAULT_URL, token: Token = "") -> None:
    """barkd, Ark server, network, VTXO expiry against the tip, pending rounds."""
    _call(url, token, "GET", "health")


@admin_app.command()
def refresh(
    url: Url = DEFAULT_URL,
    token: Token = "",
    vtxo: Vtxos = None,
    all_vtxos: Annotated[bool, typer.Option("--all", help="Refresh every spendable VTXO.")] = False,
) -> None:
    """Refresh the VTXOs due now (or the given ones, or all)."""
    body: dict[str, Any] = {"all": all_vtxos}
    if vtxo:
        body["vtxos"] = vtxo
    _call(url, token, "POST", "refresh", body)


@admin_app.command()
def reconcile(
    url: Url = DEFAULT_URL,
    token: Token = "",
    apply: Annotated[bool, typer.Option("--apply", help="Write missing labels and credit missed payments.")] = False,
) -> None:
    """Compare the ledger with barkd's history; report-only unless --apply."""
    if apply:
        _call(url, token, "POST", "reconcile", {"apply": True})
    else:
        _call(url, token, "GET", "reconcile")


@admin_app.command()
def sweep(
    url: Url = DEFAULT_URL,
    token: Token = "",
    destination: Annotated[
        str | None, typer.Option(help="Bitcoin address, Lightning invoice/address/LNURL or Ark address.")
    ] = None,
    amount: Annotated[int | None, typer.Option("--amount", help="Sats to sweep (default: the surplus).", min=1)] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show the plan and fee; move nothing.")] = False,
) -> None:
    """Move revenue above the reserve (liabilities + margin) to the operator's destination."""
    body: dict[str, Any] = {"dry_run": dry_run}
    if destination:
        body["destination"] = destination
    if amount is not None:
        body["amount_sats"] = amount
    _call(url, token, "POST", "sweep", body)


webhooks_app = typer.Typer(help="Webhook deliveries: list, redeliver.", no_args_is_help=True)
admin_app.add_typer(webhooks_app, name="webhooks")


@webhooks_app.command("list")
def webhooks_list(
    url: Url = DEFAULT_URL,
    token: Token = "",
    limit: Annotated[int, typer.Option("--limit", help="How many, newest first.", min=1, max=500)] = 50,
    session: Annotated[int | None, typer.Option("--session", help="Only this session's deliveries.", min=1)] = None,
) -> None:
    """Recent webhook deliveries (operator and sessions), newest first."""
    query = f"webhooks?limit={limit}" + (f"&session_id={session}" if session is not None else "")
    _call(url, token, "GET", query)


@webhooks_app.command("redeliver")
def webhooks_redeliver(
    delivery_id: Annotated[int, typer.Argument(help="The delivery's id (see 'arkgate admin webhooks list').")],
    url: Url = DEFAULT_URL,
    token: Token = "",
) -> None:
    """Send a delivery again (same webhook-id, so receivers can drop a duplicate)."""
    _call(url, token, "POST", f"webhooks/{delivery_id}/redeliver", {})


@exit_app.command("start")
def exit_start(
    url: Url = DEFAULT_URL,
    token: Token = "",
    vtxo: Vtxos = None,
    force: Annotated[bool, typer.Option(help="Start even if on-chain funds can't pay the fees yet.")] = False,
    fee_rate: FeeRate = None,
) -> None:
    """Start emergency exits for every VTXO (or the given ones)."""
    body: dict[str, Any] = {"force": force}
    if vtxo:
        body["vtxos"] = vtxo
    if fee_rate is not None:
        body["fee_rate_sat_per_vb"] = fee_rate
    _call(url, token, "POST", "exits/start", body)


@exit_app.command("progress")
def exit_progress(url: Url = DEFAULT_URL, token: Token = "", fee_rate: FeeRate = None) -> None:
    """Progress every exit one step now."""
    body = {"fee_rate_sat_per_vb": fee_rate} if fee_rate is not None else {}
    _call(url, token, "POST", "exits/progress", body)


@exit_app.command("status")
def exit_status(
    vtxo_id: Annotated[str | None, typer.Argument(help="One VTXO (default: every exit).")] = None,
    url: Url = DEFAULT_URL,
    token: Token = "",
) -> None:
    """Each exit's state and history as barkd reports it."""
    _call(url, token, "GET", f"exits/{vtxo_id}" if vtxo_id else "exits")


@exit_app.command("claim")
def exit_claim(
    url: Url = DEFAULT_URL,
    token: Token = "",
    destination: Annotated[
        str | None, typer.Option(help="Bitcoin address (default: setting, else barkd's on-chain wallet).")
    ] = None,
    vtxo: Vtxos = None,
    fee_rate: FeeRate = None,
) -> None:
    """Sweep claimable exits on-chain."""
    body: dict[str, Any] = {}
    if destination:
        body["destination"] = destination
    if vtxo:
        body["vtxos"] = vtxo
    if fee_rate is not None:
        body["fee_rate_sat_per_vb"] = fee_rate
    _call(url, token, "POST", "exits/claim", body)
