"""Helpers the metered AI endpoints share: the daily spending limit and the billing models."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import BaseModel, Field

from arkgate.errors import RateLimitedError

if TYPE_CHECKING:
    from arkgate.catalog.context import CallContext

# Endpoints whose spending counts against ``ai_daily_limit_sats``.
DAILY_LIMITED_IDS = ("ai-chat", "ai-translate")


async def enforce_daily_limit(ctx: CallContext) -> None:
    """Refuse the call (429, refunded) when it would take the session past its daily AI budget.

    ``spent_today_sats`` counts what is debited today net of refunds, this call's
    reservation included (the meter debits it before the handler runs), so
    concurrent calls cannot together slip past the limit.
    """
    limit = ctx.settings.ai_daily_limit_sats
    if limit <= 0 or ctx.spent_today_sats is None:
        return
    spent = await ctx.spent_today_sats(DAILY_LIMITED_IDS)
    if spent > limit:
        raise RateLimitedError(
            f"daily AI spending limit reached: this session may spend {limit} sats per day on "
            "ai-chat and ai-translate; try again tomorrow (UTC) or use a smaller max_tokens"
        )


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int

    @classmethod
    def of(cls, prompt_tokens: int, completion_tokens: int) -> Usage:
        return cls(
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            total_tokens=prompt_tokens + completion_tokens,
        )


class Billing(BaseModel):
    reserved_sats: int = Field(..., description="Debited before the call: the most it could cost.")
    charged_sats: int = Field(..., description="What the call cost, from the backend's token usage.")
    refunded_sats: int = Field(..., description="reserved_sats - charged_sats, returned to the balance.")

    @classmethod
    def of(cls, ctx: CallContext, charged_sats: int) -> Billing:
        reserved = max(ctx.reserved_sats, charged_sats)
        return cls(reserved_sats=reserved, charged_sats=charged_sats, refunded_sats=reserved - charged_sats)
