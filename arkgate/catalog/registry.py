"""The catalog registry: every paid endpoint, declared once.

An endpoint module in this package holds its request/response models, its
handler and one module-level ``ENDPOINT = Endpoint(...)``. The registry finds
them by walking the package (and the ``arkgate.endpoints`` entry-point group,
so a separately installed plugin can add endpoints). Routing, OpenAPI,
``/v1/catalog``, the manifests, llms.txt and MCP are all generated from it, so
a price is written in exactly one place.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel

if TYPE_CHECKING:
    from arkgate.catalog.context import CallContext
    from arkgate.settings import Settings

Handler = Callable[[Any, "CallContext"], Awaitable[Any]]

# Modules of this package that are machinery, not endpoints.
_NOT_ENDPOINTS = frozenset({"registry", "context"})


class StartupError(Exception):
    """The catalog is inconsistent (duplicate ids, bad prices); arkgate refuses to start."""


@dataclass(frozen=True, kw_only=True)
class Metered:
    """Usage-based pricing: reserve the most a call can cost, settle what it used, refund the rest.

    ``reserve_sats(request, settings)`` is charged before the handler runs; the
    handler reports the actual cost with ``ctx.settle(cost_sats)``; the meter
    refunds the difference in the same ledger.
    """

    reserve_sats: Callable[[Any, Settings], int]
    rate: Callable[[Settings], str]
    max_cost_sats: Callable[[Settings], int]
    # The least a successful call costs, when it depends on settings (default: the endpoint's price_sats).
    min_cost_sats: Callable[[Settings], int] | None = None


@dataclass(frozen=True, kw_only=True)
class Endpoint:
    """One paid endpoint: served at ``/api/<id>``."""

    id: str
    price_sats: int
    category: str
    summary: str
    description: str
    request_model: type[BaseModel]
    handler: Handler
    response_model: type[BaseModel] | None = None
    method: Literal["GET", "POST"] = "POST"
    timeout_s: float | None = None
    example: dict[str, Any] | None = None
    metered: Metered | None = None
    tags: tuple[str, ...] = field(default=())
    # Requests may exceed ``max_body_bytes`` up to ``max_large_body_bytes`` (long conversations).
    has_large_body: bool = False

    @property
    def path(self) -> str:
        return f"/api/{self.id}"

    @property
    def module_name(self) -> str:
        return self.id.replace("-", "_")

    def price_for(self, request: Any, settings: Settings) -> int:
        """What is debited before the call: the flat price, or the metered reservation."""
        if self.metered is not None:
            return max(self.min_price_sats(settings), self.metered.reserve_sats(request, settings))
        return self.price_sats

    def min_price_sats(self, settings: Settings) -> int:
        if self.metered is not None and self.metered.min_cost_sats is not None:
            return max(self.price_sats, self.metered.min_cost_sats(settings))
        return self.price_sats

    def listed_price_sats(self, settings: Settings) -> int:
        """The figure ArkAPI clients read as "the price" (``cost_sats``): the most a call can cost."""
        return self.max_price_sats(settings)

    def max_price_sats(self, settings: Settings) -> int:
        if self.metered is not None:
            return max(self.price_sats, self.metered.max_cost_sats(settings))
        return self.price_sats


class Catalog:
    """An ordered, validated set of endpoints."""

    def __init__(self, endpoints: Iterable[Endpoint]) -> None:
        self._by_id: dict[str, Endpoint] = {}
        for endpoint in endpoints:
            _validate(endpoint)
            if endpoint.id in self._by_id:
                raise StartupError(f"two endpoints share the id {endpoint.id!r}")
            self._by_id[endpoint.id] = endpoint

    def __iter__(self) -> Iterator[Endpoint]:
        return iter(sorted(self._by_id.values(), key=lambda e: (e.category, e.id)))

    def __len__(self) -> int:
        return len(self._by_id)

    def __contains__(self, endpoint_id: object) -> bool:
        return endpoint_id in self._by_id

    def get(self, endpoint_id: str) -> Endpoint | None:
        return self._by_id.get(endpoint_id)

    def categories(self) -> dict[str, list[Endpoint]]:
        grouped: dict[str, list[Endpoint]] = {}
        for endpoint in self:
            grouped.setdefault(endpoint.category, []).append(endpoint)
        return grouped


def _validate(endpoint: Endpoint) -> None:
    if not endpoint.id or endpoint.id != endpoint.id.lower() or " " in endpoint.id:
        raise StartupError(f"endpoint id {endpoint.id!r} must be lower-case kebab-case")
    if not isinstance(endpoint.price_sats, int) or endpoint.price_sats < 0:
        raise StartupError(f"endpoint {endpoint.id!r}: price_sats must be a non-negative integer")


def builtin_module_names() -> list[str]:
    """Names of the endpoint modules shipped in this package."""
    import arkgate.catalog as package

    return sorted(
        info.name
        for info in pkgutil.iter_modules(package.__path__)
        if not info.name.startswith("_") and info.name not in _NOT_ENDPOINTS
    )


def _endpoints_of(module: Any) -> list[Endpoint]:
    found = getattr(module, "ENDPOINTS", None) or ([module.ENDPOINT] if hasattr(module, "ENDPOINT") else [])
    return list(found)


def load_catalog(*, plugins: bool = True, only: Iterable[str] | None = None) -> Catalog:
    """Import every built-in endpoint module (and entry-point plugins) into one catalog."""
    endpoints: list[Endpoint] = []
    for name in builtin_module_names():
        module = importlib.import_module(f"arkgate.catalog.{name}")
        endpoints.extend(_endpoints_of(module))
    if plugins:
        for entry in entry_points(group="arkgate.endpoints"):
            loaded = entry.load()
            endpoints.extend(loaded if isinstance(loaded, list | tuple) else _endpoints_of(loaded))
    if only is not None:
        wanted = set(only)
        endpoints = [e for e in endpoints if e.id in wanted]
    return Catalog(endpoints)
