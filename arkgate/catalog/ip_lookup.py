"""ip-lookup: country, network operator and routed network of an IP address, offline.

Data ships in packages (iptocc, geoip2fast) or comes from an operator's mmdb;
every answer names its sources, their dates and attributions. Reverse DNS uses
the configured resolver. Private and reserved addresses are reported as such.
"""

from __future__ import annotations

import ipaddress

from pydantic import BaseModel, Field, field_validator

from arkgate.catalog._security.common import note_ai_summary
from arkgate.catalog._security.ipinfo import IpInfo, ip_info
from arkgate.catalog.context import CallContext
from arkgate.catalog.registry import Endpoint


class IpRequest(BaseModel):
    ip: str = Field(..., min_length=1, max_length=64, description="IPv4 or IPv6 address.", examples=["8.8.8.8"])
    ai_summary: bool = Field(default=False, description="Accepted for ArkAPI compatibility; ignored (no cost).")

    @field_validator("ip")
    @classmethod
    def _canonical(cls, value: str) -> str:
        text = value.strip().removeprefix("[").removesuffix("]")
        if "%" in text:
            raise ValueError("scoped IPv6 addresses (with %interface) are not accepted")
        try:
            parsed = ipaddress.ip_address(text)
        except ValueError:
            raise ValueError("ip must be an IPv4 address in dotted decimal (e.g. 8.8.8.8) or an IPv6 address") from None
        return str(parsed)


async def handler(request: IpRequest, ctx: CallContext) -> IpInfo:
    note_ai_summary(request, ctx)
    return await ip_info(ipaddress.ip_address(request.ip), ctx)


ENDPOINT = Endpoint(
    id="ip-lookup",
    price_sats=3,
    category="osint",
    summary="IP geolocation and network owner",
    description=(
        "Returns the country, network operator (AS name) and routed network of an IPv4 or IPv6 address from "
        "data shipped with the gateway (or the operator's MaxMind/DB-IP database), with reverse DNS, the data "
        "sources and their dates. Private and reserved ranges are reported as such."
    ),
    request_model=IpRequest,
    response_model=IpInfo,
    handler=handler,
    timeout_s=20,
    example={"ip": "8.8.8.8"},
)
