"""How arkgate runs under uvicorn: header size and time limits enforced while reading.

uvicorn reads a request's headers without a deadline (a slow-header client holds its
connection forever) and, with httptools, without a size limit. ``HardenedH11Protocol``
is uvicorn's h11 protocol with two additions:

- headers larger than ``max_header_bytes`` are refused with 431 in the response wrapper
  (h11 stops buffering there, via ``h11_max_incomplete_event_size``);
- a client must finish sending headers within ``header_timeout_s`` of connecting, or of
  the previous response on a kept-alive connection, or it is disconnected;
- once its headers are in, it must finish the body within ``body_timeout_s``, or it is
  disconnected (the app sees the client gone: a charged call is refunded).

Bodies are limited by ``arkgate.api.limits`` inside the app, per route.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from arkgate.settings import Settings

DEFAULT_HEADER_TIMEOUT_S = 10.0
DEFAULT_BODY_TIMEOUT_S = 30.0


class HardenedH11Protocol(H11Protocol):
    def __init__(self, config: uvicorn.Config, *args: Any, **kwargs: Any) -> None:
        super().__init__(config, *args, **kwargs)
        self._header_timeout_s = float(getattr(config, "header_timeout_s", DEFAULT_HEADER_TIMEOUT_S))
        self._header_timer: asyncio.TimerHandle | None = None
        self._body_timeout_s = float(getattr(config, "body_timeout_s", DEFAULT_BODY_TIMEOUT_S))
        self._body_timer: asyncio.TimerHandle | None = None
        self._max_header_bytes = config.h11_max_incomplete_event_size

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_timer()
        self._disarm_body_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        state = self.conn.their_state
        if state is not h11.IDLE:
            self._disarm_header_timer()  # the request's headers are complete
        if state is h11.SEND_BODY and self._body_timer is None:
            self._body_timer = self.loop.call_later(self._body_timeout_s, self._body_too_slow)
        elif state is not h11.SEND_BODY:
            self._disarm_body_timer()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and self.conn.their_state is h11.IDLE:
            self._arm_header_timer()

    def send_400_response(self, msg: str) -> None:
        # h11 raises one RemoteProtocolError for every malformed request; a header block past
        # the limit is the one that leaves a full receive buffer behind.
        buffered, _ = self.conn.trailing_data
        if self._max_header_bytes is not None and len(buffered) > self._max_header_bytes:
            self._send_error(431, "request_headers_too_large", "the request headers are too large")
            return
        super().send_400_response(msg)

    def _send_error(self, status: int, code: str, message: str) -> None:
        body = json.dumps(
            {"success": False, "error": message, "code": status, "error_code": code, "cost_sats": 0},
            separators=(",", ":"),
        ).encode()
        reason = {431: b"Request Header Fields Too Large"}.get(status, b"Error")
        head = (
            b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\nconnection: close\r\n\r\n"
            % (status, reason, len(body))
        )
        self.transport.write(head + body)
        self.transport.close()

    def _arm_header_timer(self) -> None:
        self._disarm_header_timer()
        self._header_timer = self.loop.call_later(self._header_timeout_s, self._headers_too_slow)

    def _disarm_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _disarm_body_timer(self) -> None:
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None

    def _body_too_slow(self) -> None:
        self._body_timer = None
        if self.conn.their_state is h11.SEND_BODY and not self.transport.is_closing():
            self.transport.close()

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self.transport.close()


def server_config(app: Any, settings: Settings, **overrides: Any) -> uvicorn.Config:
    """uvicorn's configuration for one gateway: hardened h11, our limits and timeouts."""
    options: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "log_level": "warning",
        "access_log": False,
        # Forwarded headers are handled in the app (``forwarded_allow_ips``), never by uvicorn's default.
        "proxy_headers": False,
        "server_header": False,
        "http": HardenedH11Protocol,
        "h11_max_incomplete_event_size": settings.max_header_bytes,
        "timeout_keep_alive": settings.keep_alive_timeout_s,
    }
    options.update(overrides)
    config = uvicorn.Config(app, **options)
    # Read by the protocol (uvicorn's Config has no such fields; the object pickles for workers).
    config.header_timeout_s = settings.header_timeout_s  # type: ignore[attr-defined]
    config.body_timeout_s = settings.body_timeout_s  # type: ignore[attr-defined]
    return config
