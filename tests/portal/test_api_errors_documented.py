"""The OpenAPI schema says what the API does (issue 15, finding 7): nullable fields are
nullable, the error statuses are documented with their JSON body, the reject actions say
their comment is required, and a body over the limit is a JSON 413, not an HTML 400."""

from __future__ import annotations

import json

import pytest
from drf_spectacular.generators import SchemaGenerator

from portal.choices import Role


@pytest.fixture(scope="module")
def schema() -> dict:
    return json.loads(json.dumps(SchemaGenerator().get_schema(request=None, public=True)))


def _props(schema: dict, component: str) -> dict:
    return schema["components"]["schemas"][component]["properties"]


@pytest.mark.parametrize(
    ("component", "field"),
    [
        ("Budget", "parent"),
        ("Campaign", "submitted_by"),
        ("Campaign", "decided_by"),
        ("MemberList", "account_manager"),
    ],
)
def test_fields_that_can_be_null_say_so(schema, component, field):
    assert _props(schema, component)[field].get("nullable") is True


def test_every_operation_documents_its_errors_with_a_json_body(schema):
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            for status in ("400", "401", "403"):
                assert status in responses, (method, path, status)
                assert "application/json" in responses[status]["content"], (method, path)
            if operation.get("requestBody"):
                assert "413" in responses, (method, path)
            if "{" in path:
                assert "404" in responses, (method, path)


@pytest.mark.parametrize(
    "path", ["/api/v1/campaigns/{id}/reject/", "/api/v1/approvals/{id}/reject/"]
)
def test_a_rejection_documents_its_required_comment(schema, path):
    body = schema["paths"][path]["post"]["requestBody"]
    ref = body["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    assert "comment" in schema["components"]["schemas"][ref].get("required", [])


def test_a_body_over_the_limit_is_a_json_413(api_client_for, make_user, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 100_000
    system = make_user(Role.SYSTEM, username="mobile_banking", branch="HO")
    client = api_client_for(system)

    response = client.post(
        "/api/v1/events/",
        data=json.dumps({"events": [], "padding": "x" * 200_000}),
        content_type="application/json",
    )

    assert response.status_code == 413
    assert response["Content-Type"].startswith("application/json")
    assert response.json()["code"] == "request_too_large"
