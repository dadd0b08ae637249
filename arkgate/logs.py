"""structlog set-up: console or JSON lines, with secrets redacted as a backstop."""

from __future__ import annotations

import logging
import re
from typing import Any

import structlog
from structlog.typing import EventDict

_SECRET_KEYS = re.compile(r"token|secret|password|authorization|api_key|macaroon|preimage|mnemonic", re.I)
_TOKEN_VALUE = re.compile(r"ak_[A-Za-z0-9_-]{20,}")


def _redact(_logger: Any, _name: str, event: EventDict) -> EventDict:
    for key, value in list(event.items()):
        if _SECRET_KEYS.search(key) and key != "event":
            event[key] = "[secure]"
        elif isinstance(value, str):
            event[key] = _TOKEN_VALUE.sub("ak_[secure]", value)
    return event


def configure_logging(level: str = "info", *, json_lines: bool = False) -> None:
    numeric = logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
    renderer: Any = structlog.processors.JSONRenderer() if json_lines else structlog.dev.ConsoleRenderer(colors=False)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _redact,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        cache_logger_on_first_use=True,
    )
    logging.basicConfig(level=numeric, format="%(message)s")
    # httpx logs every request URL at INFO; upstream URLs can carry keys.
    for noisy in ("httpx", "httpcore", "aiosqlite", "websockets", "asyncio", "asyncmy", "hpack"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
