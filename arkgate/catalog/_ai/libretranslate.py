"""The LibreTranslate-compatible backend: ``POST /translate`` and ``GET /languages``.

Uses the shared upstream client (the base URL is the operator's, never the
caller's). The language list is cached, since it changes only when the
operator installs models, and lets a bad language pair be refused with a 400
before the backend is asked.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx

from arkgate.errors import UpstreamError, UpstreamTimeoutError

if TYPE_CHECKING:
    from arkgate.settings import Settings

NAME = "the translation backend"


@dataclass(frozen=True, kw_only=True)
class Language:
    code: str
    name: str
    targets: frozenset[str] | None  # None: the backend did not say, so any


@dataclass
class LibreTranslate:
    settings: Settings
    _languages: dict[str, Language] | None = None
    _fetched_at: float = 0.0
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def _url(self, path: str) -> str:
        if not self.settings.translate_base_url:
            raise UpstreamError(f"{NAME} is not configured on this gateway")
        return self.settings.translate_base_url.rstrip("/") + path

    async def languages(self, http: httpx.AsyncClient) -> dict[str, Language]:
        """The backend's languages by code, cached for ``translate_languages_ttl_s``."""
        ttl = self.settings.translate_languages_ttl_s
        if self._languages is not None and time.monotonic() - self._fetched_at < ttl:
            return self._languages
        async with self._lock:
            if self._languages is not None and time.monotonic() - self._fetched_at < ttl:
                return self._languages
            body = await self._request(http, "GET", "/languages")
            self._languages = _parse_languages(body)
            self._fetched_at = time.monotonic()
            return self._languages

    async def translate(self, http: httpx.AsyncClient, *, text: str, source: str, target: str) -> str:
        payload: dict[str, Any] = {"q": text, "source": source, "target": target, "format": "text"}
        payload.update(self._key_params())
        body = await self._request(http, "POST", "/translate", json=payload)
        translated = body.get("translatedText") if isinstance(body, dict) else None
        if not isinstance(translated, str):
            raise UpstreamError(f"{NAME} sent a malformed response")
        return translated

    def _key_params(self) -> dict[str, str]:
        key = self.settings.translate_api_key
        return {"api_key": key.get_secret_value()} if key else {}

    async def _request(self, http: httpx.AsyncClient, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = await http.request(method, self._url(path), timeout=self.settings.translate_timeout_s, **kwargs)
        except httpx.TimeoutException as exc:
            raise UpstreamTimeoutError(f"{NAME} did not answer in time") from exc
        except httpx.HTTPError as exc:
            raise UpstreamError(f"{NAME} is unreachable") from exc
        if response.status_code != 200:
            raise UpstreamError(f"{NAME} failed (HTTP {response.status_code})")
        try:
            return response.json()
        except ValueError as exc:
            raise UpstreamError(f"{NAME} sent a malformed response") from exc


def _parse_languages(body: Any) -> dict[str, Language]:
    if not isinstance(body, list):
        raise UpstreamError(f"{NAME} sent a malformed language list")
    languages: dict[str, Language] = {}
    for entry in body:
        if not isinstance(entry, dict) or not isinstance(entry.get("code"), str):
            continue
        targets = entry.get("targets")
        languages[entry["code"]] = Language(
            code=entry["code"],
            name=str(entry.get("name") or entry["code"]),
            targets=frozenset(t for t in targets if isinstance(t, str)) if isinstance(targets, list) else None,
        )
    if not languages:
        raise UpstreamError(f"{NAME} offers no languages")
    return languages


def resolve(code: str, languages: dict[str, Language]) -> str | None:
    """The backend's code for ``code``: exact, then by primary subtag (zh -> zh-Hans, pt-BR -> pt)."""
    by_lower = {known.lower(): known for known in languages}
    if code.lower() in by_lower:
        return by_lower[code.lower()]
    base = code.split("-", 1)[0].lower()
    if base in by_lower:
        return by_lower[base]
    candidates = sorted(known for known in languages if known.split("-", 1)[0].lower() == base)
    return candidates[0] if candidates else None


def make_libretranslate(settings: Settings) -> LibreTranslate:
    return LibreTranslate(settings)
