"""headers: security-header audit of a URL, with a score, a grade and the redirect chain.

The page is fetched through the outbound guard (every redirect hop re-vetted);
only the final response's headers are scored (see ``_security/headers_audit.py``).
"""

from __future__ import annotations

from pydantic import BaseModel, Field, field_validator

from arkgate.catalog._security.common import note_ai_summary
from arkgate.catalog._security.headers_audit import HeadersReport, audit
from arkgate.catalog.context import CallContext
from arkgate.catalog.registry import Endpoint
from arkgate.errors import ArkgateError
from arkgate.outbound.guard import MAX_URL_CHARS, get_guard, parse_url

MAX_REDIRECTS = 10
_BODY_CAP = 256_000  # headers are what matters; the body is read only to finish the exchange


class HeadersRequest(BaseModel):
    url: str = Field(
        ...,
        min_length=1,
        max_length=MAX_URL_CHARS,
        description="http(s) URL of a public site; a bare host name is taken as https://host/.",
        examples=["https://example.com"],
    )
    ai_summary: bool = Field(default=False, description="Accepted for ArkAPI compatibility; ignored (no cost).")

    @field_validator("url")
    @classmethod
    def _valid_url(cls, value: str) -> str:
        text = value.strip()
        if text and "://" not in text:
            text = f"https://{text}"
        try:
            parse_url(text)
        except ArkgateError as exc:
            raise ValueError(exc.message) from exc
        return text


async def handler(request: HeadersRequest, ctx: CallContext) -> HeadersReport:
    note_ai_summary(request, ctx)
    guard = ctx.services.get(get_guard)
    result = await guard.fetch(request.url, max_bytes=_BODY_CAP, max_redirects=MAX_REDIRECTS)
    return audit(result, request.url)


ENDPOINT = Endpoint(
    id="headers",
    price_sats=3,
    category="security",
    summary="HTTP security headers audit",
    description=(
        "Fetches a public URL, follows its redirects and audits the final response's security headers "
        "(HSTS, CSP, X-Frame-Options, X-Content-Type-Options, Referrer-Policy, Permissions-Policy, COOP, CORP) "
        "and cookie flags, with a 0-100 score, an A-F grade, findings and the redirect chain. Private, local "
        "and reserved targets are refused."
    ),
    request_model=HeadersRequest,
    response_model=HeadersReport,
    handler=handler,
    timeout_s=30,
    example={"url": "https://example.com"},
)
