"""Refuses input no one types, before it reaches a form, a query or the database.

PostgreSQL text cannot hold a NUL character: a `%00` in a list filter or in an address once
made the database raise `DataError` (a 500). Every request whose path, query-string keys or
values, or form fields (urlencoded or multipart; never uploaded files' contents) carry a NUL
or another C0 control character is answered 400 here — `{"detail", "code"}` JSON under
/api/, the translated 400 page elsewhere. A query value longer than `MAX_QUERY_VALUE_LENGTH`
characters is refused too: no filter or search of the portal takes one.

It checks in `process_view`, once the request's language and user are known (so the page is
in the user's language, with the portal's navigation) and before any view or the CSRF check
reads the body. A view exempt from CSRF reads its body itself (the API, whose JSON parser
refuses NUL: `portal.api.parsers`; the feed upload, which must set its upload handlers first):
its multipart body is left unread here.
"""

from __future__ import annotations

import re

from django.http import JsonResponse
from django.http.multipartparser import MultiPartParserError
from django.shortcuts import render
from django.utils.translation import gettext as _

__all__ = ["MAX_QUERY_VALUE_LENGTH", "InputGuardMiddleware", "refusal"]

#: the longest query-string value a page or the API takes (a search, a code, a date…)
MAX_QUERY_VALUE_LENGTH = 200
#: query keys that carry an address or the admin's saved filters: longer, still bounded
LONG_QUERY_KEYS = {"next", "_changelist_filters"}
MAX_LONG_QUERY_VALUE_LENGTH = 2000

#: in an address or a key: every C0 control character and DEL
_CONTROL_IN_NAME = re.compile(r"[\x00-\x1f\x7f]")
#: in a value: the same but tab, line feed and carriage return (a note typed in a textarea)
_CONTROL_IN_VALUE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")

_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def _refused_text(where: str) -> tuple[str, str]:
    return (
        _(
            "The request was refused: %(where)s contains a NUL or another control character. "
            "Remove it and try again."
        )
        % {"where": where},
        "control_character",
    )


def refusal(request, *, read_form: bool) -> tuple[str, str] | None:
    """(message, code) of why the request's input is refused, or None. The form fields are
    read only if `read_form` (a view that reads its own body is left to do so)."""
    if _CONTROL_IN_NAME.search(request.path_info):
        return _refused_text(_("the address"))
    for key, values in request.GET.lists():
        if _CONTROL_IN_NAME.search(key) or any(_CONTROL_IN_VALUE.search(v) for v in values):
            return _refused_text(_("the query string"))
        limit = MAX_LONG_QUERY_VALUE_LENGTH if key in LONG_QUERY_KEYS else MAX_QUERY_VALUE_LENGTH
        if any(len(value) > limit for value in values):
            return (
                _(
                    "The request was refused: the query parameter “%(name)s” is longer "
                    "than %(limit)d characters."
                )
                % {"name": key[:40], "limit": limit},
                "query_too_long",
            )
    if read_form and request.method == "POST" and request.content_type in _FORM_TYPES:
        try:
            fields = request.POST  # the values only: uploaded files are never looked at
        except MultiPartParserError:
            return _("The request was refused: the form data is malformed."), "malformed_form"
        for key, values in fields.lists():
            if _CONTROL_IN_NAME.search(key) or any(_CONTROL_IN_VALUE.search(v) for v in values):
                return _refused_text(_("a form field"))
    return None


class InputGuardMiddleware:
    """Placed right after `ApiErrorMiddleware`; see the module's docstring."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        reads_own_body = getattr(view_func, "csrf_exempt", False)
        read_form = not reads_own_body or request.content_type != "multipart/form-data"
        found = refusal(request, read_form=read_form)
        if found is None:
            return None
        message, code = found
        if request.path_info.startswith("/api/"):
            return JsonResponse(
                {"detail": message, "code": code},
                status=400,
                json_dumps_params={"ensure_ascii": False},
            )
        return render(request, "400.html", {"message": message}, status=400)
