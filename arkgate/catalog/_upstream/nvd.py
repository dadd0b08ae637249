"""The NVD CVE API 2.0: fetching and normalising CVE records (shared by cve-lookup and cve-search)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field, computed_field

from arkgate.catalog._upstream.errors import upstream_errors
from arkgate.catalog._upstream.http import get_json
from arkgate.catalog._upstream.retry import RetryPolicy
from arkgate.catalog._upstream.timefmt import parse_iso
from arkgate.catalog.context import CallContext

NAME = "NVD"
CVE_ID = re.compile(r"^CVE-(\d{4})-(\d{4,19})$")
NVD_DETAIL = "https://nvd.nist.gov/vuln/detail/"
MAX_CPES = 50
MAX_REFERENCES = 50

# Order in which a headline score is chosen: the widely used v3.1 first, then the rest.
_HEADLINE_ORDER = ("cvssMetricV31", "cvssMetricV30", "cvssMetricV40", "cvssMetricV2")
_VERSION_KEYS = {"cvssMetricV40": "v4_0", "cvssMetricV31": "v3_1", "cvssMetricV30": "v3_0", "cvssMetricV2": "v2_0"}


def normalise_cve_id(value: str) -> str:
    """Upper-case ``cve-2024-3400`` and check its form; raises ValueError with a readable message."""
    candidate = value.strip().upper()
    match = CVE_ID.fullmatch(candidate)
    if match is None:
        raise ValueError("cve must look like CVE-2024-3400 (CVE-year-number, at least 4 digits)")
    if int(match.group(1)) < 1999:
        raise ValueError("CVE ids start in 1999")
    return candidate


class CvssScore(BaseModel):
    version: str
    score: float | None
    severity: str | None
    vector: str | None
    source: str | None = Field(default=None, description="Who scored it (NVD or the CNA).")
    type: str | None = Field(default=None, description="Primary (NVD) or Secondary (CNA).")


class Reference(BaseModel):
    url: str
    source: str | None = None
    tags: list[str] = Field(default_factory=list)


class KevEntry(BaseModel):
    """CISA Known Exploited Vulnerabilities catalogue entry, as carried by NVD."""

    date_added: str | None
    action_due: str | None
    required_action: str | None
    name: str | None


class CveRecord(BaseModel):
    cve_id: str
    description: str | None
    status: str | None = Field(default=None, description="NVD analysis status, e.g. Analyzed, Awaiting Analysis.")
    published_at: datetime | None
    last_modified_at: datetime | None
    severity: str | None = Field(default=None, description="Headline severity (CVSS v3.1, else v3.0, v4.0, v2.0).")
    cvss_score: float | None = None
    cvss_version: str | None = None
    cvss_vector: str | None = None
    cvss: dict[str, CvssScore] = Field(default_factory=dict, description="Best score per CVSS version.")
    cwes: list[str] = Field(default_factory=list, description="Weakness ids, e.g. CWE-77.")
    has_kev: bool = Field(default=False, description="Listed in CISA's Known Exploited Vulnerabilities catalogue.")
    kev: KevEntry | None = None
    affected_cpes: list[str] = Field(default_factory=list, description="Vulnerable CPE match criteria (first 50).")
    reference_details: list[Reference] = Field(default_factory=list, description="References with source and tags.")
    primary_reference_url: str | None = None
    nvd_url: str
    # ArkAPI's fields: NVD's own timestamps as it sends them, and the names below
    published: str = Field(default="", description="NVD's 'published' timestamp, as NVD writes it.")
    last_modified: str = Field(default="", description="NVD's 'lastModified' timestamp, as NVD writes it.")

    @computed_field  # type: ignore[prop-decorator]
    @property
    def references(self) -> list[str]:
        return [r.url for r in self.reference_details]

    @computed_field  # type: ignore[prop-decorator]
    @property
    def found(self) -> bool:
        return True  # an unknown id is a 404 here (docs/arkapi-compatibility.md)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def source(self) -> str:
        return "NVD"

    @computed_field  # type: ignore[prop-decorator]
    @property
    def vulnerability_status(self) -> str:
        return self.status or ""

    @computed_field  # type: ignore[prop-decorator]
    @property
    def kev_added(self) -> str:
        return (self.kev.date_added if self.kev else None) or ""

    @computed_field  # type: ignore[prop-decorator]
    @property
    def required_action(self) -> str:
        return (self.kev.required_action if self.kev else None) or ""


def _score(metric: dict[str, Any]) -> CvssScore:
    data = metric.get("cvssData") or {}
    # v2 keeps baseSeverity beside cvssData; v3.x and v4.0 inside it.
    severity = data.get("baseSeverity") or metric.get("baseSeverity")
    score = data.get("baseScore")
    return CvssScore(
        version=str(data.get("version") or ""),
        score=float(score) if score is not None else None,
        severity=str(severity).upper() if severity else None,
        vector=data.get("vectorString"),
        source=metric.get("source"),
        type=metric.get("type"),
    )


def _best(metrics: list[dict[str, Any]]) -> CvssScore | None:
    if not metrics:
        return None
    primary = [m for m in metrics if m.get("type") == "Primary"]
    return _score((primary or metrics)[0])


def _cpes(configurations: list[dict[str, Any]]) -> list[str]:
    found: list[str] = []
    for config in configurations or []:
        for node in config.get("nodes") or []:
            for match in node.get("cpeMatch") or []:
                if match.get("vulnerable") and match.get("criteria"):
                    found.append(str(match["criteria"]))
    return list(dict.fromkeys(found))[:MAX_CPES]


def parse_cve(cve: dict[str, Any]) -> CveRecord:
    """One ``vulnerabilities[].cve`` object of an NVD 2.0 answer, normalised."""
    cve_id = str(cve["id"])
    descriptions = cve.get("descriptions") or []
    english = next((d.get("value") for d in descriptions if d.get("lang") == "en"), None)
    metrics = cve.get("metrics") or {}
    scores: dict[str, CvssScore] = {}
    for key, label in _VERSION_KEYS.items():
        best = _best(metrics.get(key) or [])
        if best is not None:
            scores[label] = best
    headline = next((scores[_VERSION_KEYS[key]] for key in _HEADLINE_ORDER if _VERSION_KEYS[key] in scores), None)
    cwes: list[str] = []
    for weakness in cve.get("weaknesses") or []:
        for description in weakness.get("description") or []:
            value = description.get("value")
            if value:
                cwes.append(str(value))
    references = [
        Reference(url=str(r["url"]), source=r.get("source"), tags=list(r.get("tags") or []))
        for r in (cve.get("references") or [])
        if r.get("url")
    ][:MAX_REFERENCES]
    advisory = next((r.url for r in references if "Vendor Advisory" in r.tags), None)
    has_kev = bool(cve.get("cisaExploitAdd"))
    return CveRecord(
        cve_id=cve_id,
        description=english,
        status=cve.get("vulnStatus"),
        published_at=parse_iso(cve.get("published")),
        last_modified_at=parse_iso(cve.get("lastModified")),
        severity=headline.severity if headline else None,
        cvss_score=headline.score if headline else None,
        cvss_version=headline.version if headline else None,
        cvss_vector=headline.vector if headline else None,
        cvss=scores,
        cwes=list(dict.fromkeys(cwes)),
        has_kev=has_kev,
        kev=KevEntry(
            date_added=cve.get("cisaExploitAdd"),
            action_due=cve.get("cisaActionDue"),
            required_action=cve.get("cisaRequiredAction"),
            name=cve.get("cisaVulnerabilityName"),
        )
        if has_kev
        else None,
        affected_cpes=_cpes(cve.get("configurations") or []),
        reference_details=references,
        published=str(cve.get("published") or ""),
        last_modified=str(cve.get("lastModified") or ""),
        primary_reference_url=advisory or (references[0].url if references else None),
        nvd_url=NVD_DETAIL + cve_id,
    )


async def query(params: dict[str, str | int], ctx: CallContext) -> tuple[int, list[CveRecord]]:
    """One NVD 2.0 request; returns (totalResults, records). The API key goes in a header."""
    s = ctx.settings
    headers = {}
    if s.nvd_api_key is not None:
        headers["apiKey"] = s.nvd_api_key.get_secret_value()
    _, body = await get_json(
        ctx.services.http,
        NAME,
        s.nvd_url,
        params=params,
        headers=headers,
        timeout_s=s.nvd_timeout_s,
        retry=RetryPolicy.from_settings(s),
    )
    with upstream_errors(NAME):
        total = int(body.get("totalResults") or 0)
        records = [parse_cve(item["cve"]) for item in body.get("vulnerabilities") or []]
        return total, records
