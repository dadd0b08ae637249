"""Schemathesis against /openapi.json on a funded session: no 5xx, and every answer matches the spec.

A catalog of endpoints served entirely on loopback keeps it fast and closed to the outside:
qr-generate (POST, computed locally), btc-price (GET with query parameters, from the recorded
CoinGecko answer of the upstream test server) and translate (metered, from the local
LibreTranslate stand-in).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from arkgate.settings import Settings
from tests.agents.conftest import offline_catalog
from tests.ai_backends.server import AiBackend
from tests.live import LiveGateway
from tests.live import live_gateway as serve
from tests.upstreams import UpstreamServer

# The routes whose behaviour is arkgate's core and this area's; streaming routes (SSE) are left out.
OWNED = (
    r"^/(health|v1/catalog|v1/sessions|v1/sessions/topup|v1/balance|v1/sessions/me/payments|v1/sessions/me/calls"
    r"|v1/quote|\.well-known/arkapi\.json|\.well-known/arkgate\.json|llms\.txt|llms-full\.txt|api/[a-z0-9-]+)$"
)
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@pytest.fixture(scope="module")
def funded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveGateway, str]]:
    prices = UpstreamServer().start()
    prices.serve_file("/api/v3/simple/price", "coingecko/simple_price.json")
    backend = AiBackend().start()
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("schemathesis"),
        payment_mode="free",
        rate_limits="off",
        network="signet",
        btc_price_providers=["coingecko"],
        coingecko_url=f"{prices.url}/api/v3",
        translate_base_url=backend.libretranslate_url,
    )
    try:
        with serve(settings, offline_catalog("qr-generate", "btc-price", "translate")) as gw:
            token = gw.create_session(settings.max_session_sats)["token"]
            yield gw, token
    finally:
        backend.stop()
        prices.stop()


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_every_answer_matches_the_spec(funded: tuple[LiveGateway, str], mode: GenerationMode) -> None:
    """Valid inputs, then inputs that break the schema (those must get documented 4xx answers)."""
    gw, token = funded
    schema = schemathesis.openapi.from_url(f"{gw.url}/openapi.json").include(path_regex=OWNED)
    failures: list[str] = []
    tested = []
    for result in schema.get_all_operations():
        operation = result.ok()
        tested.append(operation.label)

        @given(case=operation.as_strategy(generation_mode=mode))
        @hypothesis_settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def run(case: Any) -> None:
            case.call_and_validate(headers={"Authorization": f"Bearer {token}"}, checks=CHECKS)

        try:
            run()
        except Unsatisfiable:
            continue  # negative mode: an operation without inputs cannot be given invalid ones
        except Exception as exc:  # collect every operation's failure, then report them together
            failures.append(f"{operation.label}: {exc}")
    assert "POST /api/qr-generate" in tested and "GET /api/btc-price" in tested and "POST /v1/sessions" in tested
    assert not failures, "\n\n".join(failures)
