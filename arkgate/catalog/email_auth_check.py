"""email-auth-check: SPF, DMARC, DKIM, MX, MTA-STS, TLS-RPT and BIMI of a domain, graded A to F.

SPF and DMARC are parsed and validated by checkdmarc (run in a worker thread, it
is synchronous) against the configured nameservers; the other records are read
with the async resolver. The MTA-STS policy file is fetched through the outbound
guard; checkdmarc's own HTTP fetches (MTA-STS, BIMI logos) are never used, since
they would bypass it.
"""

from __future__ import annotations

import asyncio
import base64
import re
from typing import Any, Literal

import checkdmarc.dmarc
import checkdmarc.spf
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import load_der_public_key
from pydantic import BaseModel, Field, computed_field, field_validator

from arkgate.catalog._security.common import DomainRequest, note_ai_summary
from arkgate.catalog._security.dnsutil import query, require_existing, txt_values
from arkgate.catalog.context import CallContext
from arkgate.catalog.registry import Endpoint
from arkgate.errors import ArkgateError, UpstreamError, UpstreamTimeoutError
from arkgate.outbound.guard import get_guard
from arkgate.outbound.resolver import make_resolver, nameservers

DKIM_SELECTORS = (
    "default", "google", "selector1", "selector2", "k1", "k2", "s1", "s2",
    "dkim", "mail", "smtp", "mx", "fm1", "zoho", "mandrill", "everlytickey1",
)  # fmt: skip
_RESOLVER_LEAK = re.compile(r"Server Do53:\S+|\b\d{1,3}(?:\.\d{1,3}){3}@\d+")

Severity = Literal["critical", "high", "medium", "low", "info"]


class Finding(BaseModel):
    severity: Severity
    message: str


class SpfResult(BaseModel):
    present: bool
    record: str | None = None
    valid: bool = False
    all_policy: str | None = Field(
        default=None, description="fail (-all), softfail (~all), neutral (?all) or pass (+all)."
    )
    dns_lookups: int | None = Field(
        default=None, description="DNS-querying mechanisms counted against the limit of 10."
    )
    void_lookups: int | None = None
    mechanisms: list[dict[str, Any]] = []
    error: str | None = None
    warnings: list[str] = []

    @computed_field(description="ArkAPI's mode: enforced, softfail, neutral, permissive or present.")  # type: ignore[prop-decorator]
    @property
    def mode(self) -> str:
        if not self.record:
            return ""
        words = self.record.lower().split()
        named = {"-all": "enforced", "~all": "softfail", "?all": "neutral", "+all": "permissive", "all": "permissive"}
        return next((named[w] for w in words if w in named), "present")


class DmarcResult(BaseModel):
    present: bool
    record: str | None = None
    valid: bool = False
    location: str | None = Field(
        default=None, description="Domain the record was found at (the base domain, if inherited)."
    )
    policy: str | None = None
    subdomain_policy: str | None = None
    rua: list[str] = []
    ruf: list[str] = []
    adkim: str | None = None
    aspf: str | None = None
    error: str | None = None
    warnings: list[str] = []

    @computed_field(description="ArkAPI's mode: reject, quarantine, monitoring (p=none) or present.")  # type: ignore[prop-decorator]
    @property
    def mode(self) -> str:
        if not self.record:
            return ""
        policy = _tags(self.record).get("p", "").lower()
        return {"reject": "reject", "quarantine": "quarantine", "none": "monitoring"}.get(policy, "present")


class DkimKey(BaseModel):
    selector: str
    record: str
    key_type: str | None = None
    key_bits: int | None = None
    revoked: bool = False
    testing: bool = False


class DkimResult(BaseModel):
    present: bool
    selectors_checked: list[str]
    keys: list[DkimKey] = []

    @computed_field(description="ArkAPI's: every selector a DKIM key was found under.")  # type: ignore[prop-decorator]
    @property
    def found_selectors(self) -> list[str]:
        return list(dict.fromkeys(k.selector for k in self.keys))

    @computed_field(description="ArkAPI's: the first selector a key was found under.")  # type: ignore[prop-decorator]
    @property
    def selector_used(self) -> str:
        return self.keys[0].selector if self.keys else ""

    @computed_field(description="ArkAPI's: the DKIM record per selector found.")  # type: ignore[prop-decorator]
    @property
    def records(self) -> dict[str, str]:
        found: dict[str, str] = {}
        for key in self.keys:
            found.setdefault(key.selector, key.record)
        return found


_SELECTOR = re.compile(r"[a-z0-9_-]{1,63}")


class EmailAuthRequest(DomainRequest):
    selector: str | None = Field(
        default=None,
        description="DKIM selector to check instead of the common ones (letters, digits, '-', '_'; as ArkAPI).",
        examples=["google"],
    )

    @field_validator("selector")
    @classmethod
    def _selector(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        value = value.strip().lower()
        if not _SELECTOR.fullmatch(value):
            raise ValueError("invalid DKIM selector")
        return value


class MxResult(BaseModel):
    present: bool
    hosts: list[str] = []
    null_mx: bool = Field(default=False, description="'0 .': the domain says it accepts no mail (RFC 7505).")


class MtaStsResult(BaseModel):
    present: bool
    record: str | None = None
    id: str | None = None
    policy_mode: str | None = None
    policy_mx: list[str] = []
    policy_max_age: int | None = None
    policy_error: str | None = None


class TlsRptResult(BaseModel):
    present: bool
    record: str | None = None
    rua: list[str] = []


class BimiResult(BaseModel):
    present: bool
    record: str | None = None
    logo_url: str | None = None
    authority_url: str | None = None


class EmailAuthResponse(BaseModel):
    domain: str
    grade: Literal["A", "B", "C", "D", "E", "F"]
    score: int = Field(..., ge=0, le=100)
    mx: MxResult
    spf: SpfResult
    dmarc: DmarcResult
    dkim: DkimResult
    mta_sts: MtaStsResult
    tls_rpt: TlsRptResult
    bimi: BimiResult
    findings: list[Finding]
    recommendations: list[str]


def _clean(text: str | None) -> str | None:
    """checkdmarc messages name the resolver's address; callers need not see it."""
    return _RESOLVER_LEAK.sub("the resolver", text) if text else text


def _tags(record: str) -> dict[str, str]:
    tags: dict[str, str] = {}
    for part in record.split(";"):
        key, sep, value = part.strip().partition("=")
        if sep:
            tags[key.strip().lower()] = value.strip()
    return tags


def _spf(raw: dict[str, Any]) -> SpfResult:
    record = raw.get("record")
    parsed = raw.get("parsed") or {}
    return SpfResult(
        present=bool(record),
        record=record,
        valid=bool(raw.get("valid")),
        all_policy=parsed.get("all"),
        dns_lookups=raw.get("dns_lookups"),
        void_lookups=raw.get("void_dns_lookups"),
        mechanisms=[{k: v for k, v in m.items() if k != "parsed"} for m in parsed.get("mechanisms", [])],
        error=_clean(raw.get("error")),
        warnings=[_clean(w) or "" for w in raw.get("warnings", [])],
    )


def _dmarc(raw: Any) -> DmarcResult:
    data: dict[str, Any] = dict(raw)
    record = data.get("record")
    tags = data.get("tags") or {}

    def tag(name: str) -> Any:
        return (tags.get(name) or {}).get("value")

    def uris(name: str) -> list[str]:
        return [f"{u.get('scheme')}:{u.get('address')}" for u in (tag(name) or []) if isinstance(u, dict)]

    error = data.get("error")
    return DmarcResult(
        present=bool(record),
        record=record,
        valid=bool(data.get("valid")),
        location=data.get("location"),
        policy=tag("p"),
        subdomain_policy=tag("sp"),
        rua=uris("rua"),
        ruf=uris("ruf"),
        adkim=tag("adkim"),
        aspf=tag("aspf"),
        error=_clean(error) if record else ("no DMARC record found" if error else None),
        warnings=[_clean(w) or "" for w in data.get("warnings", [])],
    )


def _dkim_key(selector: str, record: str) -> DkimKey:
    tags = _tags(record)
    key = DkimKey(selector=selector, record=record, testing="y" in tags.get("t", "").split(":"))
    material = re.sub(r"\s+", "", tags.get("p", ""))
    if not material:
        return key.model_copy(update={"revoked": True})
    try:
        public = load_der_public_key(base64.b64decode(material))
    except ValueError:
        return key.model_copy(update={"key_type": tags.get("k", "rsa")})
    if isinstance(public, rsa.RSAPublicKey):
        return key.model_copy(update={"key_type": "rsa", "key_bits": public.key_size})
    if isinstance(public, ec.EllipticCurvePublicKey):
        return key.model_copy(update={"key_type": "ec", "key_bits": public.curve.key_size})
    if isinstance(public, ed25519.Ed25519PublicKey):
        return key.model_copy(update={"key_type": "ed25519", "key_bits": 256})
    return key


async def _mta_sts(domain: str, ctx: CallContext) -> MtaStsResult:
    resolver = ctx.services.get(make_resolver)
    records = [t for t in await txt_values(resolver, f"_mta-sts.{domain}") if t.lower().startswith("v=stsv1")]
    if not records:
        return MtaStsResult(present=False)
    result = MtaStsResult(present=True, record=records[0], id=_tags(records[0]).get("id"))
    port = ctx.settings.intel_https_port
    url = f"https://mta-sts.{domain}{'' if port == 443 else f':{port}'}/.well-known/mta-sts.txt"
    try:
        fetched = await ctx.services.get(get_guard).fetch(url, max_bytes=64_000, follow_redirects=False)
    except ArkgateError as exc:
        return result.model_copy(update={"policy_error": f"policy not fetched: {exc.message}"})
    if fetched.status_code != 200:
        return result.model_copy(update={"policy_error": f"policy URL answered HTTP {fetched.status_code}"})
    policy: dict[str, Any] = {"mx": []}
    for line in fetched.text.splitlines():
        key, _, value = line.partition(":")
        key, value = key.strip().lower(), value.strip()
        if key == "mx":
            policy["mx"].append(value)
        elif key in ("mode", "max_age"):
            policy[key] = value
    max_age = policy.get("max_age")
    return result.model_copy(
        update={
            "policy_mode": policy.get("mode"),
            "policy_mx": policy["mx"],
            "policy_max_age": int(max_age) if max_age and max_age.isdigit() else None,
        }
    )


def _grade(score: int) -> Literal["A", "B", "C", "D", "E", "F"]:
    for floor, grade in ((90, "A"), (75, "B"), (60, "C"), (45, "D"), (30, "E")):
        if score >= floor:
            return grade  # type: ignore[return-value]
    return "F"


def _assess(r: dict[str, Any]) -> tuple[int, list[Finding], list[str]]:
    spf: SpfResult = r["spf"]
    dmarc: DmarcResult = r["dmarc"]
    dkim: DkimResult = r["dkim"]
    findings: list[Finding] = []
    advice: list[str] = []
    score = 0
    if not spf.present:
        findings.append(
            Finding(severity="high", message="No SPF record: anyone can claim to send mail for the domain.")
        )
        advice.append("Publish an SPF record listing your senders and ending in -all.")
    elif not spf.valid:
        findings.append(Finding(severity="high", message=f"SPF record is invalid: {spf.error}"))
        advice.append("Fix the SPF record (at most 10 DNS-querying mechanisms, valid syntax).")
        score += 5
    else:
        points = {"fail": 30, "softfail": 25, "neutral": 10, "pass": 0}.get(spf.all_policy or "", 15)
        score += points
        if spf.all_policy == "pass":
            findings.append(
                Finding(severity="critical", message="SPF ends in +all: every server on the internet is authorised.")
            )
            advice.append("Replace +all with -all (or ~all while testing).")
        elif spf.all_policy == "neutral":
            findings.append(Finding(severity="medium", message="SPF ends in ?all, which protects nothing."))
    if not dmarc.present:
        findings.append(Finding(severity="high", message="No DMARC record: receivers get no policy for failed mail."))
        advice.append("Publish _dmarc with p=quarantine or p=reject and a rua address for reports.")
    else:
        score += {"reject": 40, "quarantine": 32, "none": 12}.get(dmarc.policy or "", 5)
        if dmarc.policy == "none":
            findings.append(
                Finding(severity="medium", message="DMARC policy is p=none: failing mail is still delivered.")
            )
            advice.append("Move DMARC from p=none to p=quarantine, then p=reject.")
        if not dmarc.rua:
            findings.append(Finding(severity="low", message="DMARC has no rua address: no aggregate reports are sent."))
            advice.append("Add rua=mailto:... to DMARC to receive aggregate reports.")
    usable = [k for k in dkim.keys if not k.revoked]
    if not usable:
        findings.append(
            Finding(
                severity="medium", message="No DKIM key found under the common selectors (it may use another selector)."
            )
        )
    else:
        weak = [k for k in usable if k.key_type == "rsa" and (k.key_bits or 0) < 2048]
        score += 10 if weak else 20
        for key in weak:
            findings.append(
                Finding(
                    severity="medium", message=f"DKIM selector {key.selector} uses a weak {key.key_bits}-bit RSA key."
                )
            )
            advice.append(f"Rotate DKIM selector {key.selector} to a 2048-bit RSA or Ed25519 key.")
    if r["mta_sts"].present:
        score += 5
    else:
        advice.append("Consider MTA-STS to require TLS for mail delivered to you.")
    if r["bimi"].present:
        score += 5
    if not r["mx"].present:
        findings.append(Finding(severity="info", message="No MX records: the domain does not receive mail directly."))
    return min(score, 100), findings, advice


async def check(domain: str, ctx: CallContext, selector: str | None = None) -> EmailAuthResponse:
    resolver = ctx.services.get(make_resolver)
    servers = nameservers(ctx.settings) or None
    timeout = min(ctx.settings.outbound_timeout_s, 5.0)

    spf_task = asyncio.to_thread(checkdmarc.spf.check_spf, domain, nameservers=servers, timeout=timeout)
    dmarc_task = asyncio.to_thread(checkdmarc.dmarc.check_dmarc, domain, nameservers=servers, timeout=timeout)
    selectors = (selector,) if selector else DKIM_SELECTORS  # ArkAPI checks only the given selector
    dkim_tasks = [txt_values(resolver, f"{s}._domainkey.{domain}") for s in selectors]
    try:
        # The two TXT questions checkdmarc asks too: answered through ``query``, a resolver failure for
        # them is a refunded 502/504 instead of an SPF or DMARC "error" graded against the domain.
        spf_raw, dmarc_raw, _, _, mx, tlsrpt, bimi, mta_sts, *dkim_txt = await asyncio.gather(
            spf_task,
            dmarc_task,
            query(resolver, domain, "TXT"),
            query(resolver, f"_dmarc.{domain}", "TXT"),
            query(resolver, domain, "MX"),
            txt_values(resolver, f"_smtp._tls.{domain}"),
            txt_values(resolver, f"default._bimi.{domain}"),
            _mta_sts(domain, ctx),
            *dkim_tasks,
        )
    except checkdmarc.DNSException as exc:
        raise UpstreamError("DNS lookups for the e-mail records failed") from exc
    if "timed out" in str(spf_raw.get("error", "")).lower() and "timed out" in str(dmarc_raw.get("error", "")).lower():
        raise UpstreamTimeoutError("the DNS resolver did not answer in time")

    mx_hosts = [r.data["exchange"] for r in mx.records if r.data]
    keys = [
        _dkim_key(selector, txt)
        for selector, values in zip(selectors, dkim_txt, strict=True)
        for txt in values
        if txt.lower().startswith("v=dkim1") or "p=" in txt
    ]
    tls_records = [t for t in tlsrpt if t.lower().startswith("v=tlsrptv1")]
    bimi_records = [t for t in bimi if t.lower().startswith("v=bimi1")]
    parts: dict[str, Any] = {
        "mx": MxResult(present=bool(mx_hosts), hosts=mx_hosts, null_mx=mx_hosts == ["."]),
        "spf": _spf(spf_raw),
        "dmarc": _dmarc(dmarc_raw),
        "dkim": DkimResult(present=any(not k.revoked for k in keys), selectors_checked=list(selectors), keys=keys),
        "mta_sts": mta_sts,
        "tls_rpt": TlsRptResult(
            present=bool(tls_records),
            record=tls_records[0] if tls_records else None,
            rua=[u.strip() for u in _tags(tls_records[0]).get("rua", "").split(",") if u.strip()]
            if tls_records
            else [],
        ),
        "bimi": BimiResult(
            present=bool(bimi_records),
            record=bimi_records[0] if bimi_records else None,
            logo_url=_tags(bimi_records[0]).get("l") or None if bimi_records else None,
            authority_url=_tags(bimi_records[0]).get("a") or None if bimi_records else None,
        ),
    }
    score, findings, advice = _assess(parts)
    return EmailAuthResponse(
        domain=domain, grade=_grade(score), score=score, findings=findings, recommendations=advice, **parts
    )


async def handler(request: EmailAuthRequest, ctx: CallContext) -> EmailAuthResponse:
    note_ai_summary(request, ctx)
    await require_existing(ctx.services.get(make_resolver), request.domain)  # the shared DNS rule
    return await check(request.domain, ctx, request.selector)


ENDPOINT = Endpoint(
    id="email-auth-check",
    price_sats=4,
    category="security",
    summary="E-mail authentication audit (SPF, DKIM, DMARC) with a grade",
    description=(
        "Parses and validates a domain's SPF (with its DNS lookup count) and DMARC (policy, report "
        "addresses), finds DKIM keys under common selectors, and reads MX, MTA-STS, TLS-RPT and BIMI, then "
        "grades the posture from A to F with findings and recommendations."
    ),
    request_model=EmailAuthRequest,
    response_model=EmailAuthResponse,
    handler=handler,
    timeout_s=30,
    example={"domain": "example.com"},
)
