"""cve-lookup: one CVE's NVD record: severity, CVSS v2/v3/v4, CWE, CISA KEV, references."""

from __future__ import annotations

from pydantic import BaseModel, Field, field_validator

from arkgate.catalog._upstream import cache_factory, nvd
from arkgate.catalog._upstream.nvd import CveRecord
from arkgate.catalog.context import CallContext
from arkgate.catalog.registry import Endpoint
from arkgate.errors import NotFoundError


class CveLookupRequest(BaseModel):
    cve: str = Field(..., min_length=9, max_length=30, description="CVE id.", examples=["CVE-2024-3400"])

    @field_validator("cve")
    @classmethod
    def _cve(cls, value: str) -> str:
        return nvd.normalise_cve_id(value)


_cache = cache_factory(max_entries=4096)


async def cve_lookup(request: CveLookupRequest, ctx: CallContext) -> CveRecord:
    async def load() -> list[CveRecord]:
        _, records = await nvd.query({"cveId": request.cve}, ctx)
        return records

    records: list[CveRecord] = await ctx.services.get(_cache).get_or_load(
        request.cve, load, ctx.settings.nvd_cache_ttl_s
    )
    match = next((r for r in records if r.cve_id == request.cve), None)
    if match is None:
        raise NotFoundError(f"{request.cve} is not in the NVD (unknown, reserved or rejected id)")
    return match


ENDPOINT = Endpoint(
    id="cve-lookup",
    price_sats=3,
    category="security",
    summary="Look up a CVE in the NVD",
    description=(
        "The NIST NVD record of one CVE: description, status, headline severity and score, every "
        "CVSS score (v4.0, v3.1, v3.0, v2.0) with its vector and scorer, CWE weaknesses, whether it "
        "is in CISA's Known Exploited Vulnerabilities catalogue (with dates and required action), "
        "vulnerable CPEs and references."
    ),
    request_model=CveLookupRequest,
    response_model=CveRecord,
    handler=cve_lookup,
    timeout_s=30.0,
    example={"cve": "CVE-2024-3400"},
)
