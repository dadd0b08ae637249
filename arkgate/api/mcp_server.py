"""The MCP server at ``/mcp``: one tool per catalog endpoint plus session tools.

Built on the official SDK's ``MCPServer`` (streamable HTTP, stateless, JSON answers) and
mounted in the app; its session manager runs in the app lifespan. Paid tools are billed
by the very same meter as ``/api/<id>``: the tool call becomes an in-process HTTP request
to the meter (``call_endpoint``), so parsing, pricing, the atomic charge, the time budget,
refunds, metered settlement, rate limits and idempotency are not re-implemented here.
A session without money gets the 402 answer as the tool result: the agent reads how to
pay (invoice, Ark address, amount) instead of a protocol error.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Awaitable
from typing import Any
from urllib.parse import urlencode

import structlog
from fastapi import FastAPI
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.context import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.transport_security import TransportSecuritySettings
from mcp_types import CallToolResult, TextContent, ToolAnnotations
from mcp_types import Tool as MCPTool
from pydantic import ValidationError
from sse_starlette import EventSourceResponse
from sse_starlette.event import ensure_bytes
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from arkgate.api.challenge import client_ip
from arkgate.api.keys import CreateKey, create_sub_key
from arkgate.api.manifests import price_text
from arkgate.api.metering import Meter
from arkgate.api.payouts import payout_service, payout_view
from arkgate.catalog.registry import Endpoint
from arkgate.errors import ArkgateError
from arkgate.payments.payouts import PayoutFailedError
from arkgate.runtime import LifespanContext, Runtime
from arkgate.services.auth import Caller, caller_by_token_hash
from arkgate.services.envelope import error_response, validation_message
from arkgate.services.sessions import caller_balance_view, funding_view, invoice_of_row

log = structlog.get_logger("arkgate.mcp")

SESSION_TOKEN_ARG = "session_token"  # noqa: S105 - an argument name
SESSION_TOKEN_SCHEMA = {
    "type": "string",
    "description": "Session token (ak_...) to pay with, if the MCP connection sends no Authorization header.",
}


def tool_name(endpoint: Endpoint) -> str:
    return endpoint.module_name


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | dict):
        return json.dumps(value)
    return str(value)


def synthetic_request(
    app: FastAPI,
    *,
    method: str,
    path: str,
    body: bytes = b"",
    query: dict[str, Any] | None = None,
    authorization: str | None = None,
    origin: Request | None = None,
) -> Request:
    """A Starlette request as the meter would get it over HTTP, built from a tool call.

    ``origin`` is the MCP HTTP request: its client address and host carry over, so rate
    limits and generated URLs behave as for a direct call.
    """
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    host = origin.headers.get("host") if origin is not None else None
    headers.append((b"host", (host or "arkgate").encode("latin-1")))
    if authorization:
        headers.append((b"authorization", authorization.encode("latin-1")))
    query_string = urlencode({k: _scalar(v) for k, v in (query or {}).items() if v is not None}).encode()
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": origin.url.scheme if origin is not None else "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": query_string,
        "headers": headers,
        "client": (origin.client.host, origin.client.port) if origin is not None and origin.client else None,
        "server": None,
        "app": app,
    }
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        # No disconnect ever arrives: the MCP request's own cancellation stops the call.
        await asyncio.Event().wait()
        return {"type": "http.disconnect"}

    return Request(scope, receive)


async def call_endpoint(
    rt: Runtime,
    app: FastAPI,
    endpoint: Endpoint,
    arguments: dict[str, Any],
    *,
    authorization: str | None,
    origin: Request | None,
) -> tuple[int, Any]:
    """Run one paid call through the meter; (HTTP status, parsed body)."""
    if endpoint.method == "GET":
        request = synthetic_request(
            app, method="GET", path=endpoint.path, query=arguments, authorization=authorization, origin=origin
        )
    else:
        body = json.dumps(arguments).encode()
        request = synthetic_request(
            app, method="POST", path=endpoint.path, body=body, authorization=authorization, origin=origin
        )
    try:
        response = await Meter(rt, endpoint, request).serve()
    except ArkgateError as exc:  # raised by a token resolver (e.g. a bad L402 token)
        response = error_response(exc, endpoint=endpoint.path)
    return response.status_code, await _read(response)


async def _read(response: Response) -> Any:
    if isinstance(response, EventSourceResponse):
        # MCP answers once: collect the stream (its end settles a metered call as usual).
        chunks = [ensure_bytes(c, "\n").decode() async for c in response.body_iterator]
        return {"stream": "".join(chunks)}
    raw = bytes(response.body)
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return raw.decode(errors="replace")


def _text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, indent=1)


def _payment_text(body: dict[str, Any]) -> str:
    payment = body.get("payment") or {}
    lines = [str(body.get("error", "payment required"))]
    if payment.get("token"):
        lines.append(
            f"A session was opened for you. Its token is {payment['token']}: pass it as the session_token "
            "argument (or as 'Authorization: Bearer <token>' on the MCP connection) once it is paid."
        )
    if payment.get("lightning_invoice"):
        lines.append(f"Pay this Lightning invoice ({payment.get('amount_sats')} sats): {payment['lightning_invoice']}")
    if payment.get("ark_address"):
        lines.append(f"Or send sats over Ark to: {payment['ark_address']}")
    for step in body.get("how_to_pay") or []:
        lines.append(f"- {step}")
    lines.append("Call check_balance to see when the payment has arrived, then call this tool again.")
    return "\n".join(lines)


def tool_result(status: int, body: Any) -> CallToolResult:
    structured = body if isinstance(body, dict) else {"result": body}
    if status == 200:
        return CallToolResult(content=[TextContent(text=_text(body))], structured_content=structured)
    if status == 402 and isinstance(body, dict):
        return CallToolResult(
            content=[TextContent(text=_payment_text(body))], structured_content=structured, is_error=True
        )
    return CallToolResult(content=[TextContent(text=_text(body))], structured_content=structured, is_error=True)


class GatewayMCP(MCPServer):
    """``MCPServer`` whose paid tools come from the catalog registry."""

    def __init__(self, rt: Runtime, app: FastAPI) -> None:
        # MCPServer configures the root logger (basicConfig with its own handler); arkgate owns logging.
        root = logging.getLogger()
        handlers, level = root.handlers[:], root.level
        super().__init__(
            name="arkgate",
            title="arkgate",
            description="Pay-per-call APIs paid in sats over Lightning or Ark.",
            instructions=(
                "Each paid tool costs the sats shown in its description and is paid from a prepaid session. "
                "Call create_session, pay its Lightning invoice or Ark address, then pass the token as "
                "session_token (or as an 'Authorization: Bearer' header on this connection). A tool called "
                "without money answers with payment instructions."
            ),
            version=app.version,
        )
        root.handlers[:] = handlers
        root.setLevel(level)
        self.rt = rt
        self.app = app
        # Only endpoints this gateway can serve become tools: an agent's tool list is for acting, and a
        # tool that always answers 503 would waste its turns. The manifests list the others with a reason.
        self.paid = {tool_name(e): e for e in rt.catalog.available()}
        _register_session_tools(self)
        for name in self.paid:
            if self._tool_manager.get_tool(name) is not None:
                raise ValueError(f"catalog endpoint {name!r} clashes with a session tool name")

    def paid_tool(self, endpoint: Endpoint) -> MCPTool:
        schema = endpoint.request_model.model_json_schema()
        properties = dict(schema.get("properties", {}))
        properties[SESSION_TOKEN_ARG] = SESSION_TOKEN_SCHEMA
        schema["properties"] = properties
        schema["type"] = "object"
        settings = self.rt.settings
        return MCPTool(
            name=tool_name(endpoint),
            title=endpoint.summary,
            description=f"{endpoint.summary}. {endpoint.description} Cost: {price_text(endpoint, self.rt)}.",
            input_schema=schema,
            annotations=ToolAnnotations(title=endpoint.summary, read_only_hint=True, open_world_hint=True),
            _meta={
                "arkgate/endpoint": endpoint.id,
                "arkgate/cost_sats": endpoint.listed_price_sats(settings),
                "arkgate/min_cost_sats": endpoint.min_price_sats(settings),
                "arkgate/max_cost_sats": endpoint.max_price_sats(settings),
                "arkgate/category": endpoint.category,
            },
        )

    async def list_tools(self) -> list[MCPTool]:
        return [*(self.paid_tool(e) for e in self.paid.values()), *await super().list_tools()]

    def _tool_input_schema(self, name: str) -> dict[str, Any] | None:
        endpoint = self.paid.get(name)
        if endpoint is not None:
            return self.paid_tool(endpoint).input_schema
        return super()._tool_input_schema(name)

    async def call_tool(self, name: str, arguments: dict[str, Any], context: Context[Any, Any] | None = None) -> Any:
        endpoint = self.paid.get(name)
        if endpoint is None:
            return await super().call_tool(name, arguments, context)
        args = dict(arguments or {})
        token = args.pop(SESSION_TOKEN_ARG, None)
        origin = http_request(context)
        authorization = f"Bearer {token}" if token else (origin.headers.get("authorization") if origin else None)
        status, body = await call_endpoint(
            self.rt, self.app, endpoint, args, authorization=authorization, origin=origin
        )
        return tool_result(status, body)


def http_request(context: Context[Any, Any] | None) -> Request | None:
    if context is None:
        return None
    try:
        request = context.request_context.request
    except ValueError:
        return None
    return request if isinstance(request, Request) else None


async def _caller_for(server: GatewayMCP, ctx: Context[Any, Any], session_token: str | None) -> Caller:
    """The session (or sub-key) the tool call authenticates as, through the same resolvers as the meter."""
    origin = http_request(ctx)
    authorization = f"Bearer {session_token}" if session_token else None
    if authorization is None and origin is not None:
        authorization = origin.headers.get("authorization")
    if not authorization:
        raise ToolError("no session: pass session_token (from create_session) or send 'Authorization: Bearer ak_...'")
    request = synthetic_request(
        server.app, method="GET", path="/v1/balance", authorization=authorization, origin=origin
    )
    for resolve in server.rt.token_resolvers:
        token_hash = await resolve(request)
        if token_hash is not None:
            return await caller_by_token_hash(server.rt.ledger, token_hash)
    raise ToolError("invalid or unknown session token")


async def _session_for(
    server: GatewayMCP, ctx: Context[Any, Any], session_token: str | None, action: str = "do this"
) -> Any:
    """The session of a tool only its own token may use (a sub-key is refused, as over HTTP)."""
    caller = await _caller_for(server, ctx, session_token)
    if caller.key is not None:
        raise ToolError(
            f"a sub-key cannot {action}: it can only make paid calls and read its balance. Use the session's own token."
        )
    return caller.session


async def _guard(work: Awaitable[Any]) -> Any:
    try:
        return await work
    except ArkgateError as exc:
        raise ToolError(exc.message) from None


def _register_session_tools(server: GatewayMCP) -> None:
    rt = server.rt

    async def create_session(ctx: Context, amount_sats: int | None = None) -> dict[str, Any]:
        """Open a prepaid session and get its token plus a Lightning invoice and an Ark address to fund it."""

        async def work() -> dict[str, Any]:
            amount = rt.sessions.validate_amount(
                amount_sats if amount_sats is not None else rt.settings.default_session_sats
            )
            origin = http_request(ctx)
            ip = client_ip(origin) if origin is not None else "mcp"
            await rt.limits.hit("sessions", ip)
            _, created = await rt.sessions.open(amount, source="mcp", client_ip=ip)
            return created.model_dump() | {
                "next": "pay funding.lightning_invoice (or send sats to funding.ark_address), then pass token as "
                "session_token to paid tools"
            }

        return await _guard(work())  # type: ignore[no-any-return]

    async def session_funding(ctx: Context, session_token: str | None = None) -> dict[str, Any]:
        """How to fund a session: its pending Lightning invoice (if any) and its Ark address."""

        async def work() -> dict[str, Any]:
            session = await _session_for(server, ctx, session_token, "read the session's funding")
            pending = [invoice_of_row(i) for i in await rt.ledger.invoices_of(session.id) if i.status == "pending"]
            invoice = pending[-1] if pending else None
            view = funding_view(invoice, session.ark_address, invoice.amount_sats if invoice else 0)
            return {
                "funding": view.model_dump(),
                "balance_sats": session.balance_sats,
                "status": session.public_status(),
                "hint": "call top_up for a new invoice" if invoice is None else "pay the invoice or the Ark address",
            }

        return await _guard(work())  # type: ignore[no-any-return]

    async def check_balance(ctx: Context, session_token: str | None = None) -> dict[str, Any]:
        """The session's balance in sats and its status (awaiting_payment, active, expired)."""

        async def work() -> dict[str, Any]:
            return caller_balance_view(await _caller_for(server, ctx, session_token))

        return await _guard(work())  # type: ignore[no-any-return]

    async def top_up(ctx: Context, amount_sats: int, session_token: str | None = None) -> dict[str, Any]:
        """A new Lightning invoice for the same session (free mode: credited at once)."""

        async def work() -> dict[str, Any]:
            session = await _session_for(server, ctx, session_token, "top up")
            amount = rt.sessions.validate_amount(amount_sats)
            origin = http_request(ctx)
            await rt.limits.hit("sessions", client_ip(origin) if origin is not None else "mcp")
            return (await rt.sessions.top_up(session, amount)).model_dump()

        return await _guard(work())  # type: ignore[no-any-return]

    async def create_key(
        ctx: Context,
        label: str = "",
        cap_sats: int | None = None,
        daily_cap_sats: int | None = None,
        allowed: list[str] | None = None,
        expires_in: int | None = None,
        session_token: str | None = None,
    ) -> dict[str, Any]:
        """Create a sub-key that spends from this session within caps, for handing to another agent.

        cap_sats: the most it may ever spend; daily_cap_sats: per UTC day; allowed: endpoint ids or
        categories it may call (default: all); expires_in: seconds. The answer's token is shown once.
        """

        async def work() -> dict[str, Any]:
            session = await _session_for(server, ctx, session_token, "create keys")
            try:
                body = CreateKey(
                    label=label,
                    cap_sats=cap_sats,
                    daily_cap_sats=daily_cap_sats,
                    allowed=allowed,
                    expires_in=expires_in,
                )
            except ValidationError as exc:
                raise ToolError(validation_message(exc)) from None
            return await create_sub_key(rt, session, body)

        return await _guard(work())  # type: ignore[no-any-return]

    async def withdraw(
        ctx: Context,
        destination: str,
        amount_sats: int | None = None,
        quote_only: bool = False,
        session_token: str | None = None,
    ) -> dict[str, Any]:
        """Pay sats from the balance out to a BOLT11 invoice, BOLT12 offer, Lightning address or Ark address.

        The fee is paid from the amount; quote_only shows it without paying. Without amount_sats an
        invoice's own amount (plus fee) is taken, or else the whole balance.
        """

        async def work() -> dict[str, Any]:
            session = await _session_for(server, ctx, session_token, "withdraw")
            service = payout_service(rt)
            if quote_only:
                quote = await service.quote(session, destination, amount_sats, resolve=False)
                return {
                    "amount_sats": quote.amount_sats,
                    "fee_sats": quote.fee_sats,
                    "net_sats": quote.net_sats,
                    "balance_sats": session.balance_sats,
                }
            result = await service.withdraw(session, destination, amount_sats)
            if result.state == "failed":
                raise PayoutFailedError(result.reason or "the payment failed; the balance was refunded")
            return payout_view(result)

        return await _guard(work())  # type: ignore[no-any-return]

    for fn in (create_session, session_funding, check_balance, top_up, create_key, withdraw):
        server.add_tool(fn, name=fn.__name__, structured_output=True)


def install(app: FastAPI, rt: Runtime) -> LifespanContext:
    """Mount ``/mcp``; the answer runs the SDK's session manager for the app's lifetime."""
    server = GatewayMCP(rt, app)
    settings = rt.settings
    asgi = server.streamable_http_app(
        streamable_http_path="/mcp",
        stateless_http=True,
        json_response=True,
        transport_security=TransportSecuritySettings(
            allowed_hosts=list(settings.mcp_allowed_hosts), allowed_origins=list(settings.mcp_allowed_origins)
        ),
    )
    # Plain routes, not a mount: a mount answers POST /mcp with a 307 to /mcp/ whose Location is
    # http:// behind a TLS proxy. Both spellings reach the same handler.
    handler = next(route.endpoint for route in asgi.routes if isinstance(route, Route) and route.path == "/mcp")
    app.router.routes.extend([Route("/mcp", handler), Route("/mcp/", handler)])
    return lambda: _session_manager(server)


@contextlib.asynccontextmanager
async def _session_manager(server: GatewayMCP) -> AsyncIterator[None]:
    """Run the SDK's session manager in its own task for the app's lifetime.

    Its ``run()`` holds an anyio task group, which must be exited by the task that entered
    it; a lifespan whose start and end run in different tasks (as in some test harnesses)
    would break that, so it lives in a background task cancelled when the lifespan ends.
    """
    ready = asyncio.Event()

    async def run() -> None:
        async with server.session_manager.run():
            ready.set()
            await asyncio.Event().wait()

    task = asyncio.create_task(run(), name="mcp-session-manager")
    waiter = asyncio.ensure_future(ready.wait())
    done, _ = await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    if task in done:
        waiter.cancel()
        task.result()  # the manager failed to start: let the lifespan fail loudly
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
