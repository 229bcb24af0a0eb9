"""API errors in the shape API.md fixes: {"detail": ..., "code": ...} or field errors.

The one DRF exception handler: DRF's own exceptions as DRF answers them (with a `code`), and
every `DomainError` by its class — `NotAllowed` 403, `StateConflict` 409, `InvalidInput`
400 (or the class's own `http_status`); a refusal about one input field also names it.

A database outage (a lost or refused connection, a deadlock or timeout that outlasted its
retries) is 503 `database_unavailable` with `Retry-After`: the request's transaction is
rolled back and the broken connection closed, so the next request connects afresh. Anything
else unexpected is left to `portal.api.middleware.ApiErrorMiddleware`, which logs it and
answers 500 `server_error` as JSON (and a 404 for an unknown /api/ address as JSON).

A request body larger than `DATA_UPLOAD_MAX_MEMORY_SIZE` is 413 `request_too_large`: the
middleware refuses it by its Content-Length before anything reads it, and Django's
`RequestDataTooBig` (a body that outgrew its announced length) is answered the same here.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db import InterfaceError, OperationalError, connections
from django.http import JsonResponse
from django.urls import Resolver404, resolve
from django.utils.translation import gettext as _
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler
from rest_framework.views import set_rollback

from ..errors import DomainError

__all__ = [
    "DATABASE_OUTAGE_ERRORS",
    "database_unavailable_body",
    "database_unavailable_json",
    "exception_handler",
    "is_api_request",
    "not_found_json",
    "request_too_large_body",
    "request_too_large_json",
    "server_error_json",
]

logger = logging.getLogger(__name__)

#: what Django raises when the database cannot answer (psycopg's connection-lost, admin
#: shutdown, pool timeout… arrive wrapped in these); psycopg's own classes for code that
#: talks to the driver directly
DATABASE_OUTAGE_ERRORS: tuple[type[BaseException], ...] = (OperationalError, InterfaceError)
try:
    import psycopg
except ImportError:  # pragma: no cover - SQLite-only installation
    pass
else:
    DATABASE_OUTAGE_ERRORS += (psycopg.OperationalError, psycopg.InterfaceError)

#: URL names of the requests that are safe to send again whole after an outage (the events
#: are idempotent by event_id): their 503 says so, so a client knows a retry records nothing
#: twice
RETRY_SAFE_URL_NAMES = {"api-events"}


def is_api_request(request) -> bool:
    return request.path_info.startswith("/api/")


def retry_after_seconds() -> int:
    return int(getattr(settings, "API_RETRY_AFTER_SECONDS", 5))


def _url_name(request) -> str | None:
    match = getattr(request, "resolver_match", None)
    if match is None:
        try:
            match = resolve(request.path_info)
        except Resolver404:
            return None
    return match.url_name


def database_unavailable_body(request) -> dict:
    seconds = retry_after_seconds()
    if _url_name(request) in RETRY_SAFE_URL_NAMES:
        detail = _(
            "The database is unavailable at the moment. Send the same batch again in "
            "%(seconds)d seconds: events are idempotent by event_id, so re-sending is safe — "
            "an event already stored counts as a duplicate and nothing is recorded twice."
        ) % {"seconds": seconds}
    else:
        detail = _(
            "The database is unavailable at the moment. Try again in %(seconds)d seconds."
        ) % {"seconds": seconds}
    return {"detail": detail, "code": "database_unavailable"}


def close_broken_connections() -> None:
    """Drop every database connection an error left unusable, so that the next query (this
    request's or the next one's) connects afresh instead of failing on the dead socket.
    A transaction still open around the request is only marked for rollback."""
    for conn in connections.all(initialized_only=True):
        if conn.connection is None:
            continue
        if not conn.is_usable():
            conn.close()
        else:
            conn.errors_occurred = False


def _database_outage(request, exc) -> None:
    set_rollback()  # a transaction around the whole request (ATOMIC_REQUESTS) rolls back
    close_broken_connections()
    logger.warning("Database unavailable during %s %s: %s", request.method, request.path, exc)


def database_unavailable_json(request, exc) -> JsonResponse:
    """The 503 for a request that never reached a DRF view (middleware, non-DRF views)."""
    _database_outage(request, exc)
    response = _json(database_unavailable_body(request), status=503)
    response["Retry-After"] = str(retry_after_seconds())
    return response


def _json(body: dict, *, status: int) -> JsonResponse:
    return JsonResponse(body, status=status, json_dumps_params={"ensure_ascii": False})


def server_error_json() -> JsonResponse:
    return _json(
        {
            "detail": _(
                "The server met an unexpected error. It has been logged; try again later or "
                "tell the portal's administrators."
            ),
            "code": "server_error",
        },
        status=500,
    )


def not_found_json() -> JsonResponse:
    return _json(
        {
            "detail": _("There is no API endpoint at this address; /api/docs/ lists them."),
            "code": "not_found",
        },
        status=404,
    )


def request_too_large_body() -> dict:
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    return {
        "detail": _(
            "The request body is larger than the %(limit)s bytes the API takes; send less "
            "(events: at most 1,000 per batch)."
        )
        % {"limit": f"{limit:,}"},
        "code": "request_too_large",
        "max_bytes": limit,
    }


def request_too_large_json() -> JsonResponse:
    """The 413 for a body over the limit, before any view or middleware read it."""
    return _json(request_too_large_body(), status=413)


def exception_handler(exc, context):
    if isinstance(exc, RequestDataTooBig):
        return Response(request_too_large_body(), status=413)
    if isinstance(exc, DomainError):
        set_rollback()
        data = {"detail": exc.message, "code": exc.code, **exc.details}
        if exc.field:
            data[exc.field] = [exc.message]
        return Response(data, status=exc.http_status)
    if isinstance(exc, DATABASE_OUTAGE_ERRORS):
        request = context["request"]
        _database_outage(request, exc)
        return Response(
            database_unavailable_body(request),
            status=503,
            headers={"Retry-After": str(retry_after_seconds())},
        )
    response = drf_exception_handler(exc, context)
    if response is None:
        return None  # unexpected: ApiErrorMiddleware logs it and answers a JSON 500
    data = response.data
    if isinstance(data, dict) and "detail" in data and "code" not in data:
        detail = data["detail"]
        data["code"] = getattr(detail, "code", None) or getattr(exc, "default_code", "error")
    return response
