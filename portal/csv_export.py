"""CSV files people open in Excel: the one way the portal writes them (member exports,
dashboard charts). UTF-8 with a byte order mark so Excel reads Chinese names, text that
Excel would run as a formula quoted, streamed line by line."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator, Sequence

from django.http import StreamingHttpResponse

#: A text cell starting with one of these is a formula to Excel: it is quoted with "'".
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_safe_text(value: str) -> str:
    """`value`, quoted with "'" when Excel would read it as a formula."""
    return "'" + value if value.startswith(FORMULA_START) else value


class _Line:
    """A file-like object for csv.writer that hands back the line written."""

    def write(self, value: str) -> str:
        return value


def csv_lines(header: Sequence[str], rows: Iterable[Sequence]) -> Iterator[str]:
    """A UTF-8 byte order mark, the header, then one line per row (cells as given)."""
    writer = csv.writer(_Line())
    yield "\ufeff" + writer.writerow(header)
    for row in rows:
        yield writer.writerow(row)


def csv_response(lines: Iterator[str], filename: str) -> StreamingHttpResponse:
    """The lines streamed as a CSV attachment named `filename`."""
    response = StreamingHttpResponse(lines, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
