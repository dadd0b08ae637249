"""The meter: every paid call is parse → authenticate → charge → run → answer (or refund).

An endpoint the gateway cannot serve (its backend is not configured) answers 503
before anything else: no parsing, no 402 challenge, no debit. Bad input is rejected
before any charge. The charge is one conditional UPDATE in the
ledger, so concurrent calls cannot overspend; the same transaction records the call as
in flight. The handler runs under the endpoint's time budget while the client
connection is watched; a failure, a timeout or a client that goes away refunds the
charge in full. Metered endpoints reserve their maximum and get back what they did not
use. Every call ends in exactly one settlement (``Ledger.settle``); a call a crash left
in flight is refunded by the sweep (``payments/sweeper.py``). ``Idempotency-Key``
retries are charged once.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterable
from typing import Any, TypeVar

import structlog
from fastapi import Request
from fastapi.responses import Response
from pydantic import BaseModel, ValidationError
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.routing import Route

from arkgate.catalog.context import CallContext, StreamingReply, sse
from arkgate.catalog.registry import Endpoint
from arkgate.errors import (
    ArkgateError,
    ConflictError,
    EndpointUnavailableError,
    IdempotencyConflict,
    InputError,
    PaymentRequiredError,
    UpstreamTimeoutError,
)
from arkgate.payments.ledger import Charge, hash_token, new_call_id
from arkgate.runtime import Runtime, runtime
from arkgate.services.auth import bearer_token
from arkgate.services.envelope import dumps, error_response, validation_message

log = structlog.get_logger("arkgate.meter")

MAX_BODY_BYTES = 1_000_000
MAX_IDEMPOTENCY_KEY = 255

T = TypeVar("T")


class ClientGone(Exception):
    """The caller disconnected before the result was ready."""


TokenResolver = Callable[[Request], Awaitable[str | None]]
Challenge = Callable[[Request, Endpoint, int, PaymentRequiredError | None], Awaitable[Response]]


async def bearer_token_hash(request: Request) -> str | None:
    token = bearer_token(request)
    return None if token is None else hash_token(token)


async def default_challenge(
    request: Request, endpoint: Endpoint, price_sats: int, error: PaymentRequiredError | None
) -> Response:
    """402 for a caller without a usable session; the agents module installs a richer one."""
    problem = error or PaymentRequiredError(
        "payment required: create a session with POST /v1/sessions, pay it, then send 'Authorization: Bearer ak_...'"
    )
    problem.details.setdefault("price_sats", price_sats)
    problem.details["_headers"] = {"WWW-Authenticate": 'Bearer realm="arkgate"'}
    return error_response(problem, endpoint=endpoint.path)


async def parse_request(request: Request, endpoint: Endpoint) -> BaseModel:
    """The request model from the JSON body (POST) or the query string (GET); 400 on anything wrong."""
    try:
        if endpoint.method == "GET":
            return endpoint.request_model.model_validate(dict(request.query_params))
        body = await request.body()
        if len(body) > MAX_BODY_BYTES:
            raise InputError(f"request body too large (limit {MAX_BODY_BYTES} bytes)")
        return endpoint.request_model.model_validate_json(body or b"{}")
    except ValidationError as exc:
        raise InputError(validation_message(exc)) from None


def make_paid_route(endpoint: Endpoint) -> Callable[[Request], Awaitable[Response]]:
    async def paid_call(request: Request) -> Response:
        return await Meter(runtime(request), endpoint, request).serve()

    paid_call.__name__ = f"call_{endpoint.module_name}"
    return paid_call


def lean_paid_routes(endpoints: Iterable[Endpoint]) -> list[Route]:
    """What serves the paid calls: plain Starlette routes, put before the documented FastAPI ones.

    The handler takes only the request, so FastAPI's dependency resolution and request-handler
    wrapper bought nothing but some 50-150 us per call; the FastAPI routes stay for the OpenAPI
    schema. Errors still reach the app's handlers, so the responses are the same.
    """
    routes = []
    for endpoint in endpoints:
        route = Route(endpoint.path, make_paid_route(endpoint), methods=[endpoint.method], include_in_schema=False)
        route.methods = {endpoint.method}  # Starlette adds HEAD to a GET route; FastAPI's answers 405, so must this
        routes.append(route)
    return routes


class Meter:
    """One paid call."""

    def __init__(self, rt: Runtime, endpoint: Endpoint, request: Request) -> None:
        self.rt = rt
        self.endpoint = endpoint
        self.request = request
        self.started = time.perf_counter()

    @property
    def timeout_s(self) -> float:
        """The call's time budget; a stream must end within it too (the crash sweep relies on it)."""
        return self.endpoint.timeout_s or self.rt.settings.call_timeout_s

    def elapsed_ms(self) -> int:
        return int((time.perf_counter() - self.started) * 1000)

    def fail(self, error: ArkgateError, *, balance_sats: int | None = None) -> Response:
        self.rt.metrics.call_outcome(self.endpoint.id, error.code).inc()
        return error_response(
            error, endpoint=self.endpoint.path, response_ms=self.elapsed_ms(), balance_sats=balance_sats
        )

    async def serve(self) -> Response:
        endpoint, rt = self.endpoint, self.rt
        unavailable = rt.catalog.unavailable_reason(endpoint.id)
        if unavailable is not None:
            return self.fail(
                EndpointUnavailableError(
                    f"{endpoint.id} is not available on this gateway: {unavailable}. Nothing was charged."
                )
            )
        try:
            payload = await parse_request(self.request, endpoint)
            price = endpoint.price_for(payload, rt.settings)
            token_hash = await self._token_hash()  # an unusable L402 token is a 401 here
        except ArkgateError as exc:
            return self.fail(exc)
        if token_hash is None:
            return await (rt.challenge or default_challenge)(self.request, endpoint, price, None)
        idem_key = self.request.headers.get("idempotency-key")
        try:
            await rt.limits.hit("calls", token_hash, self.request.scope)
            if self.request.client is not None:
                await rt.limits.hit("calls_ip", self.request.client.host, self.request.scope)
            if idem_key is not None:
                replay = await self._replay(token_hash, idem_key)
                if replay is not None:
                    return replay
            charge = await self._charge(token_hash, price, idem_key)
        except PaymentRequiredError as exc:
            return await (rt.challenge or default_challenge)(self.request, endpoint, price, exc)
        except _Replayed as replayed:
            return replayed.response
        except ArkgateError as exc:
            return self.fail(exc)
        log.info(
            "call.charged",
            endpoint_id=endpoint.id,
            call_id=charge.call_id,
            session_id=charge.session_id,
            key_id=charge.key_id,
            amount_sats=charge.amount_sats,
            balance_sats=charge.balance_sats,
        )
        if rt.webhooks is not None:
            rt.webhooks.after_charge(charge.session_id, charge.balance_sats)  # balance.low, in a task
        return await self._run(payload, charge, idem_key)

    async def _token_hash(self) -> str | None:
        for resolve in self.rt.token_resolvers:
            token_hash = await resolve(self.request)
            if token_hash is not None:
                return token_hash
        return None

    # --- idempotency ----------------------------------------------------------------------
    def _request_hash(self, body: bytes) -> str:
        digest = hashlib.sha256(self.request.method.encode() + self.endpoint.id.encode() + b"\0")
        digest.update(body if self.endpoint.method == "POST" else str(self.request.query_params).encode())
        return digest.hexdigest()

    async def _replay(self, token_hash: str, key: str) -> Response | None:
        if not key or len(key) > MAX_IDEMPOTENCY_KEY:
            raise InputError(f"Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} characters")
        stored = await self.rt.ledger.idempotent_replay(token_hash, key, self.rt.settings.idempotency_ttl_s)
        if stored is None:
            return None
        if stored.request_hash != self._request_hash(await self.request.body()):
            raise InputError("this Idempotency-Key was already used for a different request")
        if stored.status_code is None or stored.body is None:
            raise ConflictError("a request with this Idempotency-Key is still being processed")
        return Response(
            stored.body,
            status_code=stored.status_code,
            media_type="application/json",
            headers={"Idempotent-Replayed": "true"},
        )

    async def _charge(self, token_hash: str, price: int, idem_key: str | None) -> Charge:
        idempotency = None
        if idem_key is not None:
            idempotency = (idem_key, self._request_hash(await self.request.body()))
        try:
            return await self.rt.ledger.charge(
                token_hash,
                self.endpoint.id,
                price,
                call_id=new_call_id(),
                idempotency=idempotency,
                timeout_s=self.timeout_s,
                endpoint_tags=(self.endpoint.id, self.endpoint.category),
            )
        except IdempotencyConflict:
            # A concurrent retry with the same key claimed it first; answer as that retry would.
            assert idem_key is not None
            replay = await self._replay(token_hash, idem_key)
            if replay is None:
                raise ConflictError("a request with this Idempotency-Key is still being processed") from None
            raise _Replayed(replay) from None

    # --- running the handler ------------------------------------------------------------------
    async def _run(self, payload: BaseModel, charge: Charge, idem_key: str | None) -> Response:
        endpoint, rt = self.endpoint, self.rt
        ctx = CallContext(
            settings=rt.settings,
            services=rt.services,
            endpoint=endpoint,
            session_id=charge.session_id,
            call_id=charge.call_id,
            reserved_sats=charge.amount_sats,
            resolve_base_url=functools.partial(rt.base_url, self.request),
            spent_today_sats=lambda ids: rt.ledger.spent_today(charge.session_id, ids),
        )
        timeout_s = self.timeout_s
        try:
            result = await self._run_handler(payload, ctx, timeout_s)
        except asyncio.CancelledError:
            # The server cancelled us (the client went away): refund in a task that outlives this one.
            rt.tasks.spawn(self._refund_all(charge, "client_disconnected"), name=f"refund-{charge.call_id}")
            raise
        except ClientGone:
            await self._refund_all(charge, "client_disconnected")
            rt.metrics.call_outcome(endpoint.id, "client_disconnected").inc()
            return Response(status_code=499)
        except ArkgateError as exc:
            balance = await self._refund_all(charge, exc.code)
            return self.fail(exc, balance_sats=balance)
        except Exception:
            log.exception("call.handler_crashed", endpoint_id=endpoint.id, call_id=charge.call_id)
            balance = await self._refund_all(charge, "internal_error")
            return self.fail(
                ArkgateError(f"{endpoint.id} failed unexpectedly; you were not charged"), balance_sats=balance
            )
        if isinstance(result, StreamingReply):
            return self._stream(result, ctx, charge)
        cost = charge.amount_sats
        if endpoint.metered is not None:
            cost = ctx.settled_sats if ctx.settled_sats is not None else charge.amount_sats
        unused = charge.amount_sats - cost
        # What this call leaves: its own debit less what it gives back (concurrent calls aside).
        balance = charge.balance_sats + unused
        data = result.model_dump(mode="json") if isinstance(result, BaseModel) else result
        envelope: dict[str, Any] = {
            "success": True,
            "data": data,
            "cost_sats": cost,
            "balance_remaining": balance,
            "response_ms": self.elapsed_ms(),
            "endpoint": endpoint.path,
            "call_id": charge.call_id,
        }
        if ctx.notes:
            envelope["notes"] = ctx.notes
        body = dumps(envelope)
        # One transaction ends the call: the unused reservation back, the replay stored.
        settled = await self._unless_cancelled(
            rt.ledger.settle(
                charge.call_id,
                refund_sats=unused,
                reason="unused_reservation",
                idempotent_reply=(200, body.decode()) if idem_key is not None else None,
            ),
            charge,
        )
        if settled is None:  # swept as interrupted meanwhile: the caller got it refunded in full
            log.warning("call.settled_by_sweep", endpoint_id=endpoint.id, call_id=charge.call_id)
        rt.metrics.call_outcome(endpoint.id, "ok").inc()
        sats_charged, call_seconds = rt.metrics.endpoint_series(endpoint.id)
        sats_charged.inc(cost)
        call_seconds.observe(time.perf_counter() - self.started)
        return Response(body, media_type="application/json")

    async def _run_handler(self, payload: BaseModel, ctx: CallContext, timeout_s: float) -> Any:
        """The handler, in this task, within its time budget; ``ClientGone`` if the client leaves first.

        In this task rather than one of its own: a task and ``asyncio.wait`` per call cost more
        than most handlers. A cancellation from outside (the server) reaches the handler directly.
        """
        task = asyncio.current_task()
        assert task is not None
        cancelling = task.cancelling()
        guard = _CallGuard(self.request, task, timeout_s)
        try:
            result = await self.endpoint.handler(payload, ctx)
        except BaseException as exc:
            if guard.stopped_by is None:
                raise
            # The guard's cancellation (or what the handler made of it), unless the server cancelled this
            # task too: then that one goes on.
            if task.uncancel() > cancelling and isinstance(exc, asyncio.CancelledError):
                raise
            raise self._stopped(guard.stopped_by, timeout_s) from None
        finally:
            guard.close()
        if guard.stopped_by is not None:  # the handler swallowed the cancellation: its late result is dropped
            task.uncancel()
            raise self._stopped(guard.stopped_by, timeout_s)
        return result

    def _stopped(self, reason: str, timeout_s: float) -> Exception:
        if reason == _CLIENT_GONE:
            return ClientGone()
        return UpstreamTimeoutError(f"{self.endpoint.id} did not finish within {timeout_s:g} s; you were not charged")

    async def _refund_all(self, charge: Charge, reason: str) -> int:
        """A failed call: the whole charge back, and its Idempotency-Key released so a retry runs."""
        refund = self.rt.ledger.refund(charge, charge.amount_sats, reason=reason, release_idempotency=True)
        return await self._unless_cancelled(refund, charge)

    async def _unless_cancelled(self, settlement: Coroutine[Any, Any, T], charge: Charge) -> T:
        """Run a settlement to its end even if this request is cancelled meanwhile (a tracked task)."""
        return await asyncio.shield(self.rt.tasks.spawn(settlement, name=f"settle-{charge.call_id}"))

    def _stream(self, reply: StreamingReply, ctx: CallContext, charge: Charge) -> Response:
        meter = self
        deadline = asyncio.get_running_loop().time() + self.timeout_s - self.elapsed_ms() / 1000

        async def events() -> AsyncIterator[ServerSentEvent]:
            finished = False
            source = aiter(reply.events)
            try:
                while True:
                    remaining = deadline - asyncio.get_running_loop().time()
                    if remaining <= 0:
                        raise UpstreamTimeoutError(f"the stream did not finish within {meter.timeout_s:g} s")
                    try:
                        chunk = await asyncio.wait_for(anext(source), remaining)
                    except StopAsyncIteration:
                        break
                    except TimeoutError:
                        raise UpstreamTimeoutError(f"the stream did not finish within {meter.timeout_s:g} s") from None
                    yield chunk
                finished = True
            except ArkgateError as exc:
                yield sse("error", {"error": exc.message, "code": exc.status})
            finally:
                used = ctx.settled_sats if ctx.settled_sats is not None else (charge.amount_sats if finished else 0)
                # A task: this generator may be unwinding from a cancellation (the client went away).
                meter.rt.tasks.spawn(
                    meter.rt.ledger.settle(
                        charge.call_id,
                        refund_sats=charge.amount_sats - used,
                        reason="stream_settlement",
                        release_idempotency=not used,
                    ),
                    name=f"settle-{charge.call_id}",
                )
                meter.rt.metrics.call_outcome(meter.endpoint.id, "ok" if finished else "stream_cut").inc()

        headers = {"X-Call-Id": charge.call_id, "X-Reserved-Sats": str(charge.amount_sats), "Cache-Control": "no-cache"}
        # sse-starlette frames the events and sends keep-alive comments; "\n" line ends, as before.
        return EventSourceResponse(events(), headers=headers, sep="\n")


class _Replayed(Exception):
    def __init__(self, response: Response) -> None:
        self.response = response


_TIMED_OUT = "timed_out"
_CLIENT_GONE = "client_gone"


class _CallGuard:
    """Cancels ``task`` when its time budget runs out or the client disconnects, whichever comes first.

    Two loop callbacks rather than ``asyncio.timeout`` and a watcher task: this runs on every
    paid call. The watcher task starts only on the loop's next turn, which ``close`` cancels
    first when the handler returned without waiting: such a handler cannot see a disconnect
    anyway (nothing else runs meanwhile), and it costs no task then.
    """

    def __init__(self, request: Request, task: asyncio.Task[Any], timeout_s: float) -> None:
        self.stopped_by: str | None = None
        self._request = request
        self._task = task
        self._watcher: asyncio.Task[None] | None = None
        loop = asyncio.get_running_loop()
        self._deadline = loop.call_later(timeout_s, self._stop, _TIMED_OUT)
        self._start_watching = loop.call_soon(self._begin)

    def _stop(self, reason: str) -> None:
        if self.stopped_by is None:
            self.stopped_by = reason
            self._task.cancel()

    def _begin(self) -> None:
        self._watcher = asyncio.ensure_future(self._watch())

    async def _watch(self) -> None:
        await _client_disconnected(self._request)
        self._stop(_CLIENT_GONE)

    def close(self) -> None:
        self._deadline.cancel()
        self._start_watching.cancel()
        if self._watcher is not None:
            self._watcher.cancel()


async def _client_disconnected(request: Request) -> None:
    """Returns once the client has gone away (the body has already been read)."""
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return
