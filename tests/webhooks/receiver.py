"""A real webhook receiver on loopback that checks every delivery with the Standard Webhooks verifier."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks import Webhook, WebhookVerificationError


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    answered: int
    path: str

    @property
    def payload(self) -> Any:
        return json.loads(self.body)

    @property
    def message_id(self) -> str:
        return self.headers["webhook-id"]


class Receiver:
    """Answers the queued statuses in order (then 200); records every request as it came."""

    def __init__(self, statuses: list[int] | None = None) -> None:
        self.statuses = list(statuses or [])
        self.received: list[Received] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver.lock:
                    status = receiver.statuses.pop(0) if receiver.statuses else 200
                    headers = {k.lower(): v for k, v in self.headers.items()}
                    receiver.received.append(Received(headers=headers, body=body, answered=status, path=self.path))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = int(self.server.server_address[1])
        self.url = f"http://127.0.0.1:{self.port}/hooks/arkgate"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def of(self, path: str | None = None) -> list[Received]:
        with self.lock:
            return [r for r in self.received if path is None or r.path == path]

    def accepted(self, path: str | None = None) -> list[Received]:
        return [r for r in self.of(path) if r.answered == 200]

    def verify_all(self, secret: str | bytes, path: str | None = None) -> list[Any]:
        """Verify every request with ``Webhook(secret).verify``; returns the parsed payloads."""
        verifier = Webhook(secret)
        payloads = []
        for request in self.of(path):
            payloads.append(verifier.verify(request.body, request.headers))
            try:
                verifier.verify(request.body + b" ", request.headers)
            except WebhookVerificationError:
                pass
            else:  # pragma: no cover - a verifier that accepts a changed body would be useless
                raise AssertionError("a tampered body verified")
        return payloads
