"""weather: current conditions and a daily forecast from Open-Meteo.

A city name is geocoded first (Open-Meteo geocoding API), then the forecast API
is asked for current conditions and ``days`` daily rows in the place's own time
zone. Both answers are cached for ``weather_cache_ttl_s``; coordinates are
rounded to 0.01° (about 1 km), which also makes nearby requests share the cache.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from arkgate.catalog._upstream import RetryPolicy, cache_factory, get_json, upstream_errors
from arkgate.catalog.context import CallContext
from arkgate.catalog.registry import Endpoint
from arkgate.errors import InputError

# WMO weather interpretation codes, as documented by Open-Meteo.
WMO_CODES: dict[int, str] = {
    0: "Clear sky",
    1: "Mainly clear",
    2: "Partly cloudy",
    3: "Overcast",
    45: "Fog",
    48: "Depositing rime fog",
    51: "Light drizzle",
    53: "Moderate drizzle",
    55: "Dense drizzle",
    56: "Light freezing drizzle",
    57: "Dense freezing drizzle",
    61: "Slight rain",
    63: "Moderate rain",
    65: "Heavy rain",
    66: "Light freezing rain",
    67: "Heavy freezing rain",
    71: "Slight snowfall",
    73: "Moderate snowfall",
    75: "Heavy snowfall",
    77: "Snow grains",
    80: "Slight rain showers",
    81: "Moderate rain showers",
    82: "Violent rain showers",
    85: "Slight snow showers",
    86: "Heavy snow showers",
    95: "Thunderstorm",
    96: "Thunderstorm with slight hail",
    99: "Thunderstorm with heavy hail",
}

CURRENT_VARS = (
    "temperature_2m,relative_humidity_2m,apparent_temperature,is_day,precipitation,"
    "weather_code,cloud_cover,wind_speed_10m,wind_direction_10m,wind_gusts_10m"
)
DAILY_VARS = (
    "weather_code,temperature_2m_max,temperature_2m_min,precipitation_sum,"
    "precipitation_probability_max,wind_speed_10m_max,sunrise,sunset,uv_index_max"
)


class WeatherRequest(BaseModel):
    city: str | None = Field(
        None, min_length=1, max_length=100, description="Place name, e.g. 'New York'.", examples=["Berlin"]
    )
    lat: float | None = Field(default=None, ge=-90, le=90, description="Latitude in degrees (with lon).")
    lon: float | None = Field(default=None, ge=-180, le=180, description="Longitude in degrees (with lat).")
    days: int = Field(7, ge=1, le=16, description="Days of daily forecast, today included.")

    @field_validator("city")
    @classmethod
    def _city(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = " ".join(value.split())
        if not value:
            return None
        if any(ord(ch) < 32 for ch in value):
            raise ValueError("city must be plain text")
        return value

    @model_validator(mode="after")
    def _place(self) -> WeatherRequest:
        if (self.lat is None) != (self.lon is None):
            raise ValueError("give both lat and lon, or a city")
        if self.city is None and self.lat is None:
            raise ValueError("give a city, or lat and lon")
        return self


class CurrentWeather(BaseModel):
    # Open-Meteo's own "current" variables ride along (ArkAPI passes that object through as is).
    model_config = ConfigDict(extra="allow")

    time: str | None = Field(default=None, description="Local time of the observation (ISO 8601, place's zone).")
    temperature_c: float | None
    feels_like_c: float | None
    humidity_pct: float | None
    precipitation_mm: float | None
    cloud_cover_pct: float | None
    wind_speed_kmh: float | None
    wind_gusts_kmh: float | None
    wind_direction_deg: float | None
    weather_code: int | None
    condition: str
    is_day: bool | None


class DailyForecast(BaseModel):
    date: str
    condition: str
    weather_code: int | None
    temp_max_c: float | None
    temp_min_c: float | None
    precipitation_mm: float | None
    precipitation_probability_pct: float | None
    wind_speed_max_kmh: float | None
    uv_index_max: float | None
    sunrise: str | None
    sunset: str | None


class Location(BaseModel):
    """ArkAPI's location object."""

    lat: float
    lon: float
    name: str = Field(default="", description="Resolved place name; empty when coordinates were given.")


class WeatherResponse(BaseModel):
    location: Location
    location_name: str = Field(..., description="Resolved place, e.g. 'Berlin, Berlin, DE', or the coordinates.")
    latitude: float
    longitude: float
    elevation_m: float | None
    timezone: str | None
    current: CurrentWeather
    daily: dict[str, list[Any]] = Field(
        ..., description="Open-Meteo's daily object as ArkAPI sends it: one list per variable, 'time' first."
    )
    daily_forecast: list[DailyForecast] = Field(..., description="The same days, one object per day.")
    source: str = "Open-Meteo"


_cache = cache_factory(max_entries=2048)


def _condition(code: Any) -> tuple[int | None, str]:
    if code is None:
        return None, "Unknown"
    number = int(code)
    return number, WMO_CODES.get(number, "Unknown")


async def _geocode(city: str, ctx: CallContext) -> dict[str, Any]:
    s = ctx.settings

    async def load() -> dict[str, Any]:
        _, body = await get_json(
            ctx.services.http,
            "Open-Meteo geocoding",
            f"{s.open_meteo_geocoding_url.rstrip('/')}/search",
            params={"name": city, "count": 1, "language": "en", "format": "json"},
            timeout_s=s.weather_timeout_s,
            retry=RetryPolicy.from_settings(s),
        )
        with upstream_errors("Open-Meteo geocoding"):
            results = body.get("results") or []
            if not results:
                return {}
            place = dict(results[0])
            place["latitude"], place["longitude"] = float(place["latitude"]), float(place["longitude"])
            return place

    place: dict[str, Any] = await ctx.services.get(_cache).get_or_load(
        ("geo", city.lower()), load, s.weather_cache_ttl_s
    )
    if not place:
        raise InputError(f"no place named {city!r} was found")
    return place


async def _forecast(lat: float, lon: float, days: int, ctx: CallContext) -> dict[str, Any]:
    s = ctx.settings

    async def load() -> dict[str, Any]:
        _, body = await get_json(
            ctx.services.http,
            "Open-Meteo forecast",
            f"{s.open_meteo_forecast_url.rstrip('/')}/forecast",
            params={
                "latitude": f"{lat:.2f}",
                "longitude": f"{lon:.2f}",
                "current": CURRENT_VARS,
                "daily": DAILY_VARS,
                "timezone": "auto",
                "forecast_days": days,
            },
            timeout_s=s.weather_timeout_s,
            retry=RetryPolicy.from_settings(s),
        )
        with upstream_errors("Open-Meteo forecast"):
            if not isinstance(body.get("current"), dict) or not isinstance(body.get("daily"), dict):
                raise ValueError("forecast without current or daily data")
            return dict(body)

    forecast: dict[str, Any] = await ctx.services.get(_cache).get_or_load(
        ("fc", round(lat, 2), round(lon, 2), days), load, s.weather_cache_ttl_s
    )
    return forecast


def _at(values: dict[str, Any], key: str, index: int) -> Any:
    column = values.get(key)
    if isinstance(column, list) and index < len(column):
        return column[index]
    return None


async def weather(request: WeatherRequest, ctx: CallContext) -> WeatherResponse:
    if request.city is not None and request.lat is None:
        place = await _geocode(request.city, ctx)
        lat, lon = float(place["latitude"]), float(place["longitude"])
        parts = [place.get("name"), place.get("admin1"), place.get("country_code")]
        location = ", ".join(dict.fromkeys(str(p) for p in parts if p))
        name = location
    else:
        assert request.lat is not None and request.lon is not None
        lat, lon = request.lat, request.lon
        location = f"{lat:.4f}, {lon:.4f}"
        name = ""
    body = await _forecast(lat, lon, request.days, ctx)
    with upstream_errors("Open-Meteo forecast"):
        current = body["current"]
        code, condition = _condition(current.get("weather_code"))
        is_day = current.get("is_day")
        now = CurrentWeather(
            **{k: v for k, v in current.items() if k not in CurrentWeather.model_fields},
            time=current.get("time"),
            temperature_c=current.get("temperature_2m"),
            feels_like_c=current.get("apparent_temperature"),
            humidity_pct=current.get("relative_humidity_2m"),
            precipitation_mm=current.get("precipitation"),
            cloud_cover_pct=current.get("cloud_cover"),
            wind_speed_kmh=current.get("wind_speed_10m"),
            wind_gusts_kmh=current.get("wind_gusts_10m"),
            wind_direction_deg=current.get("wind_direction_10m"),
            weather_code=code,
            condition=condition,
            is_day=None if is_day is None else bool(is_day),
        )
        daily = body["daily"]
        rows: list[DailyForecast] = []
        for i, date in enumerate(daily.get("time") or []):
            day_code, day_condition = _condition(_at(daily, "weather_code", i))
            rows.append(
                DailyForecast(
                    date=str(date),
                    condition=day_condition,
                    weather_code=day_code,
                    temp_max_c=_at(daily, "temperature_2m_max", i),
                    temp_min_c=_at(daily, "temperature_2m_min", i),
                    precipitation_mm=_at(daily, "precipitation_sum", i),
                    precipitation_probability_pct=_at(daily, "precipitation_probability_max", i),
                    wind_speed_max_kmh=_at(daily, "wind_speed_10m_max", i),
                    uv_index_max=_at(daily, "uv_index_max", i),
                    sunrise=_at(daily, "sunrise", i),
                    sunset=_at(daily, "sunset", i),
                )
            )
        return WeatherResponse(
            location=Location(lat=round(lat, 4), lon=round(lon, 4), name=name),
            location_name=location,
            latitude=round(lat, 4),
            longitude=round(lon, 4),
            elevation_m=body.get("elevation"),
            timezone=body.get("timezone"),
            current=now,
            daily={k: v[: request.days] for k, v in daily.items() if isinstance(v, list)},
            daily_forecast=rows[: request.days],
        )


ENDPOINT = Endpoint(
    id="weather",
    price_sats=3,
    category="utility",
    summary="Weather: current conditions and forecast",
    description=(
        "Current conditions (temperature, feels-like, humidity, wind, precipitation, cloud cover, "
        "condition text) and a daily forecast (7 days by default, up to 16) for a city name or "
        "lat/lon coordinates. Data from Open-Meteo; times are local to the place."
    ),
    request_model=WeatherRequest,
    response_model=WeatherResponse,
    handler=weather,
    timeout_s=25.0,
    example={"city": "New York"},
)
