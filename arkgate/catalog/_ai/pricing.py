"""Token pricing for the metered AI endpoints: integer sats, always rounded up.

A reservation must cover the most a call can cost before the backend has said
how many tokens the prompt has, so the input side uses a ceiling that over-
rather than under-estimates: half a token per UTF-8 byte is above what BPE
tokenizers produce for Latin text (about 4 bytes per token) and about right for
CJK (3 bytes per character, 1-2 tokens). The unused part is refunded.
"""

from __future__ import annotations

from dataclasses import dataclass

# Chat templates wrap each message in role markers; a few tokens per message.
TOKENS_PER_MESSAGE = 8
# A settled estimate (stream cut before the backend reported usage) assumes this
# many UTF-8 bytes per input token: the typical figure, not the ceiling.
TYPICAL_BYTES_PER_TOKEN = 4


@dataclass(frozen=True, kw_only=True)
class TokenRates:
    """Sats per 1,000 input and output tokens, and the least a call costs."""

    input_per_1k: int
    output_per_1k: int
    min_sats: int

    def cost_sats(self, prompt_tokens: int, completion_tokens: int) -> int:
        """What a call that used these tokens costs (rounded up, at least the minimum)."""
        milli = max(0, prompt_tokens) * self.input_per_1k + max(0, completion_tokens) * self.output_per_1k
        return max(self.min_sats, -(-milli // 1000))

    def describe(self) -> str:
        return (
            f"{self.input_per_1k} sats per 1,000 input tokens + {self.output_per_1k} sats per 1,000 "
            f"output tokens (minimum {plural_sats(self.min_sats)})"
        )


def plural_sats(amount: int) -> str:
    return f"{amount} sat" if amount == 1 else f"{amount} sats"


def max_input_tokens(texts: list[str]) -> int:
    """A ceiling on the input tokens of these messages (see the module docstring)."""
    return sum(-(-len(text.encode()) // 2) + TOKENS_PER_MESSAGE for text in texts)


def typical_input_tokens(texts: list[str]) -> int:
    """An ordinary estimate of the input tokens, used only when the backend never reported usage."""
    return sum(-(-len(text.encode()) // TYPICAL_BYTES_PER_TOKEN) + TOKENS_PER_MESSAGE for text in texts)


def metered_rate_text(rates: TokenRates, max_sats: int) -> str:
    """The honest price line shown in the catalog and every generated description."""
    return (
        f"{rates.describe()}. Up to {max_sats} sats are reserved before the call; "
        "the unused part of the reservation is refunded as soon as the call ends, "
        "and a failed call is refunded in full."
    )
