"""Reading member events as `POST /api/v1/events/` receives them (API.md).

Each event is checked on its own: a bad one is refused with its reasons (keyed by field, as
the API reports them) and never stops the others, whatever shape it arrives in. Every field
is checked for its JSON type first (a string where a string is expected: an array, object,
number, boolean or null in `event_id`, `member_no`, `type` or `occurred_at`, or anything but
a string or null in `channel`, is a reason, never a TypeError), then for its length bound
(`MAX_LENGTH`), then for NUL and other control characters (and lone surrogates), and only
then for its format. Amounts are strings (or integers, or JSON numbers parsed as `Decimal`,
never float) with at most 2 decimals and at most 14 digits before the point; NaN, Infinity
and numbers such as 1e400 are refused without being expanded. `occurred_at` is ISO 8601
with a UTC offset, not in the future beyond a small clock-skew allowance.

Keys an event has beyond its fields are ignored (a client may send more than this version
reads, as API.md lets types be added); they are never stored nor echoed.

A refused event is answered, and kept in its `EventBatch.rejections`, with its index, its
reasons and its `event_id` as sent only when that is safe: a non-string event_id is echoed
as null, and a string one at most `ECHO_MAX_LENGTH` characters long (cut with "…") with every
control, format, surrogate or unassigned character replaced by U+FFFD, so that a NUL never
reaches a PostgreSQL text or jsonb column and a 1 MB id is not copied back.

Reasons are English source strings translated into the request's language (gettext).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.utils.translation import gettext as _

from portal.clock import SHANGHAI

from .choices import EventType

MAX_EVENTS_PER_BATCH = 1000

#: the most characters a text field may have before its format is even looked at
MAX_LENGTH = {
    "event_id": 64,
    "member_no": 32,
    "type": 32,
    "amount": 32,
    "occurred_at": 64,
    "channel": 16,
}
#: the most characters of a refused event's event_id echoed back (and kept with the batch)
ECHO_MAX_LENGTH = 64

_EVENT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:\-]{0,63}")
_AMOUNT = re.compile(r"[0-9]{1,14}(\.[0-9]{1,2})?")
_AMOUNT_INTEGER_DIGITS = 14
_CHANNEL = re.compile(r"[A-Z][A-Z0-9_]{0,15}")
_MEMBER_NO = re.compile(r"[A-Za-z0-9]{1,32}")
_EVENT_TYPES = frozenset(EventType.values)


@dataclass(frozen=True, slots=True)
class EventRow:
    index: int
    event_id: str
    member_no: str
    type: str
    amount_fen: int
    occurred_at: datetime
    channel: str

    @property
    def occurred_on(self):
        return self.occurred_at.astimezone(SHANGHAI).date()


@dataclass(frozen=True, slots=True)
class EventRefusal:
    """A refused event. Its `event_id` is made safe to echo and store (`event_id_echo`)
    whoever builds the refusal."""

    index: int
    event_id: str | None
    errors: dict[str, list[str]]

    def __post_init__(self):
        object.__setattr__(self, "event_id", event_id_echo(self.event_id))

    def as_dict(self) -> dict:
        return {"index": self.index, "event_id": self.event_id, "errors": self.errors}


_PRINTABLE_ASCII = re.compile(r"[\x20-\x7e]*")


def _has_unsafe(text: str) -> bool:
    """Whether the text holds an `_unsafe` character (printable ASCII, the usual case, is
    told by one pattern match)."""
    return not _PRINTABLE_ASCII.fullmatch(text) and any(_unsafe(char) for char in text)


def _unsafe(char: str) -> bool:
    """Control (NUL, C0, DEL, C1), format (zero-width, bidi overrides), surrogate, private
    use or unassigned: never part of a valid field, and never echoed."""
    return unicodedata.category(char)[0] == "C"


def event_id_echo(value) -> str | None:
    """The event_id of a refused event as it may be echoed and stored: null unless a string,
    cut to `ECHO_MAX_LENGTH` characters, unsafe characters replaced by U+FFFD."""
    if not isinstance(value, str):
        return None
    cut = len(value) > ECHO_MAX_LENGTH
    text = value[: ECHO_MAX_LENGTH - 1] + "…" if cut else value
    return "".join("\ufffd" if _unsafe(char) else char for char in text)


def _json_type(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float | Decimal):
        return "number"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__  # pragma: no cover - JSON has no other types


def _text(value, field: str) -> str:
    """The field as a string ("" when absent or null), within its length bound and free of
    unsafe characters; ValueError with the reason otherwise. Its format is the caller's."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValueError(_("must be a string, not a JSON %(type)s") % {"type": _json_type(value)})
    if len(value) > MAX_LENGTH[field]:
        raise ValueError(
            _("must be at most %(max)d characters long; %(length)d were sent")
            % {"max": MAX_LENGTH[field], "length": len(value)}
        )
    if _has_unsafe(value):
        raise ValueError(_("must not contain NUL, control or other non-printing characters"))
    return value


def _event_id(value) -> str:
    text = _text(value, "event_id")
    if not _EVENT_ID.fullmatch(text):
        raise ValueError(
            _(
                "is required: 1-64 characters of letters, digits and . _ : - (starting with a "
                "letter or digit)"
            )
        )
    return text


def _member_no(value) -> str:
    text = _text(value, "member_no")
    if not _MEMBER_NO.fullmatch(text):
        raise ValueError(_("is required: up to 32 letters and digits"))
    return text


def _type(value) -> str:
    text = _text(value, "type")
    if text not in _EVENT_TYPES:
        raise ValueError(_("must be one of %(types)s") % {"types": ", ".join(sorted(_EVENT_TYPES))})
    return text


def _channel(value) -> str:
    text = _text(value, "channel")
    if text and not _CHANNEL.fullmatch(text):
        raise ValueError(_("must be an upper-case code such as MOBILE (at most 16 characters)"))
    return text


def _amount_fen(value) -> int:
    if value is None or value == "":
        return 0
    if isinstance(value, bool | float | list | dict):  # float: NaN or Infinity as sent
        raise ValueError(_('must be a decimal string such as "20000.00"'))
    if isinstance(value, int):
        if value >= 10**_AMOUNT_INTEGER_DIGITS:  # before it is written out (4,300 digits…)
            raise ValueError(_("must be less than 100,000,000,000,000"))
        text = str(value)
    elif isinstance(value, Decimal):
        # checked before it is written out: 1e400 or 1e-999999999 would expand to huge text
        if not value.is_finite():
            raise ValueError(_('must be a decimal string such as "20000.00"'))
        if value.is_signed():
            raise ValueError(_("must not be negative"))
        if value.as_tuple().exponent < -2:
            raise ValueError(_('must be a number with at most 2 decimals, e.g. "20000.00"'))
        if value and value.adjusted() >= _AMOUNT_INTEGER_DIGITS:
            raise ValueError(_("must be less than 100,000,000,000,000"))
        text = format(value, "f") if value else "0"
    else:
        text = _text(value, "amount").strip()
    if text.startswith("-"):
        raise ValueError(_("must not be negative"))
    if not _AMOUNT.fullmatch(text):
        raise ValueError(_('must be a number with at most 2 decimals, e.g. "20000.00"'))
    try:
        return int(Decimal(text) * 100)
    except InvalidOperation:  # pragma: no cover - the pattern already excludes it
        raise ValueError(_("must be a number with at most 2 decimals")) from None


def _occurred_at(value, now: datetime) -> datetime:
    text = _text(value, "occurred_at")
    if not text:
        raise ValueError(_("is required, ISO 8601 with offset, e.g. 2026-11-26T10:15:00+08:00"))
    try:
        moment = datetime.fromisoformat(text)
    except (ValueError, OverflowError):
        raise ValueError(
            _("is not an ISO 8601 timestamp, e.g. 2026-11-26T10:15:00+08:00")
        ) from None
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(_("needs a UTC offset, e.g. +08:00"))
    if moment > now + timedelta(seconds=settings.EVENT_FUTURE_TOLERANCE_SECONDS):
        raise ValueError(_("is in the future"))
    if moment < now - timedelta(days=settings.EVENT_MAX_AGE_DAYS):
        raise ValueError(
            _("is more than %(days)d days old") % {"days": settings.EVENT_MAX_AGE_DAYS}
        )
    return moment


def event_parse(index: int, raw, now: datetime) -> EventRow | EventRefusal:
    """One event as sent, checked field by field (every problem is reported, not the first).
    Keys beyond the event's fields are ignored."""
    if not isinstance(raw, dict):
        return EventRefusal(index, None, {"non_field_errors": [_("must be a JSON object")]})
    errors: dict[str, list[str]] = {}

    def field(name: str, check, *args):
        try:
            return check(raw.get(name), *args)
        except ValueError as exc:
            errors[name] = [str(exc)]
            return None

    row = EventRow(
        index,
        event_id=field("event_id", _event_id),
        member_no=field("member_no", _member_no),
        type=field("type", _type),
        amount_fen=field("amount", _amount_fen),
        occurred_at=field("occurred_at", _occurred_at, now),
        channel=field("channel", _channel),
    )
    if errors:
        return EventRefusal(index, raw.get("event_id"), errors)
    return row
