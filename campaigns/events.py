"""Reading member events as `POST /api/v1/events/` receives them (API.md).

Each event is checked on its own: a bad one is refused with its reasons (keyed by field, as
the API reports them) and never stops the others. Amounts are strings (or integers, or JSON
numbers parsed as `Decimal`, never float) with at most 2 decimals; `occurred_at` is ISO 8601
with a UTC offset, not in the future beyond a small clock-skew allowance.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation

from django.conf import settings

from portal.clock import SHANGHAI

from .choices import EventType

MAX_EVENTS_PER_BATCH = 1000

_EVENT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:\-]{0,63}")
_AMOUNT = re.compile(r"\d{1,14}(\.\d{1,2})?")
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
    index: int
    event_id: str | None
    errors: dict[str, list[str]]

    def as_dict(self) -> dict:
        return {"index": self.index, "event_id": self.event_id, "errors": self.errors}


def _amount_fen(value) -> int:
    if value is None or value == "":
        return 0
    if isinstance(value, bool):
        raise ValueError('must be a decimal string such as "20000.00"')
    if isinstance(value, int):
        text = str(value)
    elif isinstance(value, Decimal):
        text = format(value, "f")
    elif isinstance(value, str):
        text = value.strip()
    else:
        raise ValueError('must be a decimal string such as "20000.00"')
    if text.startswith("-"):
        raise ValueError("must not be negative")
    if not _AMOUNT.fullmatch(text):
        raise ValueError('must be a number with at most 2 decimals, e.g. "20000.00"')
    try:
        return int(Decimal(text) * 100)
    except InvalidOperation:  # pragma: no cover - the pattern already excludes it
        raise ValueError("must be a number with at most 2 decimals") from None


def _occurred_at(value, now: datetime) -> datetime:
    if not isinstance(value, str) or not value:
        raise ValueError("is required, ISO 8601 with offset, e.g. 2026-11-26T10:15:00+08:00")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError("is not an ISO 8601 timestamp, e.g. 2026-11-26T10:15:00+08:00") from None
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("needs a UTC offset, e.g. +08:00")
    if moment > now + timedelta(seconds=settings.EVENT_FUTURE_TOLERANCE_SECONDS):
        raise ValueError("is in the future")
    if moment < now - timedelta(days=settings.EVENT_MAX_AGE_DAYS):
        raise ValueError(f"is more than {settings.EVENT_MAX_AGE_DAYS} days old")
    return moment


def event_parse(index: int, raw, now: datetime) -> EventRow | EventRefusal:
    """One event as sent, checked field by field (every problem is reported, not the first)."""
    if not isinstance(raw, dict):
        return EventRefusal(index, None, {"non_field_errors": ["must be a JSON object"]})
    errors: dict[str, list[str]] = {}
    event_id = raw.get("event_id")
    if not isinstance(event_id, str) or not _EVENT_ID.fullmatch(event_id):
        errors["event_id"] = [
            "is required: 1-64 characters of letters, digits and . _ : - (starting with a "
            "letter or digit)"
        ]
        event_id = event_id if isinstance(event_id, str) else None
    member_no = raw.get("member_no")
    if not isinstance(member_no, str) or not _MEMBER_NO.fullmatch(member_no):
        errors["member_no"] = ["is required: up to 32 letters and digits"]
    event_type = raw.get("type")
    if event_type not in _EVENT_TYPES:
        errors["type"] = [f"must be one of {', '.join(sorted(_EVENT_TYPES))}"]
    try:
        amount_fen = _amount_fen(raw.get("amount"))
    except ValueError as exc:
        errors["amount"] = [str(exc)]
    try:
        occurred_at = _occurred_at(raw.get("occurred_at"), now)
    except ValueError as exc:
        errors["occurred_at"] = [str(exc)]
    channel = raw.get("channel") or ""
    if channel and (not isinstance(channel, str) or not _CHANNEL.fullmatch(channel)):
        errors["channel"] = ["must be an upper-case code such as MOBILE (at most 16 characters)"]
    if errors:
        return EventRefusal(index, event_id, errors)
    return EventRow(index, event_id, member_no, event_type, amount_fen, occurred_at, channel)
