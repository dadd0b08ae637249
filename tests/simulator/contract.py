"""Validate simulator responses against barkd's OpenAPI documents (0.6.0 and 0.8.0, in tests/fixtures/barkd)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
from jsonschema import Draft202012Validator

# barkd's own API descriptions (MIT, by Second), vendored with their licence.
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "barkd"


def load_spec(version: str = "0.6.0") -> dict[str, Any]:
    spec: dict[str, Any] = json.loads((FIXTURES / f"openapi-{version}.json").read_text())
    return spec


class ContractClient:
    """Calls the simulator by OpenAPI path template and validates every JSON body it gets back."""

    def __init__(self, client: httpx.Client, spec: dict[str, Any]) -> None:
        self.client = client
        self.spec = spec
        self.covered: set[tuple[str, str]] = set()

    def schema_for(self, method: str, template: str, status: int) -> dict[str, Any] | None:
        responses = self.spec["paths"][template][method.lower()]["responses"]
        entry = responses.get(str(status))
        if entry is None:
            return None
        schema = entry.get("content", {}).get("application/json", {}).get("schema")
        if schema is None:
            return None
        # Resolve "#/components/..." refs against the document by embedding its components.
        return {**schema, "components": self.spec["components"]}

    def call(
        self, method: str, template: str, *, status: int = 200, params: dict[str, Any] | None = None, **kw: Any
    ) -> Any:
        path = template.format(**(params or {}))
        response = self.client.request(method, path, **kw)
        assert response.status_code == status, (method, path, response.status_code, response.text)
        template = template.split("?")[0]
        self.covered.add((method.upper(), template))
        if not response.content:
            return None
        if not response.headers.get("content-type", "").startswith("application/json"):
            return response.text
        body = response.json()
        schema = self.schema_for(method, template, status)
        if schema is not None:
            errors = sorted(Draft202012Validator(schema).iter_errors(body), key=str)
            assert not errors, f"{method} {template} {status}: {[e.message for e in errors][:5]}"
        return body

    def all_operations(self) -> set[tuple[str, str]]:
        return {(m.upper(), p) for p, ops in self.spec["paths"].items() for m in ops}
