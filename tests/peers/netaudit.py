"""Record every socket connect/sendto the test process makes (Python audit hooks).

``connections`` fixture: a ``ConnectionLog`` whose ``.destinations`` lists the
(host, port) pairs contacted while the test ran. It observes real traffic: it
proves a refused target was never dialled, without mocking anything.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from typing import Any

import pytest

_active: list[ConnectionLog] = []
_lock = threading.Lock()
_installed = False


class ConnectionLog:
    def __init__(self) -> None:
        self.destinations: list[tuple[str, int]] = []

    def hosts(self) -> set[str]:
        return {host for host, _ in self.destinations}


def _hook(event: str, args: tuple[Any, ...]) -> None:
    if event not in ("socket.connect", "socket.sendto") or not _active:
        return
    address = args[1]
    if isinstance(address, tuple) and len(address) >= 2:
        with _lock:
            for log in _active:
                log.destinations.append((str(address[0]), int(address[1])))


@pytest.fixture(name="connections")
def connections_fixture() -> Iterator[ConnectionLog]:
    global _installed
    if not _installed:
        sys.addaudithook(_hook)  # hooks cannot be removed; it is inert while no log is active
        _installed = True
    log = ConnectionLog()
    _active.append(log)
    try:
        yield log
    finally:
        _active.remove(log)
