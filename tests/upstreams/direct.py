"""Call an endpoint handler the way the meter does, without the gateway (unit level)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ValidationError

from arkgate.catalog.context import CallContext, Services
from arkgate.catalog.registry import Endpoint
from arkgate.errors import InputError
from arkgate.settings import Settings


async def call_direct(
    endpoint: Endpoint, settings: Settings, services: Services, payload: dict[str, Any]
) -> tuple[dict[str, Any], CallContext]:
    """Validate ``payload`` into the request model (400 on failure), run the handler, dump the result."""
    try:
        request = endpoint.request_model.model_validate(payload)
    except ValidationError as exc:
        raise InputError(str(exc)) from exc
    ctx = CallContext(settings=settings, services=services, endpoint=endpoint)
    result = await endpoint.handler(request, ctx)
    data = result.model_dump(mode="json") if isinstance(result, BaseModel) else result
    return data, ctx
