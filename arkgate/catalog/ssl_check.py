"""ssl-check: the TLS certificate and connection of a host, with a trust verdict and findings.

The host is resolved and vetted by the outbound guard and the handshakes go to
the vetted address (SNI = the name). See ``_security/tls.py`` for the method.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from arkgate.catalog._security.common import Domain, note_ai_summary
from arkgate.catalog._security.tls import TlsReport, inspect_tls
from arkgate.catalog.context import CallContext
from arkgate.catalog.registry import Endpoint
from arkgate.errors import TargetRefusedError
from arkgate.outbound.guard import get_guard


class SslCheckRequest(BaseModel):
    domain: Domain
    port: int = Field(default=443, ge=1, le=65535, description="TLS port (443 by default; see ssl_check_ports).")
    ai_summary: bool = Field(default=False, description="Accepted for ArkAPI compatibility; ignored (no cost).")


async def handler(request: SslCheckRequest, ctx: CallContext) -> TlsReport:
    note_ai_summary(request, ctx)
    allowed = ctx.settings.ssl_check_ports
    if request.port not in allowed:
        raise TargetRefusedError(
            f"target refused: port {request.port} is not allowed (allowed: {', '.join(map(str, allowed))})"
        )
    guard = ctx.services.get(get_guard)
    return await inspect_tls(guard, request.domain, request.port, timeout_s=ctx.settings.outbound_timeout_s)


ENDPOINT = Endpoint(
    id="ssl-check",
    price_sats=5,
    category="security",
    summary="TLS certificate analysis",
    description=(
        "Connects to a host over TLS and reports the negotiated version and cipher, the full certificate chain "
        "(subject, SANs, issuer, validity and days left, key and signature), host name match, a trust verdict "
        "against the system store, and findings such as expired, self-signed, weak key, SHA-1 or incomplete "
        "chain."
    ),
    request_model=SslCheckRequest,
    response_model=TlsReport,
    handler=handler,
    timeout_s=30,
    example={"domain": "example.com"},
)
