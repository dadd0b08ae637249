"""ArkAPI's response contract, transcribed from its Go handlers (PiHiker/arkapi, internal/handlers/*).

One entry per paid endpoint: the JSON fields of the ``data`` object as ArkAPI's server marshals
them, with their JSON types, nested objects included. The published ``openapi.json`` examples
disagree with the handlers in places; the handlers are what ArkAPI's clients see, so they win.

Spec language (a small one, so the table reads like the Go structs):

- ``"str"``, ``"int"``, ``"num"`` (int or float), ``"bool"``, ``"any"`` (any JSON value)
- ``["str"]``: a list of that spec; ``{...}``: an object with those fields
- ``Map(spec)``: an object whose values all match ``spec`` (Go ``map[string]T``)
- ``Nullable(spec)``: ``null`` or ``spec`` (a Go pointer without ``omitempty``)
- a field name ending in ``?`` is ``omitempty`` in Go: absent (or empty) is fine, but when present it
  has the type. A name without ``?`` must always be present.
- a name ending in ``~`` is ``omitempty`` in Go too, but arkgate always sends the key (possibly empty):
  issue 19 asked for these by name, so their absence is a regression.

arkgate may send more fields than these (it keeps its own, richer ones); it may never send fewer or
change a type.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Map:
    values: Any


@dataclass(frozen=True)
class Nullable:
    spec: Any


DNS_RECORD = {"name": "str", "ttl": "str", "type": "str", "value": "str"}
DNS = {"domain": "str", "records": Map([DNS_RECORD]), "raw?": "str"}
WHOIS = {
    "domain": "str",
    "registrar?": "str",
    "created_date?": "str",
    "expiry_date?": "str",
    "updated_date?": "str",
    "name_servers~": ["str"],
    "status?": ["str"],
    "parsed": Map("str"),
}
SSL = {
    "domain": "str",
    "valid": "bool",
    "issuer": "str",
    "subject": "str",
    "not_before": "str",
    "not_after": "str",
    "days_remaining": "int",
    "protocol": "str",
    "cipher_suite~": "str",
    "sans?": ["str"],
    "chain~": ["str"],
    "expired": "bool",
}
HEADERS = {
    "url": "str",
    "status_code": "int",
    "server~": "str",
    "security_headers": [{"header": "str", "value": "str", "present": "bool", "rating": "str", "note": "str"}],
    "score": "int",
    "grade": "str",
    "all_headers": Map("str"),
}
EMAIL_RECORD = {"present": "bool", "record?": "str", "mode~": "str"}
EMAIL_AUTH = {
    "domain": "str",
    "grade": "str",
    "spf": EMAIL_RECORD,
    "dmarc": EMAIL_RECORD,
    "dkim": {
        "present": "bool",
        "selector_used~": "str",
        "selectors_checked": ["str"],
        "found_selectors~": ["str"],
        "records~": Map("str"),
    },
    "recommendations?": ["str"],
}
IP = {
    "ip": "str",
    "country": "str",
    "country_code": "str",
    "region": "str",
    "city": "str",
    "lat": "num",
    "lon": "num",
    "isp": "str",
    "org": "str",
    "as": "str",
}
AI_USAGE = {"prompt_tokens": "int", "completion_tokens": "int", "total_tokens": "int"}
AI_CHAT = {"answer": "str", "model": "str", "usage?": AI_USAGE}

CONTRACT: dict[str, dict[str, Any]] = {
    "dns-lookup": DNS,
    "whois": WHOIS,
    "ssl-check": SSL,
    "headers": HEADERS,
    "weather": {
        "location": {"lat": "num", "lon": "num", "name?": "str"},
        # Open-Meteo's own "current" and "daily" objects, with the variables ArkAPI asks for
        "current": {
            "time": "str",
            "temperature_2m": "num",
            "relative_humidity_2m": "num",
            "apparent_temperature": "num",
            "precipitation": "num",
            "weather_code": "int",
            "wind_speed_10m": "num",
            "wind_direction_10m": "num",
        },
        "daily?": {
            "time": ["str"],
            "weather_code": ["int"],
            "temperature_2m_max": ["num"],
            "temperature_2m_min": ["num"],
            "precipitation_sum": ["num"],
            "sunrise": ["str"],
            "sunset": ["str"],
        },
    },
    "ip-lookup": IP,
    "email-auth-check": EMAIL_AUTH,
    "bitcoin-news": {
        "items": [{"title": "str", "link": "str", "source": "str", "published_at": "str", "summary?": "str"}]
    },
    "ai-chat": AI_CHAT,
    "ai-translate": {
        "text": "str",
        "translated_text": "str",
        "target_language": "str",
        "source_language": "str",
        "detected_language?": "str",
        "style": "str",
        "model": "str",
        "usage?": AI_USAGE,
    },
    "translate": {
        "text": "str",
        "translated_text": "str",
        "target_language": "str",
        "source_language": "str",
        "detected_language?": "str",
        "detected_confidence?": "int",
    },
    "axfr-check": {
        "domain": "str",
        "allowed": "bool",
        "explanation": "str",
        "nameservers_checked": ["str"],
        "successful_nameserver~": "str",
        "transfer_record_count": "int",
        "truncated~": "bool",
        "records~": Map([DNS_RECORD]),
    },
    "image-generate": {
        "prompt": "str",
        "width": "int",
        "height": "int",
        "steps": "int",
        "seed": "int",
        "mime_type": "str",
        "download_url": "str",
        "expires_at": "str",
    },
    "screenshot": {
        "url": "str",
        "final_url": "str",
        "width": "int",
        "height": "int",
        "mime_type": "str",
        "download_url": "str",
        "expires_at": "str",
    },
    "qr-generate": {"data": "str", "format": "str", "size": "int", "image_b64": "str", "data_uri": "str"},
    "bitcoin-address": {
        "address": "str",
        "valid": "bool",
        "type?": "str",
        "network?": "str",
        "format~": "str",
        "description~": "str",
        "balance": Nullable({"confirmed_sats": "int", "unconfirmed_sats": "int", "tx_count": "int"}),
        "cached": "bool",
    },
    "cve-search": {
        "query": "str",
        "results": [
            {
                "cve_id": "str",
                "nvd_url": "str",
                "primary_reference_url~": "str",
                "published~": "str",
                "last_modified~": "str",
                "description?": "str",
                "severity?": "str",
                "cvss_score?": "num",
                "has_kev": "bool",
            }
        ],
    },
    "prediction-market-search": {
        "query": "str",
        "platform": "str",
        "results": [
            {
                "market_id": "str",
                "event_id?": "str",
                "title": "str",
                "event_title?": "str",
                "platform": "str",
                "status": "str",
                "probability?": "num",
                "volume_usd?": "num",
                "close_time?": "str",
                "url?": "str",
            }
        ],
    },
    "cve-lookup": {
        "cve_id": "str",
        "found": "bool",
        "source": "str",
        "nvd_url?": "str",
        "primary_reference_url?": "str",
        "published~": "str",
        "last_modified~": "str",
        "vulnerability_status~": "str",
        "description?": "str",
        "severity?": "str",
        "cvss_score?": "num",
        "cvss_vector?": "str",
        "cwes?": ["str"],
        "references~": ["str"],
        "has_kev": "bool",
        "kev_added~": "str",
        "required_action~": "str",
    },
    "domain-intel": {
        "domain": "str",
        # ArkAPI omits it when not asked for; arkgate sends null with a reason (documented)
        "ai_summary~": Nullable(AI_CHAT),
        "registration?": {
            "registrar?": "str",
            "created_date?": "str",
            "updated_date?": "str",
            "expiry_date?": "str",
            "name_servers?": ["str"],
        },
        "providers?": {
            "registrar?": "str",
            "dns_provider?": "str",
            "mail_provider?": "str",
            "cdn_provider?": "str",
            "hosting_provider?": "str",
            "proxy_detected?": "bool",
            "behind_cloudflare?": "bool",
        },
        "network?": {
            "ip_count": "int",
            "asns?": ["str"],
            "organizations?": ["str"],
            "countries?": ["str"],
            "anycast_or_cdn?": "bool",
        },
        "security_txt?": {
            "present": "bool",
            "source_url?": "str",
            "canonical?": ["str"],
            "contacts?": ["str"],
            "emails?": ["str"],
            "policy?": ["str"],
            "hiring?": ["str"],
            "encryption?": ["str"],
            "acknowledgments?": ["str"],
            "preferred_languages?": ["str"],
            "csaf?": ["str"],
            "expires?": "str",
        },
        "robots_txt?": {
            "present": "bool",
            "source_url?": "str",
            "user_agents?": ["str"],
            "allow?": ["str"],
            "disallow?": ["str"],
            "sitemaps?": ["str"],
            "crawl_delay?": "str",
            "host?": "str",
        },
        "tech_fingerprint?": {
            "cms?": "str",
            "frontend?": "str",
            "ecommerce?": "str",
            "generator?": "str",
            "server?": "str",
            "detected?": ["str"],
            "final_url?": "str",
        },
        "http_behavior?": {
            "initial_url": "str",
            "final_url?": "str",
            "canonical_host?": "str",
            "redirect_count": "int",
            "redirect_chain?": ["str"],
            "status_chain?": ["int"],
            "https_redirect?": "bool",
            "www_redirect?": "bool",
        },
        "subdomains?": ["str"],
        "ct_subdomains~": ["str"],
        "findings?": ["str"],
        "recommendations?": ["str"],
        "cache?": {"cached": "bool", "ttl_seconds": "int", "expires_at": "str"},
        "dns?": DNS,
        "whois?": WHOIS,
        "ssl?": SSL,
        "headers?": HEADERS,
        "email_auth?": EMAIL_AUTH,
        "resolved_ips?": [IP],
        "errors?": Map("str"),
    },
    "domain-check": {
        "domain": "str",
        "available": "bool",
        "registrar?": "str",
        "created_date~": "str",
        "expiry_date?": "str",
        "name_servers~": ["str"],
    },
    "url-to-markdown": {"url": "str", "title": "str", "markdown": "str", "excerpt~": "str"},
    "btc-price": {
        "btc_usd": "str",
        "btc_eur": "str",
        "btc_gbp": "str",
        "btc_cad": "str",
        "btc_jpy": "str",
        "btc_aud": "str",
        "btc_chf": "str",
        "btc_cny": "str",
        "btc_hkd": "str",
        "btc_sgd": "str",
        "updated_at": "str",
    },
}

# ArkAPI's /v1/stats (cmd/arkapi/main.go): the landing page's public statistics.
STATS = {
    "calls_today": "int",
    "sats_today": "int",
    "active_sessions": "int",
    "endpoint_breakdown": Map("int"),
    "hour_labels": ["str"],
    "calls_24h": ["int"],
    "sats_24h": ["int"],
}

_SCALARS: dict[str, Any] = {
    "str": lambda v: isinstance(v, str),
    "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "num": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "bool": lambda v: isinstance(v, bool),
    "any": lambda v: True,
}


def _empty(value: Any) -> bool:
    """Go's omitempty drops these; arkgate may send them as null or empty instead."""
    return value is None or value == "" or value == [] or value == {} or value is False or value == 0


def violations(value: Any, spec: Any, path: str = "data") -> list[str]:
    """Every way ``value`` breaks ``spec``; empty when it matches."""
    if isinstance(spec, Nullable):
        return [] if value is None else violations(value, spec.spec, path)
    if isinstance(spec, str):
        return [] if _SCALARS[spec](value) else [f"{path}: expected {spec}, got {type(value).__name__} {value!r:.60}"]
    if isinstance(spec, list):
        if not isinstance(value, list):
            return [f"{path}: expected a list, got {type(value).__name__}"]
        return [v for i, item in enumerate(value) for v in violations(item, spec[0], f"{path}[{i}]")]
    if isinstance(spec, Map):
        if not isinstance(value, dict):
            return [f"{path}: expected an object, got {type(value).__name__}"]
        return [v for key, item in value.items() for v in violations(item, spec.values, f"{path}.{key}")]
    if not isinstance(value, dict):
        return [f"{path}: expected an object, got {type(value).__name__}"]
    problems: list[str] = []
    for name, field_spec in spec.items():
        key = name.rstrip("?~")
        optional = name.endswith("?")
        may_be_empty = name.endswith(("?", "~"))
        if key not in value:
            if not optional:
                problems.append(f"{path}.{key}: missing")
            continue
        if may_be_empty and _empty(value[key]) and not isinstance(field_spec, Nullable):
            continue
        problems.extend(violations(value[key], field_spec, f"{path}.{key}"))
    return problems


def assert_arkapi_contract(endpoint_id: str, data: Any) -> None:
    """Fail listing every field of ``data`` that is missing from, or typed unlike, ArkAPI's handler."""
    problems = violations(data, CONTRACT[endpoint_id])
    assert not problems, f"{endpoint_id} breaks ArkAPI's contract:\n  " + "\n  ".join(problems)
