"""RDAP (HTTP) and port-43 WHOIS servers on loopback serving recorded registry answers.

* ``WhoisPeer``: a TCP server on 127.0.0.1:<free port> answering one query per
  connection, like real port-43 servers: it reads a line, writes the answer for
  that query (``answers`` maps lower-case query to text) and closes. Unknown
  queries get ``default``. ``silent=True`` accepts and never answers (timeouts).
* ``rdap_peer`` fixture: an ``HttpPeer`` serving the IANA-style bootstrap at
  ``/bootstrap/dns.json`` (pointing .com/.net/.org at itself) and the recorded
  Verisign answers; register more with ``peer.route("/com/v1/domain/NAME", ...)``.
* ``whois_peer`` fixture: a ``WhoisPeer`` with the recorded Verisign, Nominet and
  DENIC answers.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from tests.peers.web import HttpPeer

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "security"
RDAP_JSON = "application/rdap+json"


def fixture_text(relative: str) -> str:
    return (FIXTURES / relative).read_text()


class WhoisPeer:
    def __init__(self, answers: Mapping[str, str], *, default: str = "", silent: bool = False) -> None:
        self.answers = {k.lower(): v for k, v in answers.items()}
        self.default = default
        self.silent = silent
        self.queries: list[str] = []
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self._sock.settimeout(0.2)
        self.port = int(self._sock.getsockname()[1])
        self._stop = threading.Event()
        self._held: list[socket.socket] = []
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except (TimeoutError, OSError):
                continue
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        if self.silent:
            self._held.append(conn)
            return
        with conn:
            conn.settimeout(5)
            data = b""
            while b"\n" not in data and len(data) < 1024:
                chunk = conn.recv(256)
                if not chunk:
                    break
                data += chunk
            query = data.decode(errors="replace").strip()
            self.queries.append(query)
            answer = self.answers.get(query.lower(), self.default)
            conn.sendall(answer.encode())

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        for conn in self._held:
            conn.close()
        self._sock.close()


def standard_whois_answers() -> dict[str, str]:
    return {
        "example.com": fixture_text("whois/com-example.com.txt"),
        "available-example.com": fixture_text("whois/com-no-match.txt"),
        "example.co.uk": fixture_text("whois/uk-example.co.uk.txt"),
        "available-example.co.uk": fixture_text("whois/uk-no-match.txt"),
        "beispiel.de": fixture_text("whois/de-beispiel.de.txt"),
        "frei-beispiel.de": fixture_text("whois/de-free.txt"),
    }


@pytest.fixture(name="whois_peer")
def whois_peer_fixture() -> Iterator[WhoisPeer]:
    peer = WhoisPeer(standard_whois_answers(), default="% unexpected query\n")
    try:
        yield peer
    finally:
        peer.close()


@pytest.fixture(name="rdap_peer")
def rdap_peer_fixture() -> Iterator[HttpPeer]:
    peer = HttpPeer().start()
    base = f"http://127.0.0.1:{peer.port}"
    peer.route(
        "/bootstrap/dns.json",
        headers=[("Content-Type", "application/json")],
        body=fixture_text("rdap/dns-bootstrap.json").replace("{RDAP_BASE}", base),
    )
    peer.route(
        "/com/v1/domain/example.com", headers=[("Content-Type", RDAP_JSON)], body=fixture_text("rdap/com-example.json")
    )
    peer.route(
        "/com/v1/domain/available-example.com",
        status=404,
        headers=[("Content-Type", RDAP_JSON)],
        body=fixture_text("rdap/com-not-found.json"),
    )
    try:
        yield peer
    finally:
        peer.stop()
