"""/openapi.json: a valid OpenAPI 3.1 document built from the registry, honest about prices and errors."""

from __future__ import annotations

from openapi_spec_validator import OpenAPIV31SpecValidator, validate

from arkgate.catalog.registry import load_catalog
from tests.agents.conftest import offline_catalog
from tests.conftest import running_gateway


async def test_the_document_validates_against_the_openapi_3_1_schema(make_settings):
    async with running_gateway(make_settings(), catalog=load_catalog()) as gw:
        doc = (await gw.client.get("/openapi.json")).json()
    assert doc["openapi"] == "3.1.0"
    validate(doc, cls=OpenAPIV31SpecValidator)
    assert doc["servers"] == [{"url": "http://gateway", "description": "this gateway"}]


async def test_paid_operations_carry_price_schemas_examples_and_errors(gateway):
    doc = (await gateway.client.get("/openapi.json")).json()
    schemes = doc["components"]["securitySchemes"]
    assert schemes["BearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "ak_ session token",
        "description": schemes["BearerAuth"]["description"],
    }
    assert "L402" in schemes
    settings = gateway.settings
    for endpoint in gateway.runtime.catalog:
        operation = doc["paths"][endpoint.path][endpoint.method.lower()]
        assert operation["x-cost-sats"] == endpoint.listed_price_sats(settings)
        assert operation["x-category"] == endpoint.category and operation["tags"] == [endpoint.category]
        assert {"BearerAuth": []} in operation["security"]
        for status in ("200", "400", "401", "402", "429", "502", "504"):
            assert status in operation["responses"], (endpoint.id, status)
        success = operation["responses"]["200"]["content"]["application/json"]["schema"]
        assert success["required"] == ["success", "data", "cost_sats", "balance_remaining", "response_ms", "endpoint"]
        if endpoint.response_model is not None:
            assert success["properties"]["data"] == {"$ref": f"#/components/schemas/{endpoint.response_model.__name__}"}
        if endpoint.method == "GET":
            names = {p["name"] for p in operation["parameters"] if p["in"] == "query"}
            assert names == set(endpoint.request_model.model_fields)
            assert "requestBody" not in operation
        else:
            body = operation["requestBody"]["content"]["application/json"]
            assert body["schema"] == {"$ref": f"#/components/schemas/{endpoint.request_model.__name__}"}
            if endpoint.example is not None:
                assert body["example"] == endpoint.example
        if endpoint.metered is not None:
            assert operation["x-pricing"]["rate"] == endpoint.metered.rate(settings)
            assert operation["x-max-cost-sats"] == endpoint.max_price_sats(settings)
            assert endpoint.metered.rate(settings) in operation["description"]
    # The free operations: session creation and top-up, with their errors in the same envelope.
    create = doc["paths"]["/v1/sessions"]["post"]
    assert create["requestBody"]["content"]["application/json"]["schema"]["required"] == ["amount_sats"]
    assert {"201", "400", "429", "503"} <= set(create["responses"])
    assert "422" not in create["responses"]
    assert doc["paths"]["/v1/sessions/topup"]["post"]["security"] == [{"BearerAuth": []}]
    assert doc["paths"]["/v1/balance"]["get"]["security"] == [{"BearerAuth": []}]
    assert "/v1/quote" in doc["paths"] and "/.well-known/arkapi.json" in doc["paths"]
    assert "HTTPValidationError" not in doc["components"]["schemas"]


async def test_the_document_follows_the_registry_it_is_built_from(make_settings):
    async with running_gateway(make_settings(), catalog=offline_catalog("qr-generate")) as gw:
        doc = (await gw.client.get("/openapi.json")).json()
        assert gw.app.openapi()["paths"].keys() == doc["paths"].keys()
    paid = [path for path in doc["paths"] if path.startswith("/api/")]
    assert paid == ["/api/qr-generate"]
    async with running_gateway(make_settings(public_url="https://pay.example/"), catalog=offline_catalog()) as gw:
        doc = (await gw.client.get("/openapi.json")).json()
    assert doc["servers"][0]["url"] == "https://pay.example"
