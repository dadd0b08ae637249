"""Security-header audit shared by the headers and domain-intel endpoints."""

from __future__ import annotations

import re
from typing import Literal

import httpx
from pydantic import BaseModel, Field

from arkgate.outbound.guard import FetchResult

HSTS_GOOD_MAX_AGE_S = 15_552_000  # 180 days, the usual minimum for preload-grade HSTS
Grade = Literal["A", "B", "C", "D", "E", "F"]
AUDITED = (
    "strict-transport-security",
    "content-security-policy",
    "content-security-policy-report-only",
    "x-frame-options",
    "x-content-type-options",
    "referrer-policy",
    "permissions-policy",
    "cross-origin-opener-policy",
    "cross-origin-resource-policy",
    "cross-origin-embedder-policy",
    "server",
    "x-powered-by",
)


class HeaderCheck(BaseModel):
    present: bool
    value: str | None = None
    ok: bool = Field(..., description="Present with a value that protects.")
    points: int
    max_points: int
    note: str = ""


class CookieCheck(BaseModel):
    name: str
    secure: bool
    http_only: bool
    same_site: str | None = None
    issues: list[str] = []


class Hop(BaseModel):
    url: str
    status_code: int
    location: str


class Finding(BaseModel):
    severity: Literal["critical", "high", "medium", "low", "info"]
    message: str


class SecurityHeader(BaseModel):
    header: str
    value: str
    present: bool
    rating: str = Field(..., description="good, warning, bad or info (ArkAPI's ratings).")
    note: str


# The HTTP header behind each of arkgate's check names, for ArkAPI's security_headers list.
CHECK_HEADERS = {
    "hsts": "Strict-Transport-Security",
    "csp": "Content-Security-Policy",
    "x_frame_options": "X-Frame-Options",
    "x_content_type_options": "X-Content-Type-Options",
    "referrer_policy": "Referrer-Policy",
    "permissions_policy": "Permissions-Policy",
    "coop": "Cross-Origin-Opener-Policy",
    "corp": "Cross-Origin-Resource-Policy",
}


def _rating(check: HeaderCheck) -> str:
    if check.ok:
        return "good"
    return "warning" if check.present else "bad"


class HeadersReport(BaseModel):
    url: str
    final_url: str
    status_code: int
    https: bool
    score: int = Field(..., ge=0, le=100)
    grade: Grade
    headers: dict[str, str] = Field(..., description="The audited headers the final response carried.")
    checks: dict[str, HeaderCheck]
    missing: list[str]
    cookies: list[CookieCheck]
    redirects: list[Hop]
    findings: list[Finding]
    recommendations: list[str]
    # ArkAPI's fields (see docs/arkapi-compatibility.md)
    server: str = Field(default="", description="The Server header, empty when absent.")
    all_headers: dict[str, str] = Field(
        default_factory=dict, description="Every header of the final response (repeats joined with '; ')."
    )
    security_headers: list[SecurityHeader] = Field(
        default_factory=list, description="ArkAPI's per-header verdicts: header, value, present, rating, note."
    )


def grade_of(score: int) -> Grade:
    for floor, grade in ((90, "A"), (75, "B"), (60, "C"), (45, "D"), (30, "E")):
        if score >= floor:
            return grade  # type: ignore[return-value]
    return "F"


def _directives(value: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in value.split(";"):
        name, _, rest = part.strip().partition(" ")
        if name:
            out[name.lower()] = rest.strip()
    return out


def _cookie(raw: str, https: bool) -> CookieCheck:
    name = raw.split("=", 1)[0].strip()
    attrs = [a.strip().lower() for a in raw.split(";")[1:]]
    flags = {a.split("=", 1)[0]: (a.split("=", 1)[1] if "=" in a else "") for a in attrs}
    same_site = flags.get("samesite") or None
    issues = []
    if "secure" not in flags and https:
        issues.append("missing Secure: the cookie can leak over plain HTTP")
    if "httponly" not in flags:
        issues.append("missing HttpOnly: scripts can read it")
    if same_site is None:
        issues.append("no SameSite attribute")
    elif same_site == "none" and "secure" not in flags:
        issues.append("SameSite=None without Secure is rejected by browsers")
    return CookieCheck(
        name=name, secure="secure" in flags, http_only="httponly" in flags, same_site=same_site, issues=issues
    )


def audit(result: FetchResult, requested_url: str) -> HeadersReport:
    """Score the final response of a guarded fetch."""
    h: httpx.Headers = result.headers
    https = result.url.startswith("https://")
    checks: dict[str, HeaderCheck] = {}
    findings: list[Finding] = []
    advice: list[str] = []

    hsts = h.get("strict-transport-security")
    if hsts and https:
        d = _directives(hsts.replace("=", " "))
        age_text = d.get("max-age", "0").strip('"')
        age = int(age_text) if age_text.isdigit() else 0
        good = age >= HSTS_GOOD_MAX_AGE_S
        note = f"max-age {age} s" + (", includeSubDomains" if "includesubdomains" in d else "")
        note += ", preload" if "preload" in d else ""
        checks["hsts"] = HeaderCheck(
            present=True, value=hsts, ok=good, points=20 if good else 10, max_points=20, note=note
        )
        if not good:
            advice.append("Raise HSTS max-age to at least 15552000 (180 days).")
    else:
        note = "ignored by browsers over plain HTTP" if hsts else "missing"
        checks["hsts"] = HeaderCheck(present=bool(hsts), value=hsts, ok=False, points=0, max_points=20, note=note)
        advice.append("Serve the site over HTTPS with Strict-Transport-Security: max-age=31536000; includeSubDomains.")

    csp = h.get("content-security-policy")
    csp_ro = h.get("content-security-policy-report-only")
    if csp:
        d = _directives(csp)
        scripts = d.get("script-src", d.get("default-src", ""))
        weak = "'unsafe-inline'" in scripts or "'unsafe-eval'" in scripts or scripts.strip() in ("*", "")
        note = "allows inline or eval'd scripts" if weak else "restricts scripts"
        checks["csp"] = HeaderCheck(
            present=True, value=csp, ok=not weak, points=10 if weak else 20, max_points=20, note=note
        )
        if weak:
            findings.append(
                Finding(
                    severity="medium", message="Content-Security-Policy allows 'unsafe-inline'/'unsafe-eval' scripts."
                )
            )
    else:
        points = 5 if csp_ro else 0
        checks["csp"] = HeaderCheck(
            present=False, value=csp_ro, ok=False, points=points, max_points=20,
            note="report-only: nothing is enforced" if csp_ro else "missing",
        )  # fmt: skip
        advice.append("Add a Content-Security-Policy; start from default-src 'self'.")
    frame_ancestors = "frame-ancestors" in (csp or "").lower()

    xfo = h.get("x-frame-options")
    xfo_ok = (xfo or "").strip().upper() in ("DENY", "SAMEORIGIN") or frame_ancestors
    checks["x_frame_options"] = HeaderCheck(
        present=bool(xfo), value=xfo, ok=xfo_ok, points=10 if xfo_ok else 0, max_points=10,
        note="covered by CSP frame-ancestors" if frame_ancestors and not xfo else "",
    )  # fmt: skip
    if not xfo_ok:
        advice.append("Send X-Frame-Options: DENY (or CSP frame-ancestors) against clickjacking.")

    xcto = h.get("x-content-type-options")
    xcto_ok = (xcto or "").strip().lower() == "nosniff"
    checks["x_content_type_options"] = HeaderCheck(
        present=bool(xcto), value=xcto, ok=xcto_ok, points=10 if xcto_ok else 0, max_points=10
    )
    if not xcto_ok:
        advice.append("Send X-Content-Type-Options: nosniff.")

    rp = h.get("referrer-policy")
    rp_ok = bool(rp) and "unsafe-url" not in rp.lower() and rp.strip().lower() != "no-referrer-when-downgrade"
    checks["referrer_policy"] = HeaderCheck(
        present=bool(rp), value=rp, ok=rp_ok, points=10 if rp_ok else 0, max_points=10
    )
    if not rp_ok:
        advice.append("Send Referrer-Policy: strict-origin-when-cross-origin (or stricter).")

    pp = h.get("permissions-policy")
    checks["permissions_policy"] = HeaderCheck(
        present=bool(pp), value=pp, ok=bool(pp), points=10 if pp else 0, max_points=10
    )
    if not pp:
        advice.append("Send a Permissions-Policy disabling features the site does not use.")

    coop = h.get("cross-origin-opener-policy")
    coop_ok = (coop or "").strip().lower() in ("same-origin", "same-origin-allow-popups")
    checks["coop"] = HeaderCheck(present=bool(coop), value=coop, ok=coop_ok, points=5 if coop_ok else 0, max_points=5)
    corp = h.get("cross-origin-resource-policy")
    corp_ok = (corp or "").strip().lower() in ("same-origin", "same-site")
    checks["corp"] = HeaderCheck(present=bool(corp), value=corp, ok=corp_ok, points=5 if corp_ok else 0, max_points=5)

    cookies = [_cookie(raw, https) for raw in h.get_list("set-cookie")]
    bad_cookies = [c for c in cookies if c.issues]
    cookie_points = 10 if not cookies else round(10 * (len(cookies) - len(bad_cookies)) / len(cookies))
    checks["cookies"] = HeaderCheck(
        present=bool(cookies), ok=not bad_cookies, points=cookie_points, max_points=10,
        note=f"{len(cookies)} cookie(s), {len(bad_cookies)} with issues" if cookies else "no cookies set",
    )  # fmt: skip
    for cookie in bad_cookies:
        findings.append(Finding(severity="medium", message=f"Cookie {cookie.name}: {'; '.join(cookie.issues)}."))

    score = sum(c.points for c in checks.values())
    server = h.get("server", "")
    if re.search(r"\d", server):
        findings.append(Finding(severity="low", message=f"Server header discloses a version: {server}."))
        score -= 5
    if h.get("x-powered-by"):
        findings.append(Finding(severity="low", message=f"X-Powered-By discloses the stack: {h['x-powered-by']}."))
        score -= 5
    if not https:
        findings.append(Finding(severity="high", message="The final page is served over plain HTTP."))
    for key, check in checks.items():
        if not check.present and key != "cookies":
            findings.append(Finding(severity="info", message=f"Missing header: {key.replace('_', '-')}."))
    score = max(0, min(100, score))
    return HeadersReport(
        url=requested_url,
        final_url=result.url,
        status_code=result.status_code,
        https=https,
        score=score,
        grade=grade_of(score),
        headers={name: ", ".join(h.get_list(name)) for name in AUDITED if name in h},
        checks=checks,
        missing=[k for k, c in checks.items() if not c.present and k != "cookies"],
        cookies=cookies,
        redirects=[Hop(url=r.url, status_code=r.status_code, location=r.location) for r in result.redirects],
        findings=findings,
        recommendations=advice,
        server=h.get("server", ""),
        all_headers={name: "; ".join(h.get_list(name)) for name in dict.fromkeys(k.title() for k in h)},
        security_headers=[
            SecurityHeader(
                header=header,
                value=checks[key].value or "",
                present=checks[key].present,
                rating=_rating(checks[key]),
                note=checks[key].note or ("present" if checks[key].present else "missing"),
            )
            for key, header in CHECK_HEADERS.items()
            if key in checks
        ],
    )
