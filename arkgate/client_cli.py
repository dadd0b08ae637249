"""``arkgate call <endpoint> --json '{...}'``: open a session, show the invoice, wait for payment, call.

The way an agent developer tries a gateway from a terminal: the Lightning invoice is
printed with a QR code to scan, the balance is polled until the payment lands, then the
endpoint is called and its JSON printed. ``--token`` reuses a funded session instead.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import httpx
import segno
import typer

from arkgate.client import ArkgateAPIError, ArkgateClient, FundingTimeout, PaymentRequired


def _err(message: str) -> None:
    typer.echo(message, err=True)


def _show_funding(created: dict[str, Any]) -> None:
    funding = created.get("funding") or {}
    invoice = funding.get("lightning_invoice")
    _err(f"Session token: {created['token']}  (reuse it with --token)")
    if invoice:
        _err(f"Pay {created['amount_sats']} sats to this Lightning invoice:\n{invoice}\n")
        # Upper case keeps the QR code in alphanumeric mode: smaller and easier to scan.
        qr = segno.make(f"LIGHTNING:{invoice.upper()}", error="l")
        qr.terminal(out=sys.stderr, compact=True)
    if funding.get("ark_address"):
        _err(f"or send sats over Ark to: {funding['ark_address']}")
    if not invoice and not funding.get("ark_address"):
        _err("This gateway funds sessions at once (free mode).")


def call(
    endpoint: str = typer.Argument(..., help="Endpoint id, e.g. qr-generate (see /v1/catalog)."),
    json_body: str = typer.Option("{}", "--json", help="The request as a JSON object."),
    url: str = typer.Option("http://127.0.0.1:8080", "--url", envvar="ARKGATE_URL", help="Gateway base URL."),
    token: str | None = typer.Option(None, "--token", envvar="ARKGATE_TOKEN", help="Use this funded session."),
    amount: int = typer.Option(0, "--amount", help="Session size in sats (default: the gateway's, or the price)."),
    wait: float = typer.Option(900.0, "--wait", help="Seconds to wait for the payment."),
) -> None:
    """Call a paid endpoint, creating and funding a session first when no --token is given."""
    try:
        payload = json.loads(json_body)
    except ValueError as exc:
        raise typer.BadParameter(f"--json is not valid JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise typer.BadParameter("--json must be a JSON object")
    with ArkgateClient(url, token) as client:
        try:
            if token is None:
                quote = client.quote(endpoint)
                size = amount or max(int(quote["session_sats"]), _default_size(client))
                created = client.create_session(size)
                _show_funding(created)
                _err("Waiting for the payment...")
                balance = client.wait_for_funding(int(quote["max_price_sats"]), timeout_s=wait)
                _err(f"Funded: {balance} sats.")
            result = client.call(endpoint, payload)
        except PaymentRequired as exc:
            _err(f"Payment required: {exc.body.get('error') if isinstance(exc.body, dict) else exc.body}")
            if exc.payment:
                _err(json.dumps(exc.payment, indent=2))
            raise typer.Exit(2) from None
        except ArkgateAPIError as exc:
            _err(str(exc))
            typer.echo(json.dumps(exc.body, indent=2, ensure_ascii=False))
            raise typer.Exit(1) from None
        except httpx.HTTPError as exc:
            _err(f"cannot reach the gateway at {url}: {exc}")
            raise typer.Exit(1) from None
        except FundingTimeout as exc:
            _err(f"{exc}; the session token above stays valid: retry with --token")
            raise typer.Exit(3) from None
    typer.echo(json.dumps(result, indent=2, ensure_ascii=False))


def _default_size(client: ArkgateClient) -> int:
    try:
        return int(client.manifest()["funding"]["default_session_sats"])
    except (ArkgateAPIError, httpx.HTTPError, KeyError, TypeError, ValueError):
        return 0
