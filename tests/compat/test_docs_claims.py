"""Every claim in the docs about ArkAPI's field names is a field of the transcribed contract.

The contract (tests/compat/arkapi_contract.py) is itself checked against live responses, so a
name the docs attribute to ArkAPI is both ArkAPI's and really sent.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.compat.arkapi_contract import CONTRACT, STATS, Map, Nullable
from tests.conftest import wait_for

ROOT = Path(__file__).resolve().parents[2]
COMPAT_DOC = ROOT / "docs" / "arkapi-compatibility.md"
NAME = re.compile(r"`([a-z0-9_.]+)`")
# "ArkAPI's `a`, `b` and `c`" (a claim), up to the first word that is not a name or a joiner
CLAIM = re.compile(r"ArkAPI's ((?:`[a-z0-9_.]+`(?: \([^)]*\))?(?:, | and |/|,? plus )?)+)")


def _fields(spec: Any) -> dict[str, Any]:
    while isinstance(spec, list | Nullable | Map):
        spec = spec[0] if isinstance(spec, list) else spec.spec if isinstance(spec, Nullable) else spec.values
    return {name.rstrip("?~"): value for name, value in spec.items()} if isinstance(spec, dict) else {}


def is_contract_field(endpoint_ids: list[str], dotted: str) -> bool:
    """``spf.mode`` resolves through nested objects, lists and maps of any endpoint given."""
    for endpoint_id in endpoint_ids:
        spec: Any = CONTRACT[endpoint_id]
        for part in dotted.split("."):
            fields = _fields(spec)
            if part not in fields:
                break
            spec = fields[part]
        else:
            return True
    return False


def paid_rows() -> dict[str, list[str]]:
    rows: dict[str, list[str]] = {}
    for line in COMPAT_DOC.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and (m := re.fullmatch(r"`([a-z0-9-]+)`", cells[0])) and m.group(1) in CONTRACT:
            rows[m.group(1)] = NAME.findall(cells[1])
    return rows


def test_the_table_has_a_row_for_every_paid_endpoint() -> None:
    assert set(paid_rows()) == set(CONTRACT)


@pytest.mark.parametrize("endpoint_id", sorted(CONTRACT))
def test_each_row_names_exactly_arkapis_top_level_fields_and_only_real_ones(endpoint_id: str) -> None:
    names = paid_rows()[endpoint_id]
    assert [n for n in names if not is_contract_field([endpoint_id], n)] == []
    top = {n for n in names if "." not in n}
    assert top == set(_fields(CONTRACT[endpoint_id])), endpoint_id


def test_the_stats_row_names_arkapis_stats_fields() -> None:
    row = next(line for line in COMPAT_DOC.read_text().splitlines() if line.startswith("| `GET /v1/stats`"))
    matches = row.split("|")[2]
    assert set(NAME.findall(matches)) == {name.rstrip("?~") for name in STATS}


def claims_in(path: Path) -> list[tuple[list[str], str]]:
    """(endpoint ids in scope, claimed name) for every "ArkAPI's `name`" in an endpoint doc."""
    found: list[tuple[list[str], str]] = []
    scope: list[str] = []
    # a claim may wrap: join each paragraph's lines (table rows stay one line each)
    text = re.sub(r"(?<=[^|\n])\n(?=[^|\n#])", " ", path.read_text())
    for line in text.splitlines():
        if line.startswith("## "):
            scope = [word for word in re.findall(r"[a-z0-9-]+", line) if word in CONTRACT]
        row = re.match(r"\| `([a-z0-9-]+)` \|", line)
        ids = [row.group(1)] if row and row.group(1) in CONTRACT else scope
        for claim in CLAIM.finditer(line):
            names = re.sub(r"\([^)]*\)", "", claim.group(1))  # a parenthesis explains, it does not claim
            found += [(ids, name) for name in NAME.findall(names)]
    return found


ENDPOINT_DOCS = sorted((ROOT / "docs").glob("endpoints-*.md"))


@pytest.mark.parametrize("path", ENDPOINT_DOCS, ids=lambda p: p.name)
def test_endpoint_docs_attribute_to_arkapi_only_fields_it_sends(path: Path) -> None:
    claims = claims_in(path)
    wrong = [(ids, name) for ids, name in claims if ids and not is_contract_field(ids, name)]
    assert wrong == []


def test_the_endpoint_docs_make_claims_that_are_checked() -> None:
    """The checker sees the claims (a regex that matched nothing would pass everything)."""
    claims = [c for path in ENDPOINT_DOCS for c in claims_in(path)]
    assert len(claims) > 30
    assert (["bitcoin-address"], "balance") in claims
    assert (["email-auth-check"], "dkim.selector_used") in claims


def _row(start: str) -> list[str]:
    line = next(line for line in COMPAT_DOC.read_text().splitlines() if line.startswith(start))
    return NAME.findall(line.split("|")[2])


def _has(payload: dict[str, Any], dotted: str) -> bool:
    for part in dotted.split("."):
        if not isinstance(payload, dict) or part not in payload:
            return False
        payload = payload[part]
    return True


async def test_the_session_and_envelope_rows_name_fields_arkgate_sends(gateway_factory, simulator) -> None:
    async with gateway_factory(payment_mode="barkd", barkd_url=simulator.url, barkd_token=simulator.token) as gw:
        created = (await gw.client.post("/v1/sessions", json={"amount_sats": 500})).json()
        simulator.pay_invoice(created["funding"]["lightning_invoice"])
        headers = {"Authorization": f"Bearer {created['token']}"}

        async def active() -> dict[str, Any] | None:
            body = (await gw.client.get("/v1/balance", headers=headers)).json()
            return body if body["status"] == "active" else None

        balance = await wait_for(active)
        paid = (await gw.call("qr-generate", {"data": "x"}, token=created["token"])).json()
    assert [n for n in _row("| `POST /v1/sessions`") if not _has(created, n)] == []
    assert [n for n in _row("| `GET /v1/balance`") if not _has(balance, n)] == []
    assert "token" not in balance  # the documented difference
    envelope = _row("| Response wrapper")
    assert [n for n in envelope if n != "error" and not _has(paid, n)] == []  # error: on failures only
    assert paid["endpoint"] == "/api/qr-generate"
