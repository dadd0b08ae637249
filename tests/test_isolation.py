"""The suite itself cannot reach anything off this machine (tests/conftest.py installs the check)."""

from __future__ import annotations

import socket

import pytest


@pytest.mark.parametrize("address", [("192.0.2.1", 80), ("10.255.255.53", 53), ("2001:db8::1", 443)])
def test_a_test_cannot_connect_off_the_machine(address):
    family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock, pytest.raises(ConnectionRefusedError):
        sock.connect(address)


def test_a_test_cannot_resolve_outside_names():
    with pytest.raises(OSError, match="outside names"):
        socket.getaddrinfo("example.com", 443)
