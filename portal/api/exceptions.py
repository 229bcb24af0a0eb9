"""API errors in the shape API.md fixes: {"detail": ..., "code": ...} or field errors.

The one DRF exception handler: DRF's own exceptions as DRF answers them (with a `code`), and
every `DomainError` by its class — `NotAllowed` 403, `StateConflict` 409, `InvalidInput`
400 (or the class's own `http_status`); a refusal about one input field also names it."""

from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler
from rest_framework.views import set_rollback

from ..errors import DomainError


def exception_handler(exc, context):
    if isinstance(exc, DomainError):
        set_rollback()
        data = {"detail": exc.message, "code": exc.code, **exc.details}
        if exc.field:
            data[exc.field] = [exc.message]
        return Response(data, status=exc.http_status)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    data = response.data
    if isinstance(data, dict) and "detail" in data and "code" not in data:
        detail = data["detail"]
        data["code"] = getattr(detail, "code", None) or getattr(exc, "default_code", "error")
    return response
