"""ArkAPI's response wrapper, and the one place errors become responses."""

from __future__ import annotations

import json
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from arkgate.errors import ArkgateError, InputError

log = structlog.get_logger("arkgate.api")


def dumps(payload: Any) -> bytes:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False, default=str).encode()


def json_response(payload: Any, status_code: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(dumps(payload), status_code=status_code, media_type="application/json", headers=headers)


def error_body(
    error: ArkgateError,
    *,
    endpoint: str | None = None,
    response_ms: int | None = None,
    balance_sats: int | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "success": False,
        "error": error.message,
        "code": error.status,
        "error_code": error.code,
        "cost_sats": 0,
    }
    if endpoint is not None:
        body["endpoint"] = endpoint
    if response_ms is not None:
        body["response_ms"] = response_ms
    if balance_sats is not None:
        body["balance_remaining"] = balance_sats
    for key, value in error.details.items():
        body.setdefault(key, value)
    return body


def error_response(error: ArkgateError, **kwargs: Any) -> Response:
    headers = error.details.pop("_headers", None) if isinstance(error.details.get("_headers"), dict) else None
    return json_response(error_body(error, **kwargs), error.status, headers=headers)


def validation_message(exc: ValidationError | RequestValidationError) -> str:
    """One readable sentence per problem: 'domain: String should have at most 253 characters'."""
    parts = []
    for item in exc.errors():
        where = ".".join(str(p) for p in item.get("loc", ()) if p not in ("body", "query"))
        message = str(item.get("msg", "invalid value")).removeprefix("Value error, ")
        if item.get("type") == "json_invalid":
            parts.append("the request body is not valid JSON")
        elif item.get("type") in ("model_type", "model_attributes_type", "dict_type"):
            parts.append("the request body must be a JSON object")
        else:
            parts.append(f"{where}: {message}" if where else message)
    return "; ".join(dict.fromkeys(parts)) or "invalid request"


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ArkgateError)
    async def _arkgate(request: Request, exc: ArkgateError) -> Response:
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        return error_response(InputError(validation_message(exc)))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        body = {"success": False, "error": str(exc.detail), "code": exc.status_code, "cost_sats": 0}
        return JSONResponse(body, status_code=exc.status_code, headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.exception("request.failed", path=request.url.path)
        return json_response(
            {"success": False, "error": "internal error", "code": 500, "error_code": "internal_error", "cost_sats": 0},
            500,
        )
