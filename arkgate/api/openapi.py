"""``GET /openapi.json``: OpenAPI 3.1, generated from the catalog registry when first asked for.

The free routes (health, catalog, sessions, and whatever other parts add) come from
FastAPI's own generator and are then made honest: FastAPI's 422 becomes the 400 error
envelope arkgate really answers, bearer security is declared where a token is needed,
and every error status the route can give is listed. The paid routes are written here
from each ``Endpoint``: ``x-cost-sats``, category, request schema (query parameters for
GET), the ArkAPI envelope with ``data`` typed by the response model, examples, the
metered rate where usage decides the price, and 400/401/402/404/409/429/502/504 answers (and 503
when the endpoint is unavailable on this gateway).
"""

from __future__ import annotations

import copy
import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import Response
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from arkgate.api.availability import availability_fields, unavailable_note
from arkgate.catalog.registry import Endpoint
from arkgate.runtime import Runtime
from arkgate.services.envelope import json_response

REF = "#/components/schemas/{model}"
ERROR_STATUSES: dict[str, str] = {
    "400": "Bad input; nothing was charged.",
    "401": "Missing, unknown or invalid session token (Bearer or L402).",
    "402": "Payment required: the body says how to pay (a new session's invoice, or a top-up invoice).",
    "403": "Forbidden.",
    "404": "Not found. On a paid call: the domain does not exist (domain_not_found) or the record asked for "
    "is unknown; nothing was charged.",
    "409": "A request with this Idempotency-Key is still being processed.",
    "429": "Rate limited; see Retry-After.",
    "502": "The upstream service failed; the call was refunded.",
    "503": "The payment backend is unavailable; retry shortly.",
    "504": "The call ran out of time; it was refunded.",
}
PAID_ERRORS = ("400", "401", "402", "404", "409", "429", "502", "504")

# Free routes whose behaviour this module knows: extra statuses and whether a token is needed.
KNOWN_ROUTES: dict[tuple[str, str], tuple[tuple[str, ...], bool]] = {
    ("get", "/health"): ((), False),
    ("get", "/v1/catalog"): ((), False),
    ("post", "/v1/sessions"): (("400", "429", "503"), False),
    ("post", "/v1/sessions/topup"): (("400", "401", "429", "503"), True),
    ("get", "/v1/balance"): (("401",), True),
    ("get", "/v1/sessions/me/payments"): (("401",), True),
    ("get", "/v1/sessions/me/calls"): (("400", "401"), True),
    ("get", "/v1/quote"): (("400", "404"), False),
}


def operation_id(endpoint: Endpoint) -> str:
    head, *rest = endpoint.id.split("-")
    return head + "".join(part.capitalize() for part in rest)


def install(app: FastAPI, rt: Runtime) -> None:
    """Replace FastAPI's cached ``/openapi.json`` with the registry-built document."""
    app.router.routes[:] = [r for r in app.router.routes if getattr(r, "path", None) != app.openapi_url]

    def build() -> dict[str, Any]:
        return build_openapi(app, rt, rt.settings.public_url.rstrip("/") or None)

    app.openapi = build  # type: ignore[method-assign]
    # The registry and settings are fixed once the app runs, so the document is built on the first
    # request (after every part has added its routes) and reused; only ``servers`` follows the request.
    built: dict[str, Any] = {}

    async def openapi_json(request: Request) -> Response:
        if "doc" not in built:
            built["doc"] = build_openapi(app, rt, None)
        doc = dict(built["doc"])
        doc["servers"] = [{"url": rt.base_url(request), "description": "this gateway"}]
        return json_response(doc)

    app.add_api_route("/openapi.json", openapi_json, methods=["GET"], include_in_schema=False)


def build_openapi(app: FastAPI, rt: Runtime, base_url: str | None) -> dict[str, Any]:
    paid_paths = {endpoint.path for endpoint in rt.catalog}
    free_routes = [r for r in app.routes if getattr(r, "path", None) not in paid_paths]
    doc = get_openapi(
        title="arkgate",
        version=app.version,
        openapi_version="3.1.0",
        summary="Pay-per-call APIs for agents, paid per call in sats over Lightning or Ark",
        description=_description(rt),
        routes=free_routes,
    )
    components = doc.setdefault("components", {})
    schemas: dict[str, Any] = components.setdefault("schemas", {})
    schemas.update(_envelope_schemas())
    components["responses"] = _error_responses()
    components["securitySchemes"] = {
        "BearerAuth": {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "ak_ session token",
            "description": "The token from POST /v1/sessions (or from a 402 answer), once its session is paid.",
        },
        "L402": {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "'L402 <macaroon>:<preimage>' (or legacy 'LSAT ...'): the macaroon from a 402 "
            "answer's WWW-Authenticate header and the preimage of its paid invoice.",
        },
    }
    for path, operations in doc.get("paths", {}).items():
        for method, operation in operations.items():
            _make_honest(method, path, operation, rt)
    model_schemas = _model_schemas(rt, schemas)
    paths: dict[str, Any] = doc.setdefault("paths", {})
    for endpoint in rt.catalog:
        paths[endpoint.path] = {endpoint.method.lower(): _paid_operation(endpoint, rt, model_schemas, schemas)}
    _drop_unused(schemas, doc)
    doc["tags"] = _tags(rt, doc)
    if base_url:
        doc["servers"] = [{"url": base_url, "description": "this gateway"}]
    doc["x-payment"] = {
        "network": rt.settings.network,
        "mode": rt.settings.payment_mode,
        "methods": ["lightning", "ark"] if rt.settings.payment_mode == "barkd" else ["free"],
        "unit": "sats",
        "cost_field": "x-cost-sats",
        "session_create": "POST /v1/sessions",
        "l402": rt.settings.l402_enabled and rt.settings.payment_mode == "barkd",
    }
    return doc


def _description(rt: Runtime) -> str:
    return (
        f"{len(rt.catalog)} paid endpoints, each priced in sats (`x-cost-sats`); an operation marked "
        "`x-available: false` cannot be called on this gateway (503, nothing charged). Open a prepaid session with "
        "`POST /v1/sessions`, pay its Lightning invoice or send sats to its Ark address, then call "
        "`/api/<id>` with `Authorization: Bearer <token>`; every call's cost is debited from the session and "
        "refunded if the call fails. A call without a usable token answers 402 with everything needed to pay "
        "(including an L402 challenge). The same catalog is served as `/v1/catalog`, "
        "`/.well-known/arkgate.json`, `/llms.txt` and MCP tools at `/mcp`."
    )


def _envelope_schemas() -> dict[str, Any]:
    error = {
        "type": "object",
        "description": "ArkAPI's error envelope; nothing is charged on an error.",
        "required": ["success", "error", "code", "cost_sats"],
        "properties": {
            "success": {"type": "boolean", "const": False},
            "error": {"type": "string", "description": "What went wrong, for a person or an agent."},
            "code": {"type": "integer", "description": "The HTTP status."},
            "error_code": {"type": "string", "description": "Machine-readable reason, e.g. invalid_input."},
            "cost_sats": {"type": "integer", "const": 0},
            "endpoint": {"type": "string"},
            "response_ms": {"type": "integer"},
            "balance_remaining": {"type": "integer"},
        },
    }
    payment = {
        "type": "object",
        "description": "How to pay: an invoice and/or an Ark address for a new session or a top-up.",
        "properties": {
            "token": {"type": "string", "description": "A new session's bearer token (tokenless calls only)."},
            "amount_sats": {"type": "integer"},
            "lightning_invoice": {"type": ["string", "null"]},
            "payment_hash": {"type": ["string", "null"]},
            "invoice_expires_at": {"type": ["string", "null"]},
            "ark_address": {"type": ["string", "null"]},
            "bip321": {"type": ["string", "null"]},
            "macaroon": {
                "type": ["string", "null"],
                "description": "L402 macaroon bound to lightning_invoice; send 'L402 <macaroon>:<preimage>'.",
            },
            "status": {"type": "string"},
            "expires_in": {"type": "integer"},
            "balance_url": {"type": "string"},
            "note": {"type": "string"},
        },
    }
    payment_required = {
        "allOf": [{"$ref": REF.format(model="ErrorEnvelope")}],
        "type": "object",
        "properties": {
            "price_sats": {"type": "integer", "description": "What this call costs (reserved, if metered)."},
            "pricing": {"type": "object"},
            "balance_sats": {"type": "integer"},
            "shortfall_sats": {"type": "integer"},
            "payment": {"anyOf": [{"$ref": REF.format(model="PaymentInstructions")}, {"type": "null"}]},
            "how_to_pay": {"type": "array", "items": {"type": "string"}},
            "retry_after_s": {"type": "integer"},
        },
    }
    return {
        "ErrorEnvelope": error,
        "PaymentInstructions": payment,
        "PaymentRequired": payment_required,
    }


def _error_responses() -> dict[str, Any]:
    responses: dict[str, Any] = {}
    for status, text in ERROR_STATUSES.items():
        schema = "PaymentRequired" if status == "402" else "ErrorEnvelope"
        response: dict[str, Any] = {
            "description": text,
            "content": {"application/json": {"schema": {"$ref": REF.format(model=schema)}}},
        }
        if status in ("401", "402"):
            response["headers"] = {
                "WWW-Authenticate": {
                    "description": 'Bearer, and on 402 also \'L402 macaroon="...", invoice="..."\'.',
                    "schema": {"type": "string"},
                }
            }
        if status in ("429", "503"):
            response["headers"] = {"Retry-After": {"description": "Seconds to wait.", "schema": {"type": "string"}}}
        responses[f"Error{status}"] = response
    return responses


def _error_ref(status: str) -> dict[str, Any]:
    return {"$ref": f"#/components/responses/Error{status}"}


def _make_honest(method: str, path: str, operation: dict[str, Any], rt: Runtime) -> None:
    responses: dict[str, Any] = operation.setdefault("responses", {})
    had_validation = responses.pop("422", None) is not None
    statuses, needs_token = KNOWN_ROUTES.get((method, path), ((), False))
    for status in statuses:
        responses.setdefault(status, _error_ref(status))
    if had_validation:
        responses.setdefault("400", _error_ref("400"))
    if needs_token:
        operation["security"] = [{"BearerAuth": []}]
    if (method, path) == ("get", "/health"):
        degraded: dict[str, Any] = {"description": "The database is unreachable (barkd unreachable: 200, degraded)."}
        if "content" in responses.get("200", {}):
            degraded["content"] = responses["200"]["content"]
        responses.setdefault("503", degraded)
    if path in ("/v1/sessions", "/v1/sessions/topup") and method == "post":
        _amount_body(operation, rt)
    if (method, path) not in KNOWN_ROUTES:
        # Routes other parts add: any error they give uses the same envelope.
        responses["default"] = {
            "description": "An error, in the error envelope.",
            "content": {"application/json": {"schema": {"$ref": REF.format(model="ErrorEnvelope")}}},
        }


def _amount_body(operation: dict[str, Any], rt: Runtime) -> None:
    """The session routes read amount_sats by hand; describe what they accept."""
    settings = rt.settings
    operation["requestBody"] = {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["amount_sats"],
                    "properties": {
                        "amount_sats": {
                            "type": "integer",
                            "minimum": settings.min_session_sats,
                            "maximum": settings.max_session_sats,
                            "description": "How many sats to fund the session with.",
                        }
                    },
                },
                "example": {"amount_sats": settings.default_session_sats},
            }
        },
    }


def _model_schemas(rt: Runtime, existing: dict[str, Any]) -> dict[tuple[type[BaseModel], str], dict[str, Any]]:
    """JSON schemas of every request/response model, their nested definitions put in components."""
    wanted: list[tuple[type[BaseModel], Any]] = []
    for endpoint in rt.catalog:
        wanted.append((endpoint.request_model, "validation"))
        if endpoint.response_model is not None:
            wanted.append((endpoint.response_model, "serialization"))
    wanted = list(dict.fromkeys(wanted))
    if not wanted:
        return {}
    generated, defs = models_json_schema(wanted, ref_template=REF)
    mapping: dict[tuple[type[BaseModel], str], dict[str, Any]] = {
        (model, mode): schema
        for (model, mode), schema in generated.items()
        if isinstance(model, type) and issubclass(model, BaseModel)
    }
    definitions: dict[str, Any] = defs.get("$defs", {})
    renames = {
        name: f"Catalog{name}" for name, schema in definitions.items() if name in existing and existing[name] != schema
    }
    if renames:
        definitions = {renames.get(n, n): _rename_refs(s, renames) for n, s in definitions.items()}
        mapping = {k: _rename_refs(v, renames) for k, v in mapping.items()}
    existing.update(definitions)
    return mapping


def _rename_refs(node: Any, renames: dict[str, str]) -> Any:
    if isinstance(node, dict):
        out = {k: _rename_refs(v, renames) for k, v in node.items()}
        ref = out.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
            name = ref.rsplit("/", 1)[1]
            if name in renames:
                out["$ref"] = REF.format(model=renames[name])
        return out
    if isinstance(node, list):
        return [_rename_refs(v, renames) for v in node]
    return node


def _resolve(schema: dict[str, Any], schemas: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
        target: dict[str, Any] = schemas.get(ref.rsplit("/", 1)[1], {})
        return target
    return schema


def _paid_operation(
    endpoint: Endpoint,
    rt: Runtime,
    model_schemas: dict[tuple[type[BaseModel], str], dict[str, Any]],
    schemas: dict[str, Any],
) -> dict[str, Any]:
    settings = rt.settings
    price = endpoint.listed_price_sats(settings)
    min_price = endpoint.min_price_sats(settings)
    max_price = endpoint.max_price_sats(settings)
    if endpoint.metered is not None:
        cost_text = f"Cost: {min_price} to {max_price} sats, metered: {endpoint.metered.rate(settings)}"
    else:
        cost_text = f"Cost: {price} sat{'s' if price != 1 else ''} per call."
    operation: dict[str, Any] = {
        "tags": [endpoint.category],
        "summary": endpoint.summary,
        "description": f"{endpoint.description}\n\n{cost_text}",
        "operationId": operation_id(endpoint),
        "security": [{"BearerAuth": []}, {"L402": []}],
        "x-cost-sats": price,
        "x-min-cost-sats": min_price,
        "x-max-cost-sats": max_price,
        "x-category": endpoint.category,
    }
    note = unavailable_note(endpoint, rt)
    if note is not None:
        operation["description"] = f"**{note}**\n\n{operation['description']}"
        operation["x-available"] = False
        operation["x-unavailable-reason"] = availability_fields(endpoint, rt)["unavailable_reason"]
    if endpoint.metered is not None:
        operation["x-pricing"] = {
            "type": "metered",
            "minimum_sats": min_price,
            "max_cost_sats": max_price,
            "rate": endpoint.metered.rate(settings),
        }
    request_schema = model_schemas.get((endpoint.request_model, "validation"), {"type": "object"})
    parameters: list[dict[str, Any]] = [
        {
            "name": "Idempotency-Key",
            "in": "header",
            "required": False,
            "description": "Retries with the same key are charged once and get the first answer back.",
            "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[!-~]+$"},
        }
    ]
    if endpoint.method == "GET":
        parameters.extend(_query_parameters(_resolve(request_schema, schemas)))
    else:
        body: dict[str, Any] = {"schema": request_schema}
        if endpoint.example is not None:
            body["example"] = endpoint.example
        operation["requestBody"] = {"required": True, "content": {"application/json": body}}
    operation["parameters"] = parameters
    data_schema = (
        model_schemas.get((endpoint.response_model, "serialization"), {}) if endpoint.response_model is not None else {}
    )
    success: dict[str, Any] = {
        "type": "object",
        "required": ["success", "data", "cost_sats", "balance_remaining", "response_ms", "endpoint"],
        "properties": {
            "success": {"type": "boolean", "const": True},
            "data": copy.deepcopy(data_schema),
            "cost_sats": {"type": "integer", "minimum": 0, "maximum": max_price},
            "balance_remaining": {"type": "integer", "minimum": 0},
            "response_ms": {"type": "integer", "minimum": 0},
            "endpoint": {"type": "string", "const": endpoint.path},
            "call_id": {"type": "string"},
            "notes": {"type": "array", "items": {"type": "string"}},
        },
    }
    content: dict[str, Any] = {"application/json": {"schema": success}}
    if "stream" in endpoint.request_model.model_fields:
        content["text/event-stream"] = {
            "schema": {"type": "string", "description": "Server-sent events when the request asks to stream."}
        }
    operation["responses"] = {
        "200": {"description": f"The result, in ArkAPI's envelope. {cost_text}", "content": content},
        **{status: _error_ref(status) for status in PAID_ERRORS},
    }
    if note is not None:
        operation["responses"]["503"] = {
            "description": f"{note} (error_code endpoint_unavailable)",
            "content": {"application/json": {"schema": {"$ref": REF.format(model="ErrorEnvelope")}}},
        }
    return operation


def _query_parameters(schema: dict[str, Any]) -> list[dict[str, Any]]:
    required = set(schema.get("required", []))
    parameters = []
    for name, prop in schema.get("properties", {}).items():
        prop = _without_null(dict(prop))
        description = prop.pop("description", None)
        prop.pop("title", None)
        parameter: dict[str, Any] = {"name": name, "in": "query", "required": name in required, "schema": prop}
        if description:
            parameter["description"] = description
        parameters.append(parameter)
    return parameters


def _without_null(prop: dict[str, Any]) -> dict[str, Any]:
    """A query string cannot carry null: an optional parameter is simply left out."""
    options = prop.get("anyOf")
    if isinstance(options, list) and {"type": "null"} in options:
        rest = [o for o in options if o != {"type": "null"}]
        prop.pop("anyOf")
        if len(rest) == 1:
            prop = {**rest[0], **prop}
        else:
            prop["anyOf"] = rest
        if prop.get("default", 0) is None:
            prop.pop("default")
    return prop


def _tags(rt: Runtime, doc: dict[str, Any]) -> list[dict[str, str]]:
    tags = [{"name": "public", "description": "Discovery: health, catalog, manifests, quotes."}]
    tags.append({"name": "session", "description": "Create, fund and inspect prepaid sessions."})
    for category, endpoints in rt.catalog.categories().items():
        names = ", ".join(e.id for e in endpoints)
        tags.append({"name": category, "description": f"Paid {category} endpoints: {names}."})
    seen = {t["name"] for t in tags}
    for operations in doc.get("paths", {}).values():
        for operation in operations.values():
            for tag in operation.get("tags", []):
                if tag not in seen:
                    seen.add(tag)
                    tags.append({"name": tag, "description": f"{tag} routes."})
    return tags


def _drop_unused(schemas: dict[str, Any], doc: dict[str, Any]) -> None:
    """FastAPI's validation-error schemas are unused once 422 is replaced; drop any unreferenced leftovers."""
    for name in ("HTTPValidationError", "ValidationError"):
        if name in schemas:
            text = _refs_text(doc, skip=name)
            if f"#/components/schemas/{name}" not in text:
                del schemas[name]


def _refs_text(doc: dict[str, Any], *, skip: str) -> str:
    trimmed = dict(doc)
    components = dict(trimmed.get("components", {}))
    components["schemas"] = {k: v for k, v in components.get("schemas", {}).items() if k != skip}
    trimmed["components"] = components
    return re.sub(r"\s+", "", repr(trimmed))
