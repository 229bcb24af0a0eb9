"""The error answers of the OpenAPI schema: what every operation can answer besides its
success, each with its JSON body (API.md, "REST API").

`portal.api.exceptions` and `portal.api.middleware` answer every error of an /api/ address
as `{"detail", "code"}` (plus the facts of the refusal, e.g. `max`) or, for input that fails
its checks, as field errors keyed by field. `error_responses` — a drf-spectacular
postprocessing hook (SPECTACULAR_SETTINGS) — adds to each operation the statuses it can
give:

- 400 for every operation (field errors, or `{"detail", "code"}` for a malformed body, a
  refused input, or a NUL or control character in the address or query —
  `portal.input_guard`);
- 401 and 403 for every operation (no or a bad token or session; a role or a token scope
  that does not allow it);
- 404 when its address names an object (a path parameter) or it lists a page (`?page=`);
- 413 `request_too_large` when it takes a body (`DATA_UPLOAD_MAX_MEMORY_SIZE`);
- 500 `server_error` and 503 `database_unavailable` (with `Retry-After`) for every one.

Statuses a view states itself (`extend_schema(responses={409: CONFLICT})` where the object's
state can refuse the change, 413 `batch_too_large` of the events) are kept, with the error
body filled in when the view gives only a description.
"""

from __future__ import annotations

from django.conf import settings
from drf_spectacular.utils import OpenApiResponse

__all__ = [
    "CONFLICT",
    "THROTTLED",
    "error_responses",
    "request_limit_text",
]

ERROR_REF = {"$ref": "#/components/schemas/Error"}
BAD_REQUEST_REF = {"$ref": "#/components/schemas/BadRequest"}

#: the component schemas of the error bodies
ERROR_COMPONENTS = {
    "Error": {
        "type": "object",
        "description": "An error: a message in the caller's language (`detail`) and a stable "
        "machine-readable `code`; some refusals add facts (e.g. `max`, `retry_after`) or "
        "name the input field they are about.",
        "properties": {
            "detail": {"type": "string"},
            "code": {"type": "string"},
        },
        "required": ["detail", "code"],
        "additionalProperties": True,
    },
    "FieldErrors": {
        "type": "object",
        "description": "Input that failed its checks: the messages keyed by field "
        "(`non_field_errors` for the body as a whole); a nested object's or a list's "
        "errors are keyed by its fields or positions.",
        "additionalProperties": {
            "anyOf": [
                {"type": "array", "items": {}},
                {"type": "object", "additionalProperties": {}},
            ]
        },
    },
    "BadRequest": {
        "description": "Bad input: field errors, or `{detail, code}` for a malformed body or "
        "an input a rule refused (which may also name its field).",
        "anyOf": [ERROR_REF, {"$ref": "#/components/schemas/FieldErrors"}],
    },
}

#: a view's 409: the object's current state does not allow the change
CONFLICT = OpenApiResponse(
    description="Conflict with the object's current state (e.g. no longer editable, already "
    "decided, in use, budget exhausted)."
)
#: a view's 429: too many searches by a personal number
THROTTLED = OpenApiResponse(
    description="Too many searches by a personal number; `retry_after` says in how many "
    "seconds the next is allowed (`throttled`)."
)

_DESCRIPTIONS = {
    "400": ERROR_COMPONENTS["BadRequest"]["description"],
    "401": "Not authenticated: no, an invalid, a revoked or an expired token, or no session.",
    "403": "Not allowed: the user's role, the token's scopes or the object's scope do not "
    "allow it (or a session request without its CSRF token).",
    "404": "Not found: no such object in the caller's scope, or no such page.",
    "409": CONFLICT.description,
    "413": "The request body is larger than the API takes (`request_too_large`).",
    "429": THROTTLED.description,
    "500": "An unexpected error; it was logged (`server_error`).",
    "503": "The database is unavailable (`database_unavailable`); try again after "
    "`Retry-After` seconds.",
}

_HEADERS = {
    "401": {
        "WWW-Authenticate": {
            "schema": {"type": "string"},
            "description": "How to authenticate: `Token`.",
        }
    },
    "429": {
        "Retry-After": {
            "schema": {"type": "integer"},
            "description": "Seconds until the next search by a personal number is allowed.",
        }
    },
    "503": {
        "Retry-After": {
            "schema": {"type": "integer"},
            "description": "Seconds to wait before sending the request again.",
        }
    },
}


def request_limit_text() -> str:
    """The request limit as the schema's description states it."""
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    if limit is None:
        return ""
    return (
        f" Request bodies are limited to {limit:,} bytes ({limit / 1024 / 1024:.1f} MiB): a "
        'larger one is answered 413 `{"detail": ..., "code": "request_too_large"}`.'
    )


def _error_response(status: str) -> dict:
    body = BAD_REQUEST_REF if status == "400" else ERROR_REF
    response = {
        "description": _DESCRIPTIONS.get(status, "An error."),
        "content": {"application/json": {"schema": body}},
    }
    if status in _HEADERS:
        response["headers"] = _HEADERS[status]
    return response


def _statuses(operation: dict) -> list[str]:
    parameters = operation.get("parameters", [])
    in_path = any(p.get("in") == "path" for p in parameters)
    in_query = [p for p in parameters if p.get("in") == "query"]
    takes_body = "requestBody" in operation
    statuses = ["400", "401", "403", "500", "503"]
    if in_path or any(p.get("name") == "page" for p in in_query):
        statuses.append("404")
    if takes_body:
        statuses.append("413")
    return statuses


def error_responses(result, generator, request, public):
    """drf-spectacular postprocessing hook: the error answers of every operation, and the
    request limit in the schema's description."""
    result.setdefault("components", {}).setdefault("schemas", {}).update(ERROR_COMPONENTS)
    info = result.setdefault("info", {})
    info["description"] = info.get("description", "") + request_limit_text()
    for path_item in result.get("paths", {}).values():
        for operation in path_item.values():
            responses = operation.setdefault("responses", {})
            # statuses a view stated (409, 413 of a batch, 429) get the error body
            for status, response in responses.items():
                if status[0] in "45" and "content" not in response:
                    response.update(
                        {k: v for k, v in _error_response(status).items() if k != "description"}
                    )
            for status in _statuses(operation):
                responses.setdefault(status, _error_response(status))
            operation["responses"] = dict(sorted(responses.items()))
    return result
