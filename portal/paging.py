"""Links of paginated and tabbed pages, and long lists shown in part."""

from __future__ import annotations

from dataclasses import dataclass

from django.utils.translation import gettext as _
from django.utils.translation import ngettext

#: rows a long list on a page (the customer page's) shows before its "all N" control
SHOWN_ROWS = 10
#: rows such a list reads at most, so the page stays one bounded set of queries
LIST_LIMIT = 50


@dataclass(frozen=True)
class CappedList:
    """A list as a page shows it: its rows (at most `LIST_LIMIT`), of which the first
    `SHOWN_ROWS` are shown and the rest open with the list's "all N" control."""

    name: str
    rows: list
    #: more rows exist than were read: the control offers "the latest 50"
    truncated: bool = False

    @property
    def shown(self) -> int:
        return SHOWN_ROWS

    @property
    def hidden(self) -> int:
        return max(0, len(self.rows) - SHOWN_ROWS)

    @property
    def more_text(self) -> str:
        count = len(self.rows)
        if self.truncated:
            return _("Show the latest %(count)s") % {"count": count}
        return ngettext("Show all %(count)s", "Show all %(count)s", count) % {"count": count}


def capped(name: str, rows) -> CappedList:
    """The first `LIST_LIMIT` of `rows` (a list or a query set, read one past the limit so
    the page knows whether more exist)."""
    rows = list(rows[: LIST_LIMIT + 1])
    return CappedList(name, rows[:LIST_LIMIT], truncated=len(rows) > LIST_LIMIT)


def query_without(request, *names: str) -> str:
    """The request's query string without `names`, so that page and tab links keep the
    filters (e.g. `query_without(request, "page")`)."""
    query = request.GET.copy()
    for name in names:
        query.pop(name, None)
    return query.urlencode()
