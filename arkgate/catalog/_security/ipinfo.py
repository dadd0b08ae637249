"""Offline IP intelligence shared by ip-lookup and domain-intel.

Country from iptocc (RIR delegation statistics compiled into the package),
ASN name and network from geoip2fast's bundled GeoLite2-derived file; an
operator's MaxMind/DB-IP ``.mmdb`` (``ip_mmdb_path``, ``ip_asn_mmdb_path``)
replaces them when configured. Every answer names its data source and date.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import warnings
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import dns.exception
import dns.resolver
import dns.reversename
import iptocc
from pydantic import BaseModel, ConfigDict, Field, computed_field, field_serializer

from arkgate.catalog.context import CallContext
from arkgate.outbound.guard import BLOCKED_NETWORKS, METADATA_ADDRESSES
from arkgate.outbound.resolver import make_resolver

GEOLITE_ATTRIBUTION = (
    "This product includes GeoLite2 data created by MaxMind, available from https://www.maxmind.com "
    "(CC BY-SA 4.0), as packaged by geoip2fast"
)


class DataSource(BaseModel):
    name: str
    fields: list[str]
    date: str | None = None
    attribution: str | None = None


class IpInfo(BaseModel):
    model_config = ConfigDict(serialize_by_alias=True)  # "as" is a Python keyword

    ip: str
    version: int
    is_public: bool
    scope: str = Field(..., description="'public', or the special-purpose range the address is in.")
    country_code: str | None = None
    country: str | None = None
    region: str | None = None
    city: str | None = None
    timezone: str | None = None
    asn: int | None = None
    as_name: str | None = Field(default=None, description="ArkAPI's 'as'/'isp': the network operator's name.")
    network: str | None = Field(default=None, description="The routed network (CIDR) the address belongs to.")
    reverse_dns: list[str] = []
    reverse_dns_error: str | None = None
    sources: list[DataSource] = []
    lat: float = Field(default=0.0, description="ArkAPI's latitude; 0 when the data has none.")
    lon: float = Field(default=0.0, description="ArkAPI's longitude; 0 when the data has none.")

    # ArkAPI sends these as strings, empty when unknown (never null).
    @field_serializer("country_code", "country", "region", "city")
    def _blank_for_unknown(self, value: str | None) -> str:
        return value or ""

    @computed_field(description="ArkAPI's 'isp': the network operator's name (empty when unknown).")  # type: ignore[prop-decorator]
    @property
    def isp(self) -> str:
        return self.as_name or ""

    @computed_field(description="ArkAPI's 'org': the network operator's name (empty when unknown).")  # type: ignore[prop-decorator]
    @property
    def org(self) -> str:
        return self.as_name or ""

    @computed_field(alias="as", description="ArkAPI's 'as': 'AS<number> <name>' (empty when unknown).")  # type: ignore[prop-decorator]
    @property
    def as_(self) -> str:
        if self.asn is None:
            return ""
        return f"AS{self.asn} {self.as_name or ''}".strip()


def _pkg_version(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "unknown"


def scope_of(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    if ip in METADATA_ADDRESSES:
        return "cloud metadata service"
    for net, reason in BLOCKED_NETWORKS:
        if ip in net:
            return reason
    return "public" if ip.is_global else "non-public"


class OfflineDb:
    """geoip2fast's country+ASN file (IPv4 and IPv6), loaded once per app in a worker thread."""

    def __init__(self, settings: Any) -> None:
        self.settings = settings
        self._db: Any = None
        self._mmdb: Any = None
        self._asn_mmdb: Any = None
        self._lock = asyncio.Lock()
        self.source_date: str | None = None

    async def ready(self) -> OfflineDb:
        async with self._lock:
            if self._db is None and self._mmdb is None:
                await asyncio.to_thread(self._load)
        return self

    def _load(self) -> None:
        if self.settings.ip_mmdb_path:
            import maxminddb

            self._mmdb = maxminddb.open_database(str(self.settings.ip_mmdb_path))
            if self.settings.ip_asn_mmdb_path:
                self._asn_mmdb = maxminddb.open_database(str(self.settings.ip_asn_mmdb_path))
            return
        self._db = _bundled_db()
        info = str(self._db.get_database_info().get("source_info", ""))
        stamp = info.rsplit("-", 1)[-1]
        if stamp.isdigit() and len(stamp) == 8:
            self.source_date = f"{stamp[:4]}-{stamp[4:6]}-{stamp[6:]}"

    def close(self) -> None:
        for db in (self._mmdb, self._asn_mmdb):
            if db is not None:
                db.close()

    def lookup(self, ip: str, info: IpInfo) -> IpInfo:
        if self._mmdb is not None:
            return self._lookup_mmdb(ip, info)
        code = iptocc.country_code(ip) or None
        sources = [
            DataSource(
                name=f"iptocc {_pkg_version('iptocc')} (RIR delegated statistics)",
                fields=["country_code"],
                attribution="Regional Internet Registries' delegation files, via iptocc",
            )
        ]
        found = self._db.lookup(ip).to_dict() if self._db is not None else {}
        as_name = found.get("asn_name") or None
        update: dict[str, Any] = {
            "country_code": code if code and code != "--" else None,
            "country": found.get("country_name") if found.get("country_code") == code else None,
            "as_name": as_name,
            "network": found.get("asn_cidr") or found.get("cidr") or None,
        }
        sources.append(
            DataSource(
                name=f"geoip2fast {_pkg_version('geoip2fast')} (GeoLite2 country and ASN)",
                fields=["country", "as_name", "network"],
                date=self.source_date,
                attribution=GEOLITE_ATTRIBUTION,
            )
        )
        return info.model_copy(update={**update, "sources": sources})

    def _lookup_mmdb(self, ip: str, info: IpInfo) -> IpInfo:
        record: dict[str, Any] = self._mmdb.get(ip) or {}
        meta = self._mmdb.metadata()
        country = record.get("country") or record.get("registered_country") or {}
        names = (country.get("names") or {}) if isinstance(country, dict) else {}
        city = ((record.get("city") or {}).get("names") or {}).get("en")
        subdivisions = record.get("subdivisions") or []
        region = ((subdivisions[0].get("names") or {}).get("en")) if subdivisions else None
        location = record.get("location") or {}
        update: dict[str, Any] = {
            "country_code": country.get("iso_code") if isinstance(country, dict) else None,
            "country": names.get("en"),
            "city": city,
            "region": region,
            "timezone": location.get("time_zone"),
            "lat": float(location.get("latitude") or 0.0),
            "lon": float(location.get("longitude") or 0.0),
        }
        asn_record: dict[str, Any] = record
        if self._asn_mmdb is not None:
            asn_record = self._asn_mmdb.get(ip) or {}
        update["asn"] = asn_record.get("autonomous_system_number")
        update["as_name"] = asn_record.get("autonomous_system_organization")
        sources = [
            DataSource(
                name=f"operator database {meta.database_type}",
                fields=[k for k, v in update.items() if v],
                date=_epoch_date(meta.build_epoch),
                attribution="Operator-supplied MaxMind/DB-IP database",
            )
        ]
        return info.model_copy(update={**update, "sources": sources})


@functools.cache
def _bundled_db() -> Any:
    """The packaged data is read-only: load it once per process (about a second), not per app."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # invalid escapes in geoip2fast's source
        from geoip2fast import GeoIP2Fast

    return GeoIP2Fast(geoip2fast_data_file="geoip2fast-asn-ipv6.dat.gz", verbose=False)


def _epoch_date(epoch: int) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d")


async def reverse_dns(ip: str, ctx: CallContext) -> tuple[list[str], str | None]:
    resolver = ctx.services.get(make_resolver)
    try:
        answer = await resolver.resolve(dns.reversename.from_address(ip), "PTR", search=False)
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        return [], None
    except dns.resolver.LifetimeTimeout:
        return [], "reverse DNS lookup timed out"
    except dns.exception.DNSException:
        return [], "reverse DNS lookup failed"
    return sorted(r.target.to_text(omit_final_dot=True) for r in answer), None


async def ip_info(ip: ipaddress.IPv4Address | ipaddress.IPv6Address, ctx: CallContext) -> IpInfo:
    scope = scope_of(ip)
    info = IpInfo(ip=str(ip), version=ip.version, is_public=scope == "public", scope=scope)
    if not info.is_public:
        # No geolocation for special ranges, and no PTR query: an internal resolver could
        # reveal private host names for them.
        return info
    db = await ctx.services.get(OfflineDb).ready()
    (names, error), info = await asyncio.gather(reverse_dns(str(ip), ctx), asyncio.to_thread(db.lookup, str(ip), info))
    return info.model_copy(update={"reverse_dns": names, "reverse_dns_error": error})
