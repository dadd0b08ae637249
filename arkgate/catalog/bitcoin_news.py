"""bitcoin-news: recent Bitcoin headlines merged from RSS/Atom feeds.

The operator lists the feeds (``news_feeds``); they are fetched concurrently,
parsed with feedparser, de-duplicated (same link or same title), sorted newest
first and cached for ``news_cache_ttl_s``. A feed that fails is skipped and
reported; the call fails only when every feed does.
"""

from __future__ import annotations

import asyncio
import calendar
import html
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import urlsplit, urlunsplit

import feedparser
from pydantic import BaseModel, Field

from arkgate.catalog._lenient import clamp_limit, limit_description
from arkgate.catalog._upstream import RetryPolicy, cache_factory, get_text
from arkgate.catalog.context import CallContext
from arkgate.catalog.registry import Endpoint
from arkgate.errors import ArkgateError, UpstreamError, UpstreamTimeoutError

MAX_LIMIT = 50
_TAGS = re.compile(r"<[^>]+>")
_SPACES = re.compile(r"\s+")


class NewsRequest(BaseModel):
    limit: Annotated[int, clamp_limit(10, MAX_LIMIT)] = Field(
        10, ge=1, le=MAX_LIMIT, description=limit_description("headlines", 10, MAX_LIMIT)
    )


class NewsItem(BaseModel):
    title: str
    link: str
    source: str = Field(..., description="The feed's own title.")
    published_at: datetime | None = Field(default=None, description="Publication time (UTC), when the feed gives one.")
    summary: str | None = Field(default=None, description="First words of the item's description, as plain text.")


class NewsResponse(BaseModel):
    items: list[NewsItem]
    count: int
    sources: list[str] = Field(..., description="Feeds that answered.")
    failed_sources: int = Field(default=0, description="Configured feeds that could not be read this time.")
    fetched_at: datetime


@dataclass(frozen=True, kw_only=True)
class Digest:
    items: list[NewsItem]
    sources: list[str]
    failed: list[str]
    fetched_at: datetime


_cache = cache_factory(max_entries=2)


def _plain(text: str | None, limit: int = 280) -> str | None:
    if not text:
        return None
    flat = _SPACES.sub(" ", html.unescape(_TAGS.sub(" ", text))).strip()
    if not flat:
        return None
    return flat if len(flat) <= limit else flat[: limit - 1].rsplit(" ", 1)[0] + "…"


def _when(entry: Any) -> datetime | None:
    for key in ("published_parsed", "updated_parsed"):
        value = entry.get(key)
        if value:
            return datetime.fromtimestamp(calendar.timegm(value), UTC)
    return None


def _link_key(link: str) -> str:
    """Same article behind tracking parameters or a trailing slash counts once."""
    parts = urlsplit(link.strip())
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), parts.path.rstrip("/"), "", ""))


def _title_key(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", " ", title.lower()).strip()


def _parse(text: str, fallback_name: str) -> tuple[str, list[NewsItem]]:
    parsed = feedparser.parse(text)
    if not parsed.get("version") and not parsed.entries:
        raise ValueError("not a feed")
    name = _plain(parsed.feed.get("title"), 80) or fallback_name
    items: list[NewsItem] = []
    for entry in parsed.entries:
        title = _plain(entry.get("title"), 300)
        link = (entry.get("link") or "").strip()
        if not title or not link.startswith(("http://", "https://")):
            continue
        items.append(
            NewsItem(
                title=title,
                link=link,
                source=name,
                published_at=_when(entry),
                summary=_plain(entry.get("summary")),
            )
        )
    return name, items


async def _read_feed(index: int, url: str, ctx: CallContext) -> tuple[str, list[NewsItem]]:
    # Failures name the feed by position, not URL: the operator's URLs stay private.
    label = f"news feed #{index + 1}"
    text = await get_text(
        ctx.services.http,
        label,
        url,
        timeout_s=ctx.settings.news_timeout_s,
        retry=RetryPolicy.from_settings(ctx.settings),
        headers={"Accept": "application/rss+xml, application/atom+xml, application/xml;q=0.9, */*;q=0.5"},
    )
    try:
        return await asyncio.to_thread(_parse, text, label)
    except ValueError as exc:
        raise UpstreamError(f"{label} is not a readable RSS or Atom feed") from exc


async def _collect(ctx: CallContext) -> Digest:
    feeds = ctx.settings.news_feeds
    if not feeds:
        raise UpstreamError("no news feeds are configured")
    results = await asyncio.gather(*(_read_feed(i, url, ctx) for i, url in enumerate(feeds)), return_exceptions=True)
    failures: list[ArkgateError] = []
    sources: list[str] = []
    merged: list[NewsItem] = []
    for result in results:
        if isinstance(result, ArkgateError):
            failures.append(result)
            continue
        if isinstance(result, BaseException):
            raise result
        name, items = result
        sources.append(name)
        merged.extend(items)
    if not sources:
        summary = "; ".join(f.message for f in failures)
        if all(isinstance(f, UpstreamTimeoutError) for f in failures):
            raise UpstreamTimeoutError(f"every news feed timed out ({summary})")
        raise UpstreamError(f"every news feed failed ({summary})")
    # Newest first; undated items after dated ones, in feed order.
    merged.sort(key=lambda item: item.published_at or datetime.min.replace(tzinfo=UTC), reverse=True)
    seen_links: set[str] = set()
    seen_titles: set[str] = set()
    unique: list[NewsItem] = []
    for item in merged:
        link_key, title_key = _link_key(item.link), _title_key(item.title)
        if link_key in seen_links or title_key in seen_titles:
            continue
        seen_links.add(link_key)
        seen_titles.add(title_key)
        unique.append(item)
    return Digest(
        items=unique[:MAX_LIMIT],
        sources=sources,
        failed=[f.message for f in failures],
        fetched_at=datetime.now(UTC).replace(microsecond=0),
    )


async def bitcoin_news(request: NewsRequest, ctx: CallContext) -> NewsResponse:
    digest: Digest = await ctx.services.get(_cache).get_or_load(
        "digest", lambda: _collect(ctx), ctx.settings.news_cache_ttl_s
    )
    if digest.failed:
        ctx.notes.append("some feeds could not be read: " + "; ".join(digest.failed))
    items = digest.items[: request.limit]
    return NewsResponse(
        items=items,
        count=len(items),
        sources=digest.sources,
        failed_sources=len(digest.failed),
        fetched_at=digest.fetched_at,
    )


ENDPOINT = Endpoint(
    id="bitcoin-news",
    price_sats=2,
    category="utility",
    summary="Bitcoin news headlines",
    description=(
        "Recent Bitcoin headlines merged from several news feeds, de-duplicated and sorted newest "
        "first, each with its title, link, source, publication time and a short plain-text summary."
    ),
    request_model=NewsRequest,
    response_model=NewsResponse,
    handler=bitcoin_news,
    timeout_s=25.0,
    example={"limit": 5},
)
