"""A real authoritative DNS server (Debian's nsd) on loopback high ports, for tests.

``NsdServer`` writes the zones it is given into a temporary directory, starts nsd
on ``127.0.0.1@port`` and ``::1@port`` (one free port, found at runtime), and
waits until it answers. Zones named in ``axfr_allowed`` permit zone transfers to
anyone; the others refuse them.

Fixtures (import them into a test module: ``from tests.peers.dns import nsd_fixture``;
the fixture is then requested as ``nsd``):

* ``nsd``: session-wide server with the zones in ``tests/fixtures/security/zones``
  (``open.test`` allows AXFR, ``closed.test`` and the rest refuse it).
* ``silent_dns``: a UDP+TCP port that accepts queries and never answers (timeouts).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import dns.message
import dns.query
import dns.rcode
import pytest

ZONES_DIR = Path(__file__).resolve().parents[1] / "fixtures" / "security" / "zones"
STANDARD_AXFR_ALLOWED = frozenset({"open.test"})
_START_DEADLINE_S = 10.0


def free_port(*, udp_too: bool = True) -> int:
    """A port free for TCP (and UDP) on both 127.0.0.1 and ::1 right now."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.bind(("127.0.0.1", 0))
            port = int(probe.getsockname()[1])
        try:
            held = []
            kinds = [socket.SOCK_STREAM, socket.SOCK_DGRAM] if udp_too else [socket.SOCK_STREAM]
            for family, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
                for kind in kinds:
                    s = socket.socket(family, kind)
                    held.append(s)
                    s.bind((host, port))
            return port
        except OSError:
            continue
        finally:
            for s in held:
                s.close()
    raise RuntimeError("no free port found")


def has_nsd() -> bool:
    return shutil.which("nsd") is not None


class NsdServer:
    """One nsd process serving ``zones`` ({name: zone text}) on 127.0.0.1 and ::1."""

    def __init__(self, zones: Mapping[str, str], *, axfr_allowed: frozenset[str] = frozenset()) -> None:
        self.zones = dict(zones)
        self.axfr_allowed = axfr_allowed
        self.port = 0
        self.dir = Path(tempfile.mkdtemp(prefix="arkgate-nsd-"))
        self._pid: int | None = None

    @property
    def nameserver(self) -> str:
        """The ``host:port`` entry for ``ARKGATE_DNS_NAMESERVERS``."""
        return f"127.0.0.1:{self.port}"

    def start(self) -> NsdServer:
        nsd = shutil.which("nsd")
        if nsd is None:
            pytest.skip("nsd is not installed (apt-get install nsd)")
        self.port = free_port()
        lines = [
            "server:",
            f"    ip-address: 127.0.0.1@{self.port}",
            f"    ip-address: ::1@{self.port}",
            f"    port: {self.port}",
            '    username: ""',
            '    chroot: ""',
            f'    zonesdir: "{self.dir}"',
            '    database: ""',
            f'    pidfile: "{self.dir}/nsd.pid"',
            f'    xfrdfile: "{self.dir}/xfrd.state"',
            f'    zonelistfile: "{self.dir}/zone.list"',
            f'    logfile: "{self.dir}/nsd.log"',
            "    server-count: 1",
            "    verbosity: 0",
            "remote-control:",
            "    control-enable: no",
        ]
        for name, text in self.zones.items():
            (self.dir / f"{name}.zone").write_text(text)
            lines += ["zone:", f"    name: {name}", f"    zonefile: {name}.zone"]
            if name in self.axfr_allowed:
                lines += ["    provide-xfr: 0.0.0.0/0 NOKEY", "    provide-xfr: ::0/0 NOKEY"]
        conf = self.dir / "nsd.conf"
        conf.write_text("\n".join(lines) + "\n")
        subprocess.run([nsd, "-c", str(conf)], check=True, capture_output=True, timeout=30)
        atexit.register(self.stop)  # a crashed or interrupted run still stops its nsd
        self._wait_ready(next(iter(self.zones)))
        return self

    def _wait_ready(self, zone: str) -> None:
        deadline = time.monotonic() + _START_DEADLINE_S
        last: Exception | None = None
        while time.monotonic() < deadline:
            pidfile = self.dir / "nsd.pid"
            if self._pid is None and pidfile.exists() and pidfile.read_text().strip():
                self._pid = int(pidfile.read_text().strip())
            try:
                reply = dns.query.udp(dns.message.make_query(zone, "SOA"), "127.0.0.1", port=self.port, timeout=0.5)
                if reply.rcode() == dns.rcode.NOERROR and self._pid is not None:
                    return
            except Exception as exc:  # not up yet
                last = exc
            time.sleep(0.05)  # polling a subprocess with a deadline, not synchronising on time
        log = (self.dir / "nsd.log").read_text() if (self.dir / "nsd.log").exists() else ""
        self.stop()
        raise RuntimeError(f"nsd did not start: {last!r}\n{log}")

    def _own_pids(self) -> list[int]:
        """PIDs of nsd processes started with this server's config file (and nothing else)."""
        conf = str(self.dir / "nsd.conf").encode()
        pids = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    if conf in (entry / "cmdline").read_bytes().split(b"\0"):
                        pids.append(int(entry.name))
                except OSError:
                    continue
        return pids

    def stop(self) -> None:
        # nsd forks (main, xfrd, servers); the pidfile may name only one of them, so every
        # process running with our own config file is stopped.
        pids = set(self._own_pids())
        if self._pid is not None:
            pids.add(self._pid)
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and self._own_pids():
            time.sleep(0.02)
        for pid in self._own_pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self._pid = None
        shutil.rmtree(self.dir, ignore_errors=True)


def standard_zones() -> dict[str, str]:
    return {p.name.removesuffix(".zone"): p.read_text() for p in sorted(ZONES_DIR.glob("*.zone"))}


@pytest.fixture(scope="session", name="nsd")
def nsd_fixture() -> Iterator[NsdServer]:
    """nsd serving the standard test zones; ``nsd.nameserver`` goes into ``dns_nameservers``."""
    server = NsdServer(standard_zones(), axfr_allowed=STANDARD_AXFR_ALLOWED).start()
    try:
        yield server
    finally:
        server.stop()


class SilentDns:
    """Sockets that take DNS queries on 127.0.0.1 and never answer them."""

    def __init__(self) -> None:
        self.port = free_port()
        self._udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._udp.bind(("127.0.0.1", self.port))
        self._tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._tcp.bind(("127.0.0.1", self.port))
        self._tcp.listen(16)

    @property
    def nameserver(self) -> str:
        return f"127.0.0.1:{self.port}"

    def close(self) -> None:
        self._udp.close()
        self._tcp.close()


@pytest.fixture(name="silent_dns")
def silent_dns_fixture() -> Iterator[SilentDns]:
    server = SilentDns()
    try:
        yield server
    finally:
        server.close()
