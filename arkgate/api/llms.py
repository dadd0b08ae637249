"""``/llms.txt`` and ``/llms-full.txt``: the catalog as Markdown for language models, from the registry."""

from __future__ import annotations

import json
import shlex
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse

from arkgate.api.availability import unavailable_note
from arkgate.api.manifests import price_text
from arkgate.catalog.registry import Endpoint
from arkgate.runtime import Runtime, runtime

router = APIRouter(tags=["public"])

MARKDOWN = "text/plain; charset=utf-8"


def _how_to_pay(rt: Runtime, base: str) -> list[str]:
    settings = rt.settings
    amount = settings.default_session_sats
    lines = [
        "## How to use it",
        "",
        f"1. Create a session: `curl -s -X POST {base}/v1/sessions -H 'Content-Type: application/json' "
        f"-d '{{\"amount_sats\": {amount}}}'`. The answer holds `token` (keep it secret) and `funding` "
        "(`lightning_invoice`, `ark_address`, `bip321`).",
    ]
    if settings.payment_mode == "barkd":
        lines.append(
            "2. Pay `funding.lightning_invoice` with any Lightning wallet, or send sats to `funding.ark_address` "
            f"(any amount sent there is credited; network: {settings.network})."
        )
    else:
        lines.append("2. This gateway runs in free mode: the session is funded at once with test sats.")
    lines += [
        f"3. Wait until `curl -s {base}/v1/balance -H 'Authorization: Bearer <token>'` shows `balance_sats` > 0.",
        "4. Call endpoints with `Authorization: Bearer <token>`; each answer is "
        '`{"success": true, "data": ..., "cost_sats": ..., "balance_remaining": ..., "response_ms": ..., '
        '"endpoint": ...}`. A failed call (status 400, 502, 504) costs nothing.',
        f'5. Top up the same session with `POST {base}/v1/sessions/topup` `{{"amount_sats": N}}` (bearer token), '
        "or send more sats to its Ark address.",
        f'6. Hand another agent a capped sub-key: `POST {base}/v1/sessions/me/keys` `{{"label": "...", '
        '"cap_sats": N, "daily_cap_sats": N, "allowed": ["<endpoint id or category>"], "expires_in": seconds}` '
        "(bearer token) returns a token that spends from this session within those limits and can do nothing "
        "else; list, inspect or revoke it under the same path.",
        "",
        "A call without a usable token answers HTTP 402 with the price and a way to pay: a new session's token, "
        "invoice and Ark address (or a top-up invoice for a short session), and "
        '`WWW-Authenticate: L402 macaroon="...", invoice="..."`: L402 clients pay the invoice and retry with '
        "`Authorization: L402 <macaroon>:<preimage>`.",
        "",
        f"Price quotes: `{base}/v1/quote?endpoint=<id>&calls=<n>`. MCP (streamable HTTP): `{base}/mcp/` "
        "(one tool per endpoint plus create_session, session_funding, check_balance, top_up, create_key).",
    ]
    return lines


def _links(base: str) -> list[str]:
    return [
        "## Machine-readable",
        "",
        f"- [OpenAPI 3.1]({base}/openapi.json): every operation with `x-cost-sats`",
        f"- [Catalog]({base}/v1/catalog)",
        f"- [Manifest]({base}/.well-known/arkgate.json) (also at /.well-known/arkapi.json)",
        f"- [Full reference for LLMs]({base}/llms-full.txt)",
    ]


def _header(rt: Runtime) -> list[str]:
    return [
        "# arkgate",
        "",
        f"> Pay-per-call APIs for agents: {len(rt.catalog.available())} endpoints priced in sats, paid from a "
        f"prepaid session funded over Lightning or Ark ({rt.settings.network}). No account, no API key.",
        "",
        *_unavailable_summary(rt),
    ]


def _unavailable_summary(rt: Runtime) -> list[str]:
    missing = len(rt.catalog) - len(rt.catalog.available())
    if not missing:
        return []
    return [
        f"{missing} more endpoint{'s are' if missing != 1 else ' is'} listed but not available on this gateway "
        "(marked below): calling one answers 503 `endpoint_unavailable` and costs nothing.",
        "",
    ]


def llms_txt(rt: Runtime, base: str) -> str:
    lines = _header(rt) + _how_to_pay(rt, base) + ["", "## Endpoints", ""]
    for category, endpoints in rt.catalog.categories().items():
        lines.append(f"### {category}")
        lines.append("")
        for endpoint in endpoints:
            price = price_text(endpoint, rt)
            note = unavailable_note(endpoint, rt)
            lines.append(
                f"- `{endpoint.id}` ({endpoint.method} {endpoint.path}): {endpoint.summary}. "
                f"{price}{'' if price.endswith('.') else '.'}" + (f" **{note}**" if note else "")
            )
        lines.append("")
    return "\n".join([*lines, *_links(base), ""])


def curl_example(endpoint: Endpoint, base: str) -> str:
    example = endpoint.example or {}
    auth = "-H 'Authorization: Bearer <token>'"
    if endpoint.method == "GET":
        query = f"?{urlencode({k: _query_value(v) for k, v in example.items()})}" if example else ""
        return f"curl -s {shlex.quote(base + endpoint.path + query)} {auth}"
    body = shlex.quote(json.dumps(example, ensure_ascii=False))
    return f"curl -s -X POST {base}{endpoint.path} {auth} -H 'Content-Type: application/json' -d {body}"


def _query_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _field_lines(endpoint: Endpoint) -> list[str]:
    schema = endpoint.request_model.model_json_schema()
    required = set(schema.get("required", []))
    lines = []
    for name, prop in schema.get("properties", {}).items():
        kind = _type_text(prop, schema)
        facts = [kind, "required" if name in required else "optional"]
        for key, label in (
            ("minLength", "min length"),
            ("maxLength", "max length"),
            ("minimum", "min"),
            ("maximum", "max"),
        ):
            if key in prop:
                facts.append(f"{label} {prop[key]}")
        if "default" in prop and prop["default"] is not None:
            facts.append(f"default {json.dumps(prop['default'])}")
        description = prop.get("description", "")
        lines.append(f"  - `{name}` ({', '.join(facts)}){': ' + description if description else ''}")
    return lines or ["  - (no fields)"]


def _type_text(prop: dict[str, Any], root: dict[str, Any]) -> str:
    if "enum" in prop:
        return "one of " + ", ".join(json.dumps(v) for v in prop["enum"])
    if "const" in prop:
        return json.dumps(prop["const"])
    if "anyOf" in prop:
        return " or ".join(_type_text(p, root) for p in prop["anyOf"])
    if "$ref" in prop:
        target = root.get("$defs", {}).get(prop["$ref"].rsplit("/", 1)[1], {})
        return _type_text(target, root) if target else "object"
    if prop.get("type") == "array":
        return f"list of {_type_text(prop.get('items', {}), root)}"
    return str(prop.get("type", "any"))


def llms_full_txt(rt: Runtime, base: str) -> str:
    lines = _header(rt) + _how_to_pay(rt, base) + ["", "## Endpoints", ""]
    for endpoint in rt.catalog:
        lines += [
            f"### {endpoint.id}",
            "",
            f"{endpoint.summary}. {endpoint.description}",
            "",
            f"- Price: {price_text(endpoint, rt)}",
            *([f"- Availability: **{note}**"] if (note := unavailable_note(endpoint, rt)) else []),
            f"- Request: {endpoint.method} {base}{endpoint.path}"
            + (" (query parameters)" if endpoint.method == "GET" else " (JSON body)"),
            f"- Category: {endpoint.category}",
            "- Fields:",
            *_field_lines(endpoint),
        ]
        if endpoint.response_model is not None:
            fields = ", ".join(f"`{name}`" for name in endpoint.response_model.model_fields)
            lines.append(f"- Result (`data`): {fields}")
        lines += ["", "```sh", curl_example(endpoint, base), "```", ""]
    return "\n".join([*lines, *_links(base), ""])


@router.get("/llms.txt", response_class=PlainTextResponse, summary="The catalog for language models (short)")
async def get_llms_txt(request: Request) -> PlainTextResponse:
    rt = runtime(request)
    return PlainTextResponse(llms_txt(rt, rt.base_url(request)), media_type=MARKDOWN)


@router.get("/llms-full.txt", response_class=PlainTextResponse, summary="The catalog for language models (full)")
async def get_llms_full_txt(request: Request) -> PlainTextResponse:
    rt = runtime(request)
    return PlainTextResponse(llms_full_txt(rt, rt.base_url(request)), media_type=MARKDOWN)
