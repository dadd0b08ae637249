"""The catalog registry: every paid endpoint, declared once.

An endpoint module in this package holds its request/response models, its
handler and one module-level ``ENDPOINT = Endpoint(...)``. The registry finds
them by walking the package; endpoints of installed plugins (the ``register_endpoints``
hook of ``arkgate.hookspecs``) are passed in by ``create_app``. Routing, OpenAPI,
``/v1/catalog``, the manifests, llms.txt and MCP are all generated from it, so
a price is written in exactly one place.

Availability: an endpoint declares what it ``requires`` (a backend URL, a file, an
importable package) as checks ``(settings) -> reason | None``. ``Catalog.evaluated``
runs them once at start-up: an unavailable endpoint is either listed with its reason
(and answers 503 ``endpoint_unavailable`` at no cost) or, with
``ARKGATE_UNAVAILABLE_ENDPOINTS=hide``, left out of the catalog altogether.
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel

if TYPE_CHECKING:
    from arkgate.catalog.context import CallContext
    from arkgate.settings import Settings

Handler = Callable[[Any, "CallContext"], Awaitable[Any]]
# A start-up check: why the endpoint cannot work with these settings, or None when it can.
Requirement = Callable[["Settings"], "str | None"]

# Modules of this package that are machinery, not endpoints.
_NOT_ENDPOINTS = frozenset({"registry", "context"})
# How every output (listing, manifests, OpenAPI, llms.txt, pages) labels an endpoint it cannot serve.
UNAVAILABLE_LABEL = "Not available on this gateway"


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
    requires: tuple[Requirement, ...] = field(default=())

    def unavailable_reason(self, settings: Settings) -> str | None:
        """Why this endpoint cannot work on a gateway with these settings (the first failing check), or None."""
        for check in self.requires:
            reason = check(settings)
            if reason:
                return reason
        return None

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
    """An ordered, validated set of endpoints, with the reason each unavailable one cannot be served."""

    def __init__(self, endpoints: Iterable[Endpoint], *, unavailable: Mapping[str, str] | None = None) -> None:
        self._by_id: dict[str, Endpoint] = {}
        for endpoint in endpoints:
            _validate(endpoint)
            if endpoint.id in self._by_id:
                raise StartupError(f"two endpoints share the id {endpoint.id!r}")
            self._by_id[endpoint.id] = endpoint
        self._unavailable = {k: v for k, v in (unavailable or {}).items() if k in self._by_id}

    def evaluated(self, settings: Settings) -> Catalog:
        """This catalog with every endpoint's ``requires`` checked once against ``settings``.

        Unavailable endpoints are kept with their reason, or dropped when
        ``settings.unavailable_endpoints`` is ``hide``.
        """
        reasons = {e.id: reason for e in self if (reason := e.unavailable_reason(settings))}
        if settings.unavailable_endpoints == "hide":
            return Catalog(e for e in self if e.id not in reasons)
        return Catalog(self, unavailable=reasons)

    def unavailable_reason(self, endpoint_id: str) -> str | None:
        """Why the endpoint cannot be served on this gateway, or None when it can."""
        return self._unavailable.get(endpoint_id)

    def is_available(self, endpoint_id: str) -> bool:
        return endpoint_id in self._by_id and endpoint_id not in self._unavailable

    def available(self) -> list[Endpoint]:
        """The endpoints that can be called, in catalog order."""
        return [e for e in self if e.id not in self._unavailable]

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


def needs_setting(name: str, what: str) -> Requirement:
    """Unavailable while the setting ``name`` is empty; ``what`` names the missing backend for people."""

    def check(settings: Settings) -> str | None:
        if getattr(settings, name):
            return None
        return f"no {what} is configured (operator: set ARKGATE_{name.upper()})"

    return check


def needs_file(name: str, what: str) -> Requirement:
    """Unavailable while the path in setting ``name`` does not exist (e.g. a browser executable)."""

    def check(settings: Settings) -> str | None:
        path: Path | None = getattr(settings, name)
        if path is not None and path.exists():
            return None
        return f"{what} is not installed (operator: install it or set ARKGATE_{name.upper()})"

    return check


def needs_module(module: str, *, extra: str | None = None) -> Requirement:
    """Unavailable while the Python package ``module`` cannot be imported (an optional dependency)."""

    def check(settings: Settings) -> str | None:
        try:
            if importlib.util.find_spec(module) is not None:
                return None
        except ImportError:  # a dotted name whose parent package is missing
            pass
        install = f"pip install 'arkgate[{extra}]'" if extra else f"install the {module!r} package"
        return f"the Python package {module!r} is not installed (operator: {install})"

    return check


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


def load_catalog(*, extra: Iterable[Endpoint] = (), only: Iterable[str] | None = None) -> Catalog:
    """Every built-in endpoint module, plus ``extra`` endpoints (the plugins'), in one catalog."""
    endpoints: list[Endpoint] = []
    for name in builtin_module_names():
        module = importlib.import_module(f"arkgate.catalog.{name}")
        endpoints.extend(_endpoints_of(module))
    endpoints.extend(extra)
    if only is not None:
        wanted = set(only)
        endpoints = [e for e in endpoints if e.id in wanted]
    return Catalog(endpoints)
