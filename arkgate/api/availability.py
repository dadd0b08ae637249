"""How every catalog output says an endpoint cannot be called on this gateway.

The catalog decides availability once at start-up (``Catalog.evaluated``); these
helpers give the catalog listing, manifests, OpenAPI, llms.txt and the pages the
same fields and the same words, so no output can sell what the meter refuses.
"""

from __future__ import annotations

from typing import Any

from arkgate.catalog.registry import UNAVAILABLE_LABEL, Endpoint
from arkgate.runtime import Runtime


def availability_fields(endpoint: Endpoint, rt: Runtime) -> dict[str, Any]:
    """``available`` and ``unavailable_reason`` (null when available), as JSON outputs carry them."""
    reason = rt.catalog.unavailable_reason(endpoint.id)
    return {"available": reason is None, "unavailable_reason": reason}


def unavailable_note(endpoint: Endpoint, rt: Runtime) -> str | None:
    """One sentence for people and language models, or None when the endpoint can be called."""
    reason = rt.catalog.unavailable_reason(endpoint.id)
    if reason is None:
        return None
    return f"{UNAVAILABLE_LABEL}: {reason}. Calls answer 503 endpoint_unavailable and cost nothing."
