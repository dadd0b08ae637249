"""A real HTTP server on loopback that plays recorded upstream responses.

Endpoint tests point an upstream base-URL setting at ``server.url`` and register
what each path answers (recorded fixtures under ``tests/fixtures/upstreams/``).
The server counts hits per path (to prove caching), records requests (to check
keys are sent upstream and never echoed), and can be told to fail with a status
or to hang until the test ends (to provoke the client's timeout).

Use the ``upstream_server`` fixture: ``from tests.upstreams import upstream_server_fixture``
in a test module makes it available there (under the name ``upstream_server``).
"""

from tests.upstreams.server import FIXTURES_DIR, RecordedRequest, Reply, UpstreamServer, upstream_server_fixture

__all__ = ["FIXTURES_DIR", "RecordedRequest", "Reply", "UpstreamServer", "upstream_server_fixture"]
