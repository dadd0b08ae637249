"""url-to-markdown: a web page's main content as Markdown, with its title and metadata.

The page is fetched through the outbound guard (public addresses only, vetted
redirects, size and time caps); trafilatura then drops navigation, headers,
footers, sidebars and scripts and keeps headings, paragraphs, lists, links and
tables.
"""

from __future__ import annotations

import asyncio
import re

from pydantic import BaseModel, Field, field_serializer, field_validator

from arkgate.catalog.context import CallContext
from arkgate.catalog.registry import Endpoint
from arkgate.errors import InputError, UpstreamError
from arkgate.outbound.guard import MAX_URL_CHARS, get_guard

MAX_MARKDOWN_CHARS = 200_000
_HTML_TYPES = ("text/html", "application/xhtml+xml", "text/plain", "application/xml", "text/xml")
_TRAILING_SPACE = re.compile(r"[ \t]+$", re.MULTILINE)


class UrlRequest(BaseModel):
    url: str = Field(
        ..., min_length=1, max_length=MAX_URL_CHARS, description="Public http(s) URL.", examples=["https://example.com"]
    )

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        value = value.strip()
        if "://" not in value:
            value = "https://" + value  # bare host names are common in agent calls
        if not value.lower().startswith(("http://", "https://")):
            raise ValueError("url must start with http:// or https://")
        return value


EXCERPT_CHARS = 300


def excerpt_of(description: str | None, markdown: str) -> str:
    """The page's own description, else its first paragraph of prose, cut at a word."""
    text = (description or "").strip()
    if not text:
        paragraphs = (p.strip() for p in markdown.split("\n\n"))
        text = next((p for p in paragraphs if p and not p.startswith(("#", "|", "-", "*", "!", ">", "```"))), "")
    text = " ".join(text.split())
    if len(text) > EXCERPT_CHARS:
        text = text[:EXCERPT_CHARS].rsplit(" ", 1)[0] + "…"
    return text


class MarkdownResponse(BaseModel):
    url: str
    final_url: str = Field(..., description="URL after redirects.")
    status_code: int
    title: str | None
    author: str | None = None
    published: str | None = Field(default=None, description="Publication date found in the page (YYYY-MM-DD).")
    site_name: str | None = None
    description: str | None = None
    language: str | None = None
    markdown: str
    word_count: int
    truncated: bool = Field(default=False, description="True when the page or the Markdown was cut at a size limit.")
    excerpt: str = Field(
        default="", description="ArkAPI's: a short summary (the page's description or first paragraph)."
    )

    @field_serializer("title")
    def _title_text(self, value: str | None) -> str:
        return value or ""  # ArkAPI's title is a string, empty when the page has none


def _extract(html: str, url: str) -> tuple[str | None, dict[str, str | None]]:
    # Imported on first use: trafilatura (lxml, justext, ...) would slow every app start.
    import trafilatura

    markdown = trafilatura.extract(
        html,
        url=url,
        output_format="markdown",
        include_links=True,
        include_tables=True,
        include_formatting=True,
        include_comments=False,
        include_images=False,
    )
    if not markdown:
        # Short or unusual pages: trade precision for recall before giving up.
        markdown = trafilatura.extract(
            html, url=url, output_format="markdown", include_tables=True, include_links=True, favor_recall=True
        )
    meta = trafilatura.extract_metadata(html, default_url=url)
    fields = ("title", "author", "date", "sitename", "description", "language")
    info = {name: (getattr(meta, name, None) or None) if meta is not None else None for name in fields}
    return markdown, info


async def url_to_markdown(request: UrlRequest, ctx: CallContext) -> MarkdownResponse:
    guard = ctx.services.get(get_guard)
    result = await guard.fetch(request.url, headers={"Accept": "text/html,application/xhtml+xml;q=0.9,*/*;q=0.5"})
    if result.status_code >= 400:
        raise UpstreamError(f"the page answered with HTTP {result.status_code}", details={"status": result.status_code})
    content_type = result.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type and not content_type.startswith(_HTML_TYPES):
        raise InputError(f"the URL points to {content_type}, not an HTML page")
    markdown, info = await asyncio.to_thread(_extract, result.text, result.url)
    if not markdown:
        raise InputError("no readable main content was found on the page")
    markdown = _TRAILING_SPACE.sub("", markdown).strip()
    title = info["title"]
    if title and not markdown.startswith("# "):
        markdown = f"# {title}\n\n{markdown}"
    truncated = result.truncated
    if len(markdown) > MAX_MARKDOWN_CHARS:
        markdown = markdown[:MAX_MARKDOWN_CHARS].rsplit("\n", 1)[0]
        truncated = True
    if truncated:
        ctx.notes.append("the page was larger than the size limit; the Markdown covers its first part")
    return MarkdownResponse(
        url=request.url,
        final_url=result.url,
        status_code=result.status_code,
        title=title,
        author=info["author"],
        published=info["date"],
        site_name=info["sitename"],
        description=info["description"],
        language=info["language"],
        markdown=markdown,
        excerpt=excerpt_of(info["description"], markdown),
        word_count=len(markdown.split()),
        truncated=truncated,
    )


ENDPOINT = Endpoint(
    id="url-to-markdown",
    price_sats=5,
    category="utility",
    summary="Web page to clean Markdown",
    description=(
        "Fetches a public web page and returns its main content as Markdown (headings, paragraphs, "
        "lists, links and tables; navigation, headers, footers, sidebars and ads removed), with the "
        "title, author, publication date, site name and description. Ideal to feed a page to an LLM."
    ),
    request_model=UrlRequest,
    response_model=MarkdownResponse,
    handler=url_to_markdown,
    timeout_s=30.0,
    example={"url": "https://example.com"},
)
