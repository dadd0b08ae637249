"""HTTP and TLS servers on loopback with chosen headers, redirects and certificates.

* ``HttpPeer``: a threaded HTTP(S) server on ``host`` (127.0.0.1 by default, or any
  other loopback address such as 127.0.0.2 / ::1) and a free port. Register what a
  path answers with ``peer.route(path, status=..., headers=[...], body=...)``; every
  request is recorded in ``peer.hits`` (so a test can prove a server was never
  contacted). With ``ssl_context`` it speaks HTTPS, which also makes it a TLS peer.
* ``CertFactory``: a trustme CA written to ``ca_file`` (point ``outbound_ca_file`` at
  it) issuing the certificates the TLS checks need: valid, expired, self-signed,
  wrong host, incomplete chain, weak key and SHA-1 signed.
* ``TcpCanary``: a bare TCP listener that only counts connection attempts.

Fixtures: ``cert_factory`` (session), ``http_peer_factory`` (function; stops its peers).
"""

from __future__ import annotations

import datetime as dt
import functools
import socket
import ssl
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


@dataclass
class Route:
    status: int = 200
    headers: Sequence[tuple[str, str]] = ()
    body: bytes = b""


@dataclass(frozen=True)
class Hit:
    method: str
    path: str
    host: str


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: type, family: int) -> None:
        self.address_family = family
        super().__init__(address, handler)

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # aborted TLS handshakes are part of several tests


class HttpPeer:
    """A threaded HTTP(S) server; see the module docstring."""

    def __init__(self, *, host: str = "127.0.0.1", ssl_context: ssl.SSLContext | None = None) -> None:
        self.host = host
        self.ssl_context = ssl_context
        self.routes: dict[str, Route] = {}
        self.hits: list[Hit] = []
        self._lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    def route(
        self, path: str, *, status: int = 200, headers: Sequence[tuple[str, str]] = (), body: bytes | str = b""
    ) -> HttpPeer:
        self.routes[path] = Route(status, tuple(headers), body.encode() if isinstance(body, str) else body)
        return self

    def redirect(self, path: str, location: str, status: int = 302) -> HttpPeer:
        return self.route(path, status=status, headers=[("Location", location)])

    @property
    def scheme(self) -> str:
        return "https" if self.ssl_context else "http"

    def url(self, path: str = "/", *, host: str | None = None) -> str:
        name = host or (f"[{self.host}]" if ":" in self.host else self.host)
        return f"{self.scheme}://{name}:{self.port}{path}"

    def start(self) -> HttpPeer:
        peer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self, method: str) -> None:
                path = self.path.split("?", 1)[0]
                with peer._lock:
                    peer.hits.append(Hit(method, self.path, self.headers.get("Host", "")))
                route = peer.routes.get(path) or peer.routes.get("*") or Route(404, (), b"not found")
                self.send_response_only(route.status)  # no automatic Server header: routes choose theirs
                for name, value in route.headers:
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(route.body)))
                self.end_headers()
                if method != "HEAD":
                    self.wfile.write(route.body)

            def do_GET(self) -> None:
                self._serve("GET")

            def do_HEAD(self) -> None:
                self._serve("HEAD")

            def do_POST(self) -> None:
                self._serve("POST")

            def log_message(self, format: str, *args: object) -> None:
                pass

        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        self._server = _Server((self.host, 0), Handler, family)
        if self.ssl_context is not None:
            self._server.socket = self.ssl_context.wrap_socket(
                self._server.socket, server_side=True, do_handshake_on_connect=False
            )
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


class TcpCanary:
    """A listener that accepts and counts connections, answering nothing.

    With ``hold=True`` accepted connections stay open and silent (a target that hangs).
    """

    def __init__(self, host: str, *, hold: bool = False) -> None:
        self._hold = hold
        self._held: list[socket.socket] = []
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._sock = socket.socket(family, socket.SOCK_STREAM)
        self._sock.bind((host, 0))
        self._sock.listen(16)
        self._sock.settimeout(0.2)
        self.host = host
        self.port = int(self._sock.getsockname()[1])
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except (TimeoutError, OSError):
                continue
            self.connections += 1
            if self._hold:
                self._held.append(conn)
            else:
                conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        for conn in self._held:
            conn.close()
        self._sock.close()


# --- certificates -----------------------------------------------------------------------
@dataclass
class ServerCert:
    """PEM files for one server certificate (``chain_file`` is what the server sends)."""

    chain_file: Path
    key_file: Path
    weak: bool = False  # needs OpenSSL security level 0 to be served

    def server_context(self) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        if self.weak:
            ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
        ctx.load_cert_chain(str(self.chain_file), str(self.key_file))
        return ctx


@dataclass
class CertFactory:
    dir: Path
    ca: trustme.CA = field(default_factory=trustme.CA)

    def __post_init__(self) -> None:
        self.ca_file = self.dir / "test-ca.pem"
        self.ca.cert_pem.write_to_path(str(self.ca_file))
        self._n = 0

    def _files(self, chain_pem: bytes, key_pem: bytes, *, weak: bool = False) -> ServerCert:
        self._n += 1
        chain = self.dir / f"cert{self._n}.pem"
        key = self.dir / f"key{self._n}.pem"
        chain.write_bytes(chain_pem)
        key.write_bytes(key_pem)
        return ServerCert(chain, key, weak)

    def valid(self, *names: str, days: int = 90) -> ServerCert:
        now = dt.datetime.now(dt.UTC)
        leaf = self.ca.issue_cert(
            *names, not_before=now - dt.timedelta(days=1), not_after=now + dt.timedelta(days=days)
        )
        return self._files(b"".join(b.bytes() for b in leaf.cert_chain_pems), leaf.private_key_pem.bytes())

    def expired(self, *names: str) -> ServerCert:
        now = dt.datetime.now(dt.UTC)
        leaf = self.ca.issue_cert(
            *names, not_before=now - dt.timedelta(days=400), not_after=now - dt.timedelta(days=10)
        )
        return self._files(b"".join(b.bytes() for b in leaf.cert_chain_pems), leaf.private_key_pem.bytes())

    def incomplete_chain(self, *names: str) -> ServerCert:
        """Leaf issued by an intermediate the server does not send."""
        leaf = self.ca.create_child_ca().issue_cert(*names)
        return self._files(leaf.cert_chain_pems[0].bytes(), leaf.private_key_pem.bytes())

    def self_signed(self, name: str) -> ServerCert:
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        cert = _build(subject, subject, key.public_key(), key, hashes.SHA256(), [name])
        return self._files(_pem(cert), _key_pem(key))

    def weak_sha1(self, name: str) -> ServerCert:
        """RSA-1024 leaf signed with SHA-1 by the test CA (weak key and weak signature).

        cryptography refuses to sign with SHA-1, so the openssl command line does it.
        """
        self._n += 1
        work = self.dir / f"weak{self._n}"
        work.mkdir()
        (work / "ca.pem").write_bytes(self.ca.cert_pem.bytes())
        (work / "ca.key").write_bytes(self.ca.private_key_pem.bytes())
        (work / "ext.cnf").write_text(f"subjectAltName=DNS:{name}\nbasicConstraints=critical,CA:FALSE\n")
        run = functools.partial(subprocess.run, check=True, capture_output=True, cwd=work, timeout=30)
        run(["openssl", "req", "-new", "-newkey", "rsa:1024", "-nodes", "-keyout", "leaf.key",
             "-out", "leaf.csr", "-subj", f"/CN={name}"])  # fmt: skip
        run(["openssl", "x509", "-req", "-in", "leaf.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
             "-CAcreateserial", "-sha1", "-days", "60", "-extfile", "ext.cnf", "-out", "leaf.pem"])  # fmt: skip
        return ServerCert(work / "leaf.pem", work / "leaf.key", weak=True)


def _build(subject, issuer, public_key, signing_key, algorithm, names) -> x509.Certificate:  # type: ignore[no-untyped-def]
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=60))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(signing_key, algorithm)
    )


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _key_pem(key: object) -> bytes:
    return key.private_bytes(  # type: ignore[attr-defined,no-any-return]
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


@pytest.fixture(scope="session", name="cert_factory")
def cert_factory_fixture() -> Iterator[CertFactory]:
    with tempfile.TemporaryDirectory(prefix="arkgate-certs-") as tmp:
        yield CertFactory(Path(tmp))


@pytest.fixture(name="http_peer_factory")
def http_peer_factory_fixture() -> Iterator[Callable[..., HttpPeer]]:
    """``make(host="127.0.0.1", ssl_context=None)`` starts a peer; all are stopped afterwards."""
    peers: list[HttpPeer] = []

    def make(*, host: str = "127.0.0.1", ssl_context: ssl.SSLContext | None = None) -> HttpPeer:
        peer = HttpPeer(host=host, ssl_context=ssl_context).start()
        peers.append(peer)
        return peer

    try:
        yield make
    finally:
        for peer in peers:
            peer.stop()
