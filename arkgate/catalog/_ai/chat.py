"""The OpenAI-compatible chat backend (Ollama, vLLM, llama.cpp server, hosted providers).

One ``AsyncOpenAI`` client per app, built from settings. Every failure of the
backend is turned into arkgate's error tree here, so the endpoints only see
``UpstreamError`` (502) or ``UpstreamTimeoutError`` (504), both refunded by the
meter, and never a URL or key in a message.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from arkgate.errors import UpstreamError, UpstreamTimeoutError

if TYPE_CHECKING:
    from openai import AsyncOpenAI

    from arkgate.settings import Settings

NAME = "the AI chat backend"


class ChatClient:
    """A configured chat backend; ``client`` is None when the operator set no base URL."""

    def __init__(self, settings: Settings) -> None:
        self.client: AsyncOpenAI | None = None
        self._missing = f"{NAME} is not configured on this gateway"
        if settings.ai_base_url:
            key = settings.ai_api_key.get_secret_value() if settings.ai_api_key else "not-needed"
            # No retries: a retried generation would be billed by the backend twice and
            # would make the call's time budget unpredictable.
            try:
                from openai import AsyncOpenAI  # imported on first use: it is slow to import
            except ImportError:  # a light install without the ``ai`` extra
                self._missing = f"{NAME} needs the openai package (operator: pip install 'arkgate[ai]')"
                return

            self.client = AsyncOpenAI(
                base_url=settings.ai_base_url, api_key=key, timeout=settings.ai_timeout_s, max_retries=0
            )

    def require(self) -> AsyncOpenAI:
        if self.client is None:
            raise UpstreamError(self._missing)
        return self.client

    async def aclose(self) -> None:
        if self.client is not None:
            await self.client.close()


def make_chat_client(settings: Settings) -> ChatClient:
    return ChatClient(settings)


@dataclass(frozen=True, kw_only=True)
class ChatResult:
    text: str
    model: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str | None


def _wire(messages: list[dict[str, str]]) -> Any:
    """Plain role/content dicts are what the API takes; the SDK's TypedDicts only add typing."""
    return messages


@contextmanager
def backend_errors() -> Iterator[None]:
    """Map the openai package's exceptions onto arkgate's, without leaking the backend URL."""
    import openai

    try:
        yield
    except openai.APITimeoutError as exc:
        raise UpstreamTimeoutError(f"{NAME} did not answer in time") from exc
    except openai.APIConnectionError as exc:
        raise UpstreamError(f"{NAME} is unreachable") from exc
    except openai.APIStatusError as exc:
        raise UpstreamError(f"{NAME} failed (HTTP {exc.status_code})") from exc
    except (openai.APIError, json.JSONDecodeError, ValueError, TypeError, KeyError, AttributeError) as exc:
        # APIResponseValidationError, or a body that is not the JSON the protocol promises.
        raise UpstreamError(f"{NAME} sent a malformed response") from exc


async def complete(client: ChatClient, *, model: str, messages: list[dict[str, str]], max_tokens: int) -> ChatResult:
    """One non-streaming completion; usage must be reported, since the call is billed on it."""
    api = client.require()
    with backend_errors():
        response: Any = await api.chat.completions.create(
            model=model,
            messages=_wire(messages),
            max_tokens=max_tokens,
            stream=False,
        )
        if isinstance(response, str | bytes) or not getattr(response, "choices", None):
            raise UpstreamError(f"{NAME} sent a malformed response")
        usage = response.usage
        if usage is None or usage.prompt_tokens is None or usage.completion_tokens is None:
            raise UpstreamError(f"{NAME} did not report token usage")
        choice = response.choices[0]
        text = choice.message.content or ""
        return ChatResult(
            text=text,
            model=str(response.model or model),
            prompt_tokens=int(usage.prompt_tokens),
            completion_tokens=int(usage.completion_tokens),
            finish_reason=choice.finish_reason,
        )


@dataclass(kw_only=True)
class StreamPiece:
    """One parsed chunk of a streamed completion."""

    content: str = ""
    finish_reason: str | None = None
    model: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None


async def open_stream(
    client: ChatClient, *, model: str, messages: list[dict[str, str]], max_tokens: int
) -> tuple[Any, AsyncIterator[StreamPiece]]:
    """Start a streamed completion; returns the closable stream and its parsed pieces.

    ``stream_options.include_usage`` asks for a final chunk carrying the usage
    (OpenAI, vLLM, Ollama and llama.cpp all send it).
    """
    api = client.require()
    with backend_errors():
        stream: Any = await api.chat.completions.create(
            model=model,
            messages=_wire(messages),
            max_tokens=max_tokens,
            stream=True,
            stream_options={"include_usage": True},
        )
    return stream, _pieces(stream)


async def _pieces(stream: Any) -> AsyncIterator[StreamPiece]:
    with backend_errors():
        async for chunk in stream:
            piece = StreamPiece(model=getattr(chunk, "model", None))
            choices = getattr(chunk, "choices", None) or []
            if choices:
                delta = choices[0].delta
                piece.content = (delta.content if delta is not None else None) or ""
                piece.finish_reason = choices[0].finish_reason
            usage = getattr(chunk, "usage", None)
            if usage is not None:
                piece.prompt_tokens = usage.prompt_tokens
                piece.completion_tokens = usage.completion_tokens
            yield piece
