"""ai-chat: chat with the operator's OpenAI-compatible model, billed by the token.

Reserve-then-settle: the meter debits the most the call can cost (input at a
ceiling of half a token per UTF-8 byte, plus ``max_tokens`` of output), the
handler settles the backend's reported usage, the meter refunds the rest. With
``stream: true`` the answer arrives as server-sent events and the call is
settled on what was delivered when the stream ends or the caller leaves.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from pydantic import BaseModel, Field, field_validator, model_validator
from sse_starlette import ServerSentEvent

from arkgate.catalog._ai.chat import ChatClient, StreamPiece, complete, make_chat_client, open_stream
from arkgate.catalog._ai.metering import Billing, Usage, enforce_daily_limit
from arkgate.catalog._ai.pricing import (
    TOKENS_PER_MESSAGE,
    TokenRates,
    max_input_tokens,
    metered_rate_text,
    typical_input_tokens,
)
from arkgate.catalog.context import CallContext, StreamingReply, sse
from arkgate.catalog.registry import Endpoint, Metered, needs_module, needs_setting
from arkgate.errors import ArkgateError, UpstreamError
from arkgate.settings import Settings

MAX_MESSAGES = 40
MAX_MESSAGE_CHARS = 8000
MAX_TOTAL_CHARS = 12000
# Largest max_tokens the model accepts at all; the operator's lower cap is applied on top.
MAX_TOKENS_CEILING = 100_000

_SYSTEM_REFUSED = "system prompts are not accepted: this gateway's system prompt is fixed by the operator"


class ChatMessage(BaseModel):
    role: str = Field(..., description="'user' or 'assistant'.", examples=["user"])
    content: str = Field(..., max_length=MAX_MESSAGE_CHARS, description="The message text.")

    @field_validator("role")
    @classmethod
    def _known_role(cls, value: str) -> str:
        role = value.strip().lower()
        if role in ("system", "developer"):
            raise ValueError(_SYSTEM_REFUSED)
        if role not in ("user", "assistant"):
            raise ValueError(f"role must be 'user' or 'assistant', not {value!r}")
        return role

    @field_validator("content")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("message content must not be empty")
        return value


class ChatRequest(BaseModel):
    prompt: str | None = Field(
        None,
        max_length=MAX_MESSAGE_CHARS,
        description="A single question (or give messages instead).",
        examples=["How is Ark different from Lightning?"],
    )
    messages: list[ChatMessage] | None = Field(
        None,
        max_length=MAX_MESSAGES,
        description=f"The conversation so far, oldest first, ending with the user's turn (at most {MAX_MESSAGES}).",
    )
    max_tokens: int | None = Field(
        None,
        ge=1,
        le=MAX_TOKENS_CEILING,
        description="Most output tokens to generate; lowered to the operator's cap. Sets the reservation.",
    )
    stream: bool = Field(False, description="Answer as server-sent events (text/event-stream).")
    # Declared only to refuse them clearly instead of silently ignoring them.
    system_prompt: str | None = Field(None, description="Not accepted: the system prompt is fixed.")
    system: Any = Field(None, description="Not accepted: the system prompt is fixed.")

    @field_validator("system_prompt", "system")
    @classmethod
    def _refuse_system(cls, value: Any) -> Any:
        if value is not None:
            raise ValueError(_SYSTEM_REFUSED)
        return value

    @model_validator(mode="after")
    def _one_conversation(self) -> ChatRequest:
        if self.prompt is not None and self.messages is not None:
            raise ValueError("give either prompt or messages, not both")
        if self.prompt is None and not self.messages:
            raise ValueError("prompt must not be empty (or give a non-empty messages list)")
        if self.prompt is not None and not self.prompt.strip():
            raise ValueError("prompt must not be empty")
        if self.messages and self.messages[-1].role != "user":
            raise ValueError("the last message must be the user's")
        total = sum(len(text) for text in self.texts())
        if total > MAX_TOTAL_CHARS:
            raise ValueError(f"the conversation is too long: {total} characters, at most {MAX_TOTAL_CHARS}")
        return self

    def texts(self) -> list[str]:
        if self.prompt is not None:
            return [self.prompt]
        return [message.content for message in self.messages or []]

    def conversation(self) -> list[dict[str, str]]:
        if self.prompt is not None:
            return [{"role": "user", "content": self.prompt}]
        return [{"role": m.role, "content": m.content} for m in self.messages or []]


class ChatResponse(BaseModel):
    answer: str
    model: str
    usage: Usage
    finish_reason: str | None = Field(None, description="'stop', or 'length' when max_tokens cut the answer.")
    billing: Billing


# --- pricing ------------------------------------------------------------------------------


def chat_rates(settings: Settings) -> TokenRates:
    return TokenRates(
        input_per_1k=settings.ai_chat_input_sats_per_1k,
        output_per_1k=settings.ai_chat_output_sats_per_1k,
        min_sats=settings.ai_chat_min_sats,
    )


def output_tokens(request: ChatRequest, settings: Settings) -> int:
    wanted = request.max_tokens or settings.ai_default_max_tokens
    return min(wanted, settings.ai_max_output_tokens)


def backend_messages(request: ChatRequest, settings: Settings) -> list[dict[str, str]]:
    system = [{"role": "system", "content": settings.ai_system_prompt}] if settings.ai_system_prompt else []
    return system + request.conversation()


def reserve_sats(request: ChatRequest, settings: Settings) -> int:
    texts = [m["content"] for m in backend_messages(request, settings)]
    return chat_rates(settings).cost_sats(max_input_tokens(texts), output_tokens(request, settings))


def max_cost_sats(settings: Settings) -> int:
    # Worst case: every character a 4-byte UTF-8 sequence, spread over the most messages.
    worst_input = max_input_tokens([settings.ai_system_prompt, "x" * (4 * MAX_TOTAL_CHARS)])
    # Each further message adds its template overhead and up to one token of rounding.
    worst_input += (MAX_MESSAGES - 1) * (TOKENS_PER_MESSAGE + 1)
    return chat_rates(settings).cost_sats(worst_input, settings.ai_max_output_tokens)


def rate_text(settings: Settings) -> str:
    return metered_rate_text(chat_rates(settings), max_cost_sats(settings))


# --- handler ------------------------------------------------------------------------------


async def chat(request: ChatRequest, ctx: CallContext) -> ChatResponse | StreamingReply:
    settings = ctx.settings
    await enforce_daily_limit(ctx)
    client = ctx.services.get(make_chat_client)
    messages = backend_messages(request, settings)
    max_tokens = output_tokens(request, settings)
    if request.max_tokens is not None and request.max_tokens > max_tokens:
        ctx.notes.append(f"max_tokens lowered to this gateway's cap of {max_tokens}")
    rates = chat_rates(settings)
    if request.stream:
        return await _start_stream(ctx, client, rates, messages, max_tokens)
    result = await complete(client, model=settings.ai_chat_model, messages=messages, max_tokens=max_tokens)
    charged = ctx.settle(rates.cost_sats(result.prompt_tokens, result.completion_tokens))
    return ChatResponse(
        answer=result.text,
        model=result.model,
        usage=Usage.of(result.prompt_tokens, result.completion_tokens),
        finish_reason=result.finish_reason,
        billing=Billing.of(ctx, charged),
    )


async def _start_stream(
    ctx: CallContext, client: ChatClient, rates: TokenRates, messages: list[dict[str, str]], max_tokens: int
) -> StreamingReply:
    """Open the backend stream and read its first chunk before answering.

    A backend that fails at once then gives a plain 502 (fully refunded) instead
    of a 200 stream that breaks. From the first delivered chunk on, the caller
    pays for the prompt and for the chunks delivered.
    """
    stream, pieces = await open_stream(
        client, model=ctx.settings.ai_chat_model, messages=messages, max_tokens=max_tokens
    )
    try:
        first = await anext(pieces)
    except StopAsyncIteration:
        await stream.close()
        raise UpstreamError("the AI chat backend ended the stream without an answer") from None
    except BaseException:
        await stream.close()
        raise
    input_estimate = typical_input_tokens([m["content"] for m in messages])
    # No settle yet: a caller who leaves before the first delivered chunk pays nothing
    # (the meter charges 0 for an unfinished stream that never settled).
    return StreamingReply(events=_events(ctx, stream, pieces, first, rates, input_estimate))


async def _events(
    ctx: CallContext,
    stream: Any,
    pieces: AsyncIterator[StreamPiece],
    first: StreamPiece,
    rates: TokenRates,
    input_estimate: int,
) -> AsyncIterator[ServerSentEvent]:
    """Relay the answer as SSE, settling after every delivered chunk.

    Until the backend's final usage chunk arrives, output is counted as one token
    per streamed chunk (how OpenAI-compatible servers stream) and input is
    estimated; the usage chunk then replaces both with the backend's figures.
    """
    delivered = 0
    usage: tuple[int, int] | None = None
    model = ctx.settings.ai_chat_model
    finish: str | None = None
    piece: StreamPiece | None = first
    try:
        while piece is not None:
            model = piece.model or model
            finish = piece.finish_reason or finish
            if piece.prompt_tokens is not None and piece.completion_tokens is not None:
                usage = (piece.prompt_tokens, piece.completion_tokens)
            if piece.content:
                yield sse("delta", {"content": piece.content})
                # Counted once the meter has taken the chunk and asked for the next one.
                delivered += 1
                ctx.settle(rates.cost_sats(input_estimate, delivered))
            piece = await anext(pieces, None)
    except ArkgateError as exc:
        # The backend broke mid-answer: the caller keeps what arrived and pays only for it.
        yield sse("error", {"error": exc.message, "cost_sats": ctx.settled_sats or 0})
        return
    finally:
        # Also runs when the caller disconnects, so the backend stops generating.
        await stream.close()
    if usage is not None:
        charged = ctx.settle(rates.cost_sats(*usage))
        reported = Usage.of(*usage)
    else:
        charged = ctx.settle(rates.cost_sats(input_estimate, delivered))
        reported = Usage.of(input_estimate, delivered)
    yield sse(
        "done",
        {
            "model": model,
            "finish_reason": finish,
            "usage": reported.model_dump(),
            "usage_estimated": usage is None,
            "billing": Billing.of(ctx, charged).model_dump(),
        },
    )


ENDPOINT = Endpoint(
    id="ai-chat",
    price_sats=1,
    category="ai",
    summary="AI chat, billed by the token",
    description=(
        "Answers a prompt or a short conversation with the operator's language model. "
        "Priced by the tokens used: the most the call can cost is reserved first, the "
        "backend's token count is charged, and the rest of the reservation is refunded. "
        "Set stream to true for server-sent events (delta, then done with usage and billing). "
        "The system prompt is fixed; system messages are refused."
    ),
    request_model=ChatRequest,
    has_large_body=True,  # 40 messages of up to 8,000 characters, JSON-escaped
    response_model=ChatResponse,
    handler=chat,
    requires=(needs_module("openai", extra="ai"), needs_setting("ai_base_url", "chat model backend")),
    metered=Metered(
        reserve_sats=reserve_sats,
        rate=rate_text,
        max_cost_sats=max_cost_sats,
        min_cost_sats=lambda settings: chat_rates(settings).min_sats,
    ),
    example={"prompt": "How is Ark different from Lightning?"},
    tags=("ai", "metered"),
)
