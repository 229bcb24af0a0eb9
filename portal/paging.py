"""Links of paginated and tabbed pages."""

from __future__ import annotations


def query_without(request, *names: str) -> str:
    """The request's query string without `names`, so that page and tab links keep the
    filters (e.g. `query_without(request, "page")`)."""
    query = request.GET.copy()
    for name in names:
        query.pop(name, None)
    return query.urlencode()
