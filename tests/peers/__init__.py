"""Real servers on loopback for the security endpoints' tests (and anyone else's).

* ``tests.peers.dns``: nsd authoritative DNS (``nsd``, ``silent_dns`` fixtures).
* ``tests.peers.web``: HTTP and TLS servers with chosen headers, redirects and certificates.
* ``tests.peers.whois``: RDAP over HTTP and port-43 WHOIS serving recorded registry answers.

Import the fixtures you need into your test module under their ``*_fixture`` names, e.g.
``from tests.peers.dns import nsd_fixture  # noqa: F401``, and request them as ``nsd``.

* ``tests.peers.netaudit``: ``connections`` records every socket the test opens (audit hook).
* ``tests.peers.assertions``: gateway assertions (paid call, free 400/502/504, bad-input tables).
"""
