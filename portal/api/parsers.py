"""The API's one JSON parser (`REST_FRAMEWORK["DEFAULT_PARSER_CLASSES"]`).

Numbers are read as `Decimal`, so an amount sent as a JSON number is never a float. A body
nested deeper than `MAX_DEPTH` levels, or with a NUL character (``\\u0000``) in a key or a
string, is refused whole with 400 `{"detail", "code"}` before any view sees it: PostgreSQL
text cannot hold NUL, and Python's JSON decoder recurses once per level.

The events endpoint keeps NUL inside strings (`EventJSONParser`): there one bad event is
refused on its own while the rest of its batch is accepted; deep nesting is still refused
for the whole body.
"""

from __future__ import annotations

import json
from decimal import Decimal

from django.utils.translation import gettext as _
from rest_framework import parsers
from rest_framework.exceptions import ParseError

__all__ = ["MAX_DEPTH", "EventJSONParser", "JSONParser"]

#: the deepest nesting of objects and arrays a body may have (an event batch needs 3)
MAX_DEPTH = 32


def _refusal(data, *, refuse_nul: bool) -> ParseError | None:
    """Why a decoded body is refused, if it is: nested deeper than `MAX_DEPTH`, or a NUL
    character in a key or a string. Walked with a list, never by recursion."""
    pending = [(data, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, dict | list):
            if depth > MAX_DEPTH:
                return _too_deep()
            values = item.values() if isinstance(item, dict) else item
            if refuse_nul and isinstance(item, dict) and any("\x00" in key for key in item):
                return _nul()
            pending.extend((value, depth + 1) for value in values)
        elif refuse_nul and isinstance(item, str) and "\x00" in item:
            return _nul()
    return None


def _too_deep() -> ParseError:
    return ParseError(
        _("The body nests objects or arrays deeper than %(depth)d levels.") % {"depth": MAX_DEPTH},
        "too_deeply_nested",
    )


def _nul() -> ParseError:
    return ParseError(
        _(
            "The body contains a NUL character (\\u0000) in a key or a text value; remove it "
            "and send the request again."
        ),
        "nul_character",
    )


class JSONParser(parsers.JSONParser):
    """JSON with numbers read as `Decimal`; too deep a body or a NUL character is a 400."""

    #: False where NUL inside strings is left to the view (the events endpoint)
    refuse_nul = True

    def parse(self, stream, media_type=None, parser_context=None):
        encoding = (parser_context or {}).get("encoding", "utf-8")
        try:
            data = json.loads(stream.read().decode(encoding), parse_float=Decimal)
        except RecursionError:  # nested by the thousand: the decoder's own recursion gave up
            raise _too_deep() from None
        except (ValueError, UnicodeDecodeError, LookupError) as exc:
            raise ParseError(
                _("The body is not valid JSON: %(error)s") % {"error": exc}, "parse_error"
            ) from None
        refusal = _refusal(data, refuse_nul=self.refuse_nul)
        if refusal is not None:
            raise refusal
        return data


class EventJSONParser(JSONParser):
    """The events endpoint's parser: NUL inside strings reaches the view, which refuses the
    one event that carries it and accepts the rest of the batch."""

    refuse_nul = False
