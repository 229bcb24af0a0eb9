"""API errors in the shape API.md fixes: {"detail": ..., "code": ...} or field errors."""

from rest_framework.views import exception_handler as drf_exception_handler


def exception_handler(exc, context):
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    data = response.data
    if isinstance(data, dict) and "detail" in data and "code" not in data:
        detail = data["detail"]
        data["code"] = getattr(detail, "code", None) or getattr(exc, "default_code", "error")
    return response
