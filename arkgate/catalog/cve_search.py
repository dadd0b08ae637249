"""cve-search: NVD keyword search, newest CVEs first.

NVD returns keyword matches oldest first, so when there are more matches than
asked for, a second request fetches the last page (the newest ones). Each page
is cached for ``nvd_cache_ttl_s``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import BaseModel, Field, field_validator

from arkgate.catalog._lenient import clamp_limit, limit_description
from arkgate.catalog._upstream import cache_factory, nvd
from arkgate.catalog._upstream.nvd import CveRecord
from arkgate.catalog.context import CallContext
from arkgate.catalog.registry import Endpoint

MAX_LIMIT = 20


class CveSearchRequest(BaseModel):
    query: str = Field(
        ...,
        min_length=2,
        max_length=200,
        description="Keywords or product and version, e.g. 'wordpress 6.7'.",
        examples=["wordpress information disclosure"],
    )
    limit: Annotated[int, clamp_limit(5, MAX_LIMIT)] = Field(
        5, ge=1, le=MAX_LIMIT, description=limit_description("CVEs", 5, MAX_LIMIT)
    )

    @field_validator("query")
    @classmethod
    def _query(cls, value: str) -> str:
        value = " ".join(value.split())
        if len(value) < 2:
            raise ValueError("query must have at least 2 characters")
        if any(ord(ch) < 32 for ch in value):
            raise ValueError("query must be plain text")
        return value


class CveSummary(BaseModel):
    cve_id: str
    severity: str | None
    cvss_score: float | None
    cvss_version: str | None
    description: str | None
    published_at: datetime | None
    cwes: list[str]
    has_kev: bool
    nvd_url: str
    published: str = Field(default="", description="ArkAPI's: NVD's 'published' timestamp as NVD writes it.")
    last_modified: str = Field(default="", description="ArkAPI's: NVD's 'lastModified' timestamp.")
    primary_reference_url: str = Field(default="", description="ArkAPI's: the vendor advisory, else the first link.")


class CveSearchResponse(BaseModel):
    query: str
    total_results: int = Field(..., description="Matches in the NVD; the newest are returned.")
    results: list[CveSummary]


_cache = cache_factory(max_entries=1024)


def _summary(record: CveRecord) -> CveSummary:
    return CveSummary(
        cve_id=record.cve_id,
        severity=record.severity,
        cvss_score=record.cvss_score,
        cvss_version=record.cvss_version,
        description=record.description,
        published_at=record.published_at,
        cwes=record.cwes,
        has_kev=record.has_kev,
        nvd_url=record.nvd_url,
        published=record.published,
        last_modified=record.last_modified,
        primary_reference_url=record.primary_reference_url or "",
    )


async def _page(query: str, start: int, size: int, ctx: CallContext) -> tuple[int, list[CveRecord]]:
    async def load() -> tuple[int, list[CveRecord]]:
        return await nvd.query({"keywordSearch": query, "resultsPerPage": size, "startIndex": start}, ctx)

    page: tuple[int, list[CveRecord]] = await ctx.services.get(_cache).get_or_load(
        (query.lower(), start, size), load, ctx.settings.nvd_cache_ttl_s
    )
    return page


async def cve_search(request: CveSearchRequest, ctx: CallContext) -> CveSearchResponse:
    total, records = await _page(request.query, 0, request.limit, ctx)
    if total > request.limit:
        total, records = await _page(request.query, total - request.limit, request.limit, ctx)
    oldest = datetime.min.replace(tzinfo=UTC)
    records = sorted(records, key=lambda r: (r.published_at or oldest, r.cve_id), reverse=True)
    return CveSearchResponse(
        query=request.query, total_results=total, results=[_summary(r) for r in records[: request.limit]]
    )


ENDPOINT = Endpoint(
    id="cve-search",
    price_sats=4,
    category="security",
    summary="Search the NVD for CVEs",
    description=(
        "Searches the NIST NVD by keywords or product and version and returns the newest matching "
        "CVEs with severity, CVSS score and version, CWE weaknesses, CISA KEV flag and a short "
        "description, plus the total number of matches."
    ),
    request_model=CveSearchRequest,
    response_model=CveSearchResponse,
    handler=cve_search,
    timeout_s=40.0,
    example={"query": "wordpress information disclosure", "limit": 5},
)
