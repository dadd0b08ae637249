"""ArkAPI's response contract (tests/compat/arkapi_contract.py), its checker, and its coverage.

Every paid success in tests/catalog goes through ``assert_paid`` (tests/upstreams/checks.py,
tests/peers/assertions.py), which checks ``data`` against the contract with the upstreams
served from recorded answers; the AI endpoints and btc-price call ``assert_arkapi_contract``
themselves. These tests pin the checker and make sure no endpoint escapes it.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from arkgate.catalog.registry import load_catalog
from tests.compat.arkapi_contract import CONTRACT, Map, Nullable, assert_arkapi_contract, violations

CATALOG_TESTS = Path(__file__).resolve().parents[1] / "catalog"


def test_the_contract_covers_every_paid_endpoint() -> None:
    assert set(CONTRACT) == {endpoint.id for endpoint in load_catalog()}


@pytest.mark.parametrize("endpoint_id", sorted(CONTRACT))
def test_every_endpoints_live_response_is_checked_in_its_catalog_tests(endpoint_id: str) -> None:
    """A success through the gateway, checked by assert_paid or assert_arkapi_contract, exists per endpoint."""
    source = (CATALOG_TESTS / f"test_{endpoint_id.replace('-', '_')}.py").read_text()
    checked = (
        re.search(rf'assert_paid\(\s*gw,\s*token,\s*"{endpoint_id}"', source)
        or re.search(rf'assert_paid\(\s*await \w+\.call\(\s*"{endpoint_id}"', source)
        or re.search(r"assert_paid\(\s*(resp|response)\b", source)
        or f'assert_arkapi_contract("{endpoint_id}"' in source
    )
    assert checked, f"no live {endpoint_id} response is checked against ArkAPI's contract"


SPEC = {
    "name": "str",
    "ttl": "str",
    "count": "int",
    "score?": "num",
    "flag~": "bool",
    "nested": {"items": ["str"], "map": Map({"a": "int"})},
    "maybe": Nullable({"x": "bool"}),
}
GOOD = {
    "name": "n",
    "ttl": "300",
    "count": 1,
    "flag": False,
    "nested": {"items": ["a"], "map": {"k": {"a": 1}}},
    "maybe": None,
    "extra_arkgate_field": [1, 2],
}


def test_a_matching_object_with_extra_fields_passes() -> None:
    assert violations(GOOD, SPEC) == []
    assert violations({**GOOD, "score": 1.5, "maybe": {"x": True}}, SPEC) == []


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"name": None}, "data.name: expected str"),
        ({"ttl": 300}, "data.ttl: expected str"),
        ({"count": True}, "data.count: expected int"),
        ({"count": 1.0}, "data.count: expected int"),
        ({"score": "high"}, "data.score: expected num"),
        ({"nested": {"items": [1], "map": {}}}, "data.nested.items[0]: expected str"),
        ({"nested": {"items": [], "map": {"k": {"a": "1"}}}}, "data.nested.map.k.a: expected int"),
        ({"nested": {"items": [], "map": []}}, "data.nested.map: expected an object"),
        ({"maybe": {"x": 1}}, "data.maybe.x: expected bool"),
    ],
)
def test_a_type_change_fails(change: dict, problem: str) -> None:
    assert any(p.startswith(problem) for p in violations({**GOOD, **change}, SPEC)), violations(
        {**GOOD, **change}, SPEC
    )


@pytest.mark.parametrize("missing", ["name", "count", "nested", "maybe", "flag"])
def test_a_missing_field_fails(missing: str) -> None:
    data = {k: v for k, v in GOOD.items() if k != missing}
    assert violations(data, SPEC) == [f"data.{missing}: missing"]


def test_an_omitempty_field_may_be_absent_or_empty() -> None:
    assert violations({**GOOD, "score": None}, SPEC) == []
    assert "score" not in GOOD and violations(GOOD, SPEC) == []


def test_assert_arkapi_contract_names_the_endpoint_and_every_problem() -> None:
    with pytest.raises(AssertionError, match=r"(?s)qr-generate breaks ArkAPI's contract.*data\.size: missing"):
        assert_arkapi_contract("qr-generate", {"data": "x", "format": "png", "image_b64": "", "data_uri": ""})
