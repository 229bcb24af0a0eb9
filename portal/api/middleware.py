"""JSON errors for every /api/ address, wherever the error arose (API.md: a 500 is still
`{"detail", "code"}`, never Django's HTML page; a database outage is 503 with `Retry-After`).

The DRF exception handler (`portal.api.exceptions`) answers what a DRF view raises. This
middleware covers the rest, for /api/ paths only:

- an exception a view let through (DRF re-raises what its handler does not know): logged
  with its traceback, then a JSON 500 `server_error` — or the 503 for a database outage;
- an exception raised in a middleware (e.g. pghistory's reading the session user of a POST
  while the database is gone): Django has already turned it into its HTML 500 page below
  this middleware; `got_request_exception` tells which exception it was, and the page is
  replaced by the JSON 500 or 503;
- the resolver's HTML 404 for an unknown address: a JSON 404 `not_found`;
- a body over `DATA_UPLOAD_MAX_MEMORY_SIZE`: a JSON 413 `request_too_large`, answered from
  its Content-Length before any layer reads it (else Django raises `RequestDataTooBig` in
  whichever layer reads it first: an HTML 400 from the CSRF check, a 500 from a view).

Responses DRF rendered (JSON or the browsable API) pass unchanged.
"""

from __future__ import annotations

import logging
import sys

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.core.signals import got_request_exception
from django.utils import translation
from rest_framework.response import Response as DrfResponse

from .exceptions import (
    DATABASE_OUTAGE_ERRORS,
    database_unavailable_json,
    is_api_request,
    not_found_json,
    request_too_large_json,
    server_error_json,
)

logger = logging.getLogger("django.request")

_EXCEPTION_ATTR = "_api_unhandled_exception"


def _remember_exception(sender, request=None, **kwargs) -> None:
    """Sent by Django while it turns an uncaught exception into its 500 page."""
    if request is not None and is_api_request(request):
        setattr(request, _EXCEPTION_ATTR, sys.exc_info()[1])


got_request_exception.connect(
    _remember_exception, weak=False, dispatch_uid="portal.api.middleware.remember_exception"
)


class ApiErrorMiddleware:
    """Placed near the top of MIDDLEWARE, so that it sees every inner layer's answer."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if is_api_request(request) and _body_too_large(request):
            # answered before LocaleMiddleware: in the language the client asks for
            with translation.override(translation.get_language_from_request(request)):
                return request_too_large_json()
        response = self.get_response(request)
        if not is_api_request(request) or isinstance(response, DrfResponse):
            return response
        if response.status_code not in (404, 500) or _is_json(response):
            return response
        exc = getattr(request, _EXCEPTION_ATTR, None)
        if response.status_code == 404:
            answer = not_found_json()
        elif isinstance(exc, DATABASE_OUTAGE_ERRORS):
            answer = database_unavailable_json(request, exc)
        else:
            answer = server_error_json()
        # Django logged the original (a 500 with its traceback); not once more for the copy
        answer._has_been_logged = getattr(response, "_has_been_logged", False)
        return answer

    def process_exception(self, request, exception):
        if not is_api_request(request):
            return None
        if isinstance(exception, DATABASE_OUTAGE_ERRORS):
            return database_unavailable_json(request, exception)
        if isinstance(exception, RequestDataTooBig):
            return request_too_large_json()
        logger.error(
            "Internal Server Error: %s",
            request.path,
            exc_info=exception,
            extra={"status_code": 500, "request": request},
        )
        response = server_error_json()
        response._has_been_logged = True  # Django's own log line would repeat it without
        return response


def _body_too_large(request) -> bool:
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return False  # Django reads such a body as empty
    return limit is not None and length > limit


def _is_json(response) -> bool:
    return response.get("Content-Type", "").startswith("application/json")
