"""Input rules and small pieces every security endpoint shares."""

from __future__ import annotations

import ipaddress
import re
from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, Field

from arkgate.catalog.context import CallContext
from arkgate.outbound.guard import looks_numeric
from arkgate.timestamps import format_instant, from_naive_utc

MAX_DOMAIN_CHARS = 253
_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
_TLD = re.compile(r"^(?:[a-z]{2,63}|xn--[a-z0-9-]{1,59})$")

AI_SUMMARY_NOTE = "AI summaries are not available yet on this gateway; the ai_summary flag was ignored at no cost."


def validate_domain(value: str) -> str:
    """A registrable-looking DNS name: ASCII, LDH labels, no trailing dot, not an IP address."""
    text = value.strip()
    if not text:
        raise ValueError("domain must not be empty")
    if len(text) > MAX_DOMAIN_CHARS:
        raise ValueError(f"domain must be at most {MAX_DOMAIN_CHARS} characters")
    if "://" in text or "/" in text or "@" in text:
        raise ValueError("give a bare domain name such as example.com, not a URL or address")
    if not text.isascii():
        raise ValueError("domain must be ASCII: write internationalised names in their punycode (xn--) form")
    text = text.lower()
    if text.endswith("."):
        raise ValueError("domain must not end with a dot")
    try:
        ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        pass
    else:
        raise ValueError("expected a domain name, got an IP address")
    if looks_numeric(text):
        raise ValueError("expected a domain name, got something that reads as an IP address")
    labels = text.split(".")
    if len(labels) < 2:
        raise ValueError("domain needs at least two labels, such as example.com")
    for label in labels:
        if not _LABEL.match(label):
            raise ValueError(f"label {label!r} is not valid: use letters, digits and inner hyphens, 1 to 63 characters")
    if not _TLD.match(labels[-1]):
        raise ValueError(f"{labels[-1]!r} is not a valid top-level domain")
    return text


Domain = Annotated[
    str,
    Field(description="A domain name such as example.com (ASCII; IDNs in xn-- form).", examples=["example.com"]),
    AfterValidator(validate_domain),
]


class DomainRequest(BaseModel):
    domain: Domain
    ai_summary: bool = Field(
        default=False, description="Accepted for ArkAPI compatibility; AI summaries are not available yet (no cost)."
    )


def note_ai_summary(request: BaseModel, ctx: CallContext) -> None:
    """Explain an ignored ``ai_summary`` flag in the envelope's ``notes`` (it costs nothing)."""
    if getattr(request, "ai_summary", False) and AI_SUMMARY_NOTE not in ctx.notes:
        ctx.notes.append(AI_SUMMARY_NOTE)


def iso(moment: datetime | None) -> str | None:
    """The one wire form of an instant; a naive one (parsed from WHOIS or RDAP text) is taken as UTC."""
    return None if moment is None else format_instant(from_naive_utc(moment))
