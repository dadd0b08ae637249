"""A small router with axum's edge behaviour, and request-body parsing with its rejections.

Starlette's router answers 404/405 with its own bodies; barkd answers an unknown path with a bare
JSON string holding the *request body* and a wrong method with an empty 405, so routing is done
here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from arkgate.simulator.errors import PlainTextError

Handler = Callable[[Request], Awaitable[Response]]

V1 = "/api/v1"  # barkd's REST prefix


def json_response(body: Any, status: int = 200) -> Response:
    return Response(json.dumps(body), status_code=status, media_type="application/json")


def empty_ok() -> Response:
    """barkd's 200 with no body at all (sync, receive cancel, metadata patch)."""
    return Response(b"", status_code=200)


@dataclass(frozen=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    handler: Handler
    auth: bool
    template: str


def compile_path(template: str) -> re.Pattern[str]:
    regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", template)
    return re.compile(f"^{regex}$")


class Router:
    """Routes matched on the exact path; trailing slashes are different paths, as in axum."""

    def __init__(self) -> None:
        self.routes: list[Route] = []

    def add(self, method: str, template: str, handler: Handler, *, auth: bool = True) -> None:
        self.routes.append(Route(method, compile_path(template), handler, auth, template))

    def route(self, method: str, template: str, *, auth: bool = True) -> Callable[[Handler], Handler]:
        """:meth:`add` as a decorator; the handler is returned unchanged."""

        def register(handler: Handler) -> Handler:
            self.add(method, template, handler, auth=auth)
            return handler

        return register

    def match(self, method: str, path: str) -> tuple[Route | None, dict[str, str], bool]:
        """(route, path params, path exists with another method)."""
        path_exists = False
        for route in self.routes:
            found = route.pattern.match(path)
            if found is None:
                continue
            if route.method == method:
                return route, found.groupdict(), True
            path_exists = True
        return None, {}, path_exists


@dataclass(frozen=True)
class Field:
    """One JSON body field: its name, accepted Python types, whether it must be present/non-null."""

    name: str
    types: tuple[type, ...]
    required: bool = False


def _type_ok(value: Any, types: tuple[type, ...]) -> bool:
    if isinstance(value, bool) and bool not in types:
        return False
    if int in types and isinstance(value, int) and not isinstance(value, bool) and value < 0:
        return False  # u64 fields
    return isinstance(value, types)


async def parse_json_body(request: Request, fields: list[Field], *, any_json: bool = False) -> Any:
    """Extract a JSON body like axum's ``Json<T>``: 415, then 400, then 422, all plain text."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if not (
        content_type == "application/json"
        or (content_type.startswith("application/") and content_type.endswith("+json"))
    ):
        raise PlainTextError(415, "Expected request with `Content-Type: application/json`")
    raw = await request.body()
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise PlainTextError(400, f"Failed to parse the request body as JSON: {exc}") from exc
    if any_json:
        return body
    if not isinstance(body, dict):
        raise PlainTextError(
            422, "Failed to deserialize the JSON body into the target type: invalid type: expected a struct"
        )
    for field in fields:
        if field.name not in body or body[field.name] is None:
            if field.required:
                raise PlainTextError(
                    422, f"Failed to deserialize the JSON body into the target type: missing field `{field.name}`"
                )
            body[field.name] = None
            continue
        if not _type_ok(body[field.name], field.types):
            raise PlainTextError(
                422,
                f"Failed to deserialize the JSON body into the target type: {field.name}: invalid type: "
                f"{type(body[field.name]).__name__}",
            )
    return body


def query_bool(request: Request, name: str) -> bool | None:
    """axum ``Query<bool>``: only ``true``/``false``; anything else is a 400."""
    value = request.query_params.get(name)
    if value is None:
        return None
    if value not in ("true", "false"):
        raise PlainTextError(
            400, f"Failed to deserialize query string: {name}: provided string was not `true` or `false`"
        )
    return value == "true"


def query_u64(request: Request, name: str, *, required: bool = False) -> int | None:
    value = request.query_params.get(name)
    if value is None:
        if required:
            raise PlainTextError(400, f"Failed to deserialize query string: missing field `{name}`")
        return None
    if not value.isdigit():
        raise PlainTextError(400, f"Failed to deserialize query string: {name}: invalid digit found in string")
    return int(value)


def path_u32(value: str, name: str) -> int:
    if not value.isdigit() or int(value) > 2**32 - 1:
        raise PlainTextError(400, f"Invalid URL: Cannot parse `{name}` with value `{value}` to a `u32`")
    return int(value)
