"""Request fields ArkAPI accepts leniently, so its clients' requests work unchanged.

ArkAPI's handlers clamp a ``limit`` into range (0 or less means the default) instead
of refusing it; ``clamp_limit`` does the same before pydantic's own checks run.
"""

from __future__ import annotations

from typing import Any

from pydantic import BeforeValidator


def clamp_limit(default: int, maximum: int) -> BeforeValidator:
    """ArkAPI's rule for ``limit``: 0 or less gives ``default``, more than ``maximum`` gives ``maximum``."""

    def clamp(value: Any) -> Any:
        if value is None:
            return default  # Go decodes null into an int as 0, which ArkAPI then defaults
        if isinstance(value, int) and not isinstance(value, bool):
            return default if value <= 0 else min(value, maximum)
        return value  # anything else meets pydantic's int check (and its clear 400)

    return BeforeValidator(clamp)


def limit_description(what: str, default: int, maximum: int) -> str:
    return f"How many {what} to return (1-{maximum}; 0 or less gives {default}, more gives {maximum}, as in ArkAPI)."
