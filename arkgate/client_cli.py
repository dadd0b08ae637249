"""``arkgate call <endpoint> --json '{...}'``: open a session, show the invoice, wait for payment, call.

The way an agent developer tries a gateway from a terminal: the Lightning invoice is
printed with a QR code to scan, the balance is polled until the payment lands, then the
endpoint is called and its JSON printed. ``--token`` reuses a funded session instead.
"""

from __future__ import annotations

import base64
import binascii
import json
import mimetypes
import sys
from pathlib import Path
from typing import Any, NoReturn

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
    save_dir: Path = typer.Option(
        Path("."), "--save-dir", help="Where images and other base64 results are saved (their paths are printed)."
    ),
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
            _fail(
                f"payment required: {_message(exc)}",
                "top the session up (POST /v1/sessions/topup) or leave out --token to open a new one",
                code=2,
            )
        except ArkgateAPIError as exc:
            cost = exc.body.get("cost_sats", 0) if isinstance(exc.body, dict) else 0
            _fail(f"HTTP {exc.status}: {_message(exc)} (charged {cost} sats)", _api_hint(exc.status))
        except httpx.HTTPError as exc:
            reason = "connection refused" if isinstance(exc, httpx.ConnectError) else type(exc).__name__
            _fail(
                f"cannot reach the gateway at {url}: {reason}",
                "start it (make demo, arkgate serve) or set --url / ARKGATE_URL",
            )
        except FundingTimeout as exc:
            _fail(str(exc), "the session token above stays valid: retry with --token", code=3)
    for path, size, mime in save_binaries(result, endpoint, save_dir):
        _err(f"saved {path} ({size} bytes, {mime})")
    typer.echo(json.dumps(result, indent=2, ensure_ascii=False))


def create_key(
    url: str = typer.Option("http://127.0.0.1:8080", "--url", envvar="ARKGATE_URL", help="Gateway base URL."),
    token: str = typer.Option(..., "--token", envvar="ARKGATE_TOKEN", help="The session's own token."),
    label: str = typer.Option("", "--label", help="A name for the key, shown on receipts."),
    cap: int | None = typer.Option(None, "--cap", help="The most the key may ever spend, in sats."),
    daily_cap: int | None = typer.Option(None, "--daily-cap", help="The most it may spend per UTC day, in sats."),
    allow: list[str] | None = typer.Option(
        None, "--allow", help="An endpoint id or category the key may call (repeat it; default: all)."
    ),
    expires_in: int | None = typer.Option(None, "--expires-in", help="Seconds until the key expires."),
) -> None:
    """Create a capped sub-key of a session and print it (its token is shown only this once)."""
    with ArkgateClient(url, token) as client:
        try:
            key = client.create_key(
                label=label, cap_sats=cap, daily_cap_sats=daily_cap, allowed=allow or None, expires_in=expires_in
            )
        except ArkgateAPIError as exc:
            _fail(f"HTTP {exc.status}: {_message(exc)}", _api_hint(exc.status))
        except httpx.HTTPError as exc:
            reason = "connection refused" if isinstance(exc, httpx.ConnectError) else type(exc).__name__
            _fail(
                f"cannot reach the gateway at {url}: {reason}",
                "start it (make demo, arkgate serve) or set --url / ARKGATE_URL",
            )
    _err(f"Sub-key token: {key['token']}  (shown once; hand it to the agent as its --token)")
    typer.echo(json.dumps(key, indent=2, ensure_ascii=False))


def withdraw(
    destination: str = typer.Argument(
        ..., help="A BOLT11 invoice, a BOLT12 offer, a Lightning address or an Ark address."
    ),
    token: str = typer.Option(..., "--token", envvar="ARKGATE_TOKEN", help="The session to pay out of."),
    amount: int | None = typer.Option(None, "--amount", help="Sats taken from the balance, fee included."),
    quote: bool = typer.Option(False, "--quote", help="Only show the fee; pay nothing."),
    close: bool = typer.Option(False, "--close", help="Withdraw everything and close the token."),
    url: str = typer.Option("http://127.0.0.1:8080", "--url", envvar="ARKGATE_URL", help="Gateway base URL."),
) -> None:
    """Pay a session's balance out (some of it, or all of it with --close)."""
    with ArkgateClient(url, token) as client:
        try:
            if close:
                result = client.close_session(destination)
            else:
                result = client.withdraw(destination, amount, quote_only=quote)
        except ArkgateAPIError as exc:
            _fail(f"HTTP {exc.status}: {_message(exc)} (nothing was paid out)", _api_hint(exc.status))
        except httpx.HTTPError as exc:
            reason = "connection refused" if isinstance(exc, httpx.ConnectError) else type(exc).__name__
            _fail(f"cannot reach the gateway at {url}: {reason}", "start it or set --url / ARKGATE_URL")
    typer.echo(json.dumps(result, indent=2, ensure_ascii=False))


def _fail(message: str, hint: str, *, code: int = 1) -> NoReturn:
    _err(f"Error: {message}. Hint: {hint}")
    raise typer.Exit(code)


def _message(exc: ArkgateAPIError) -> str:
    error = exc.body.get("error") if isinstance(exc.body, dict) else None
    return str(error or exc.body)


def _api_hint(status: int) -> str:
    return {
        400: "check --json against the endpoint's fields (GET /openapi.json)",
        401: "the token is unknown or expired: leave out --token to open a new session",
        403: "a sub-key cannot do this: use the session's own token",
        404: "see GET /v1/catalog for endpoint ids",
        429: "slow down and retry",
    }.get(status, "retry later; a failed call is refunded")


_MAGIC = ((b"\x89PNG", "image/png"), (b"\xff\xd8", "image/jpeg"), (b"GIF8", "image/gif"), (b"%PDF", "application/pdf"))


def save_binaries(result: Any, endpoint: str, directory: Path) -> list[tuple[Path, int, str]]:
    """Write every base64 value of ``result`` (``*base64`` fields, data: URIs) to a file in ``directory``
    and put the file's path in its place, so a terminal never shows a page of base64."""
    saved: dict[bytes, Path] = {}
    report: list[tuple[Path, int, str]] = []

    def decode(key: str, value: str, siblings: dict[str, Any]) -> tuple[bytes, str] | None:
        mime = str(siblings.get("mime_type") or "")
        if value.startswith("data:") and ";base64," in value:
            mime, _, value = value[5:].partition(";base64,")
        elif not key.endswith(("base64", "b64", "b64_json")):
            return None
        try:
            blob = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            return None
        if not mime:
            mime = next((kind for magic, kind in _MAGIC if blob.startswith(magic)), "application/octet-stream")
        return blob, mime

    def store(blob: bytes, mime: str) -> Path:
        if blob in saved:
            return saved[blob]
        extension = mimetypes.guess_extension(mime) or ".bin"
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"{endpoint}{extension}"
        number = 1
        while path.exists():
            number += 1
            path = directory / f"{endpoint}-{number}{extension}"
        path.write_bytes(blob)
        saved[blob] = path
        report.append((path, len(blob), mime))
        return path

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                found = decode(key, value, node) if isinstance(value, str) else None
                if found is not None:
                    node[key] = f"saved to {store(*found)}"
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(result)
    return report


def _default_size(client: ArkgateClient) -> int:
    try:
        return int(client.manifest()["funding"]["default_session_sats"])
    except (ArkgateAPIError, httpx.HTTPError, KeyError, TypeError, ValueError):
        return 0
