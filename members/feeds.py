"""Row formats of the data-warehouse feeds (API.md, "Feeds").

Each feed kind is a small class registered in `FEED_FORMATS`: its exact header and a
`parse` that turns one CSV row into staged values or raises `RowError` with the field
and a reason a person can act on. The set-based loading lives in `members.services`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache
from typing import ClassVar

from django.utils.translation import gettext, gettext_noop

from portal.clock import SHANGHAI
from portal.money import parse_fen

from .choices import AssetCategory, FeedKind

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$", re.ASCII)
_MEMBER_NO = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
_PHONE = re.compile(r"^\+?\d{7,15}$", re.ASCII)
_ID_NUMBER = re.compile(r"^(\d{17}[\dXx]|\d{15})$", re.ASCII)
_COUNT = re.compile(r"^\d{1,9}$", re.ASCII)
CATEGORIES = frozenset(AssetCategory.values)


class RowError(Exception):
    """A feed row that cannot be accepted; `field` and `reason` are shown to operators."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


@lru_cache(maxsize=8192)
def parse_date(text: str) -> date | None:
    """Strict `YYYY-MM-DD`; None when the text is not a real calendar date."""
    if not _DATE.match(text):
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


def parse_registered_at(text: str) -> datetime:
    """A date (midnight in Asia/Shanghai) or an ISO 8601 timestamp with a UTC offset."""
    day = parse_date(text)
    if day is not None:
        return datetime(day.year, day.month, day.day, tzinfo=SHANGHAI)
    if "T" not in text and " " not in text:
        raise RowError("registered_at", f"'{text}' is neither a YYYY-MM-DD date nor a timestamp")
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise RowError("registered_at", f"'{text}' is not an ISO 8601 timestamp") from None
    if moment.tzinfo is None:
        raise RowError("registered_at", "timestamp needs a UTC offset, e.g. +08:00")
    return moment


def looks_like_id_number(text: str) -> bool:
    return bool(_ID_NUMBER.match(text.strip()))


@dataclass(frozen=True, slots=True)
class MemberRow:
    member_no: str
    name: str
    phone: str
    id_number: str
    birth_date: date | None
    registered_at: datetime
    branch_code: str
    manager_username: str
    credit_risk: bool


@dataclass(frozen=True, slots=True)
class FactRow:
    """A staged asset or consumption row. `category` is "" for consumption."""

    member_no: str
    day: date
    category: str
    amount_fen: int
    count: int


class FeedFormat:
    kind: ClassVar[str]
    header: ClassVar[tuple[str, ...]]

    def parse(self, fields: list[str], today: date):  # pragma: no cover - interface
        raise NotImplementedError

    @staticmethod
    def member_no(text: str) -> str:
        if not text:
            raise RowError("member_no", "member_no is empty")
        if not _MEMBER_NO.match(text):
            raise RowError("member_no", f"'{text}' is not a valid member_no (A-Z, 0-9, _ or -)")
        return text

    @staticmethod
    def business_date(text: str, today: date) -> date:
        day = parse_date(text)
        if day is None:
            raise RowError("date", f"'{text}' is not a date in YYYY-MM-DD form")
        if day > today:
            raise RowError("date", f"{text} is after today; feeds report past days only")
        return day

    @staticmethod
    def amount(field: str, text: str) -> int:
        fen = parse_fen(text)
        if fen is None:
            if text.startswith("-"):
                raise RowError(field, f"{field} must not be negative ('{text}')")
            raise RowError(field, f"'{text}' is not an amount with at most 2 decimals")
        return fen


class MembersFormat(FeedFormat):
    kind = FeedKind.MEMBERS
    header = (
        "member_no",
        "name",
        "phone",
        "id_number",
        "birth_date",
        "registered_at",
        "branch_code",
        "manager_username",
        "credit_risk",
    )

    def parse(self, fields: list[str], today: date) -> MemberRow:
        member_no, name, phone, id_number, birth, registered, branch, manager, risk = fields
        member_no = self.member_no(member_no)
        if not name:
            raise RowError("name", "name is empty")
        if len(name) > 100:
            raise RowError("name", "name is longer than 100 characters")
        if not _PHONE.match(phone):
            raise RowError("phone", "phone must be 7 to 15 digits, optionally with a leading +")
        if not _ID_NUMBER.match(id_number):
            raise RowError("id_number", "id_number must be 18 characters (17 digits + digit/X)")
        birth_date = None
        if birth:
            birth_date = parse_date(birth)
            if birth_date is None:
                raise RowError("birth_date", f"'{birth}' is not a date in YYYY-MM-DD form")
            if birth_date > today:
                raise RowError("birth_date", "birth_date is in the future")
        if not registered:
            raise RowError("registered_at", "registered_at is empty")
        registered_at = parse_registered_at(registered)
        if registered_at.astimezone(SHANGHAI).date() > today:
            raise RowError("registered_at", "registered_at is in the future")
        if risk not in ("", "0", "1"):
            raise RowError("credit_risk", f"credit_risk must be 0, 1 or empty, not '{risk}'")
        return MemberRow(
            member_no=member_no,
            name=name,
            phone=phone,
            id_number=id_number.upper(),
            birth_date=birth_date,
            registered_at=registered_at,
            branch_code=branch,
            manager_username=manager,
            credit_risk=risk == "1",
        )


class AssetsFormat(FeedFormat):
    kind = FeedKind.ASSETS
    header = ("member_no", "date", "category", "balance")

    def parse(self, fields: list[str], today: date) -> FactRow:
        member_no, day, category, balance = fields
        member_no = self.member_no(member_no)
        parsed_day = self.business_date(day, today)
        if category not in CATEGORIES:
            raise RowError(
                "category",
                f"unknown category '{category}'; expected one of {', '.join(AssetCategory.values)}",
            )
        return FactRow(member_no, parsed_day, category, self.amount("balance", balance), 0)


class ConsumptionFormat(FeedFormat):
    kind = FeedKind.CONSUMPTION
    header = ("member_no", "date", "amount", "count")

    def parse(self, fields: list[str], today: date) -> FactRow:
        member_no, day, amount, count = fields
        member_no = self.member_no(member_no)
        parsed_day = self.business_date(day, today)
        fen = self.amount("amount", amount)
        if not _COUNT.match(count):
            raise RowError("count", f"count must be a whole number ≥ 0, not '{count}'")
        return FactRow(member_no, parsed_day, "", fen, int(count))


FEED_FORMATS: dict[str, FeedFormat] = {
    fmt.kind: fmt for fmt in (MembersFormat(), AssetsFormat(), ConsumptionFormat())
}


# --- reasons in the reader's language ------------------------------------------------------
#
# A rejected row keeps its reason in English, as the feed code wrote it (the stored fact, the
# same for every reader and in the command's output). Pages and downloads show it in the
# reader's language: each reason the feeds write has its template here, matched back with
# its values. tests/members/test_feed_statuses.py checks that every reason the feeds can
# write is matched, so a reworded reason cannot silently lose its translation.

REJECTION_REASONS: tuple[str, ...] = (
    gettext_noop("'%(value)s' is neither a YYYY-MM-DD date nor a timestamp"),
    gettext_noop("'%(value)s' is not an ISO 8601 timestamp"),
    gettext_noop("timestamp needs a UTC offset, e.g. +08:00"),
    gettext_noop("member_no is empty"),
    gettext_noop("'%(value)s' is not a valid member_no (A-Z, 0-9, _ or -)"),
    gettext_noop("'%(value)s' is not a date in YYYY-MM-DD form"),
    gettext_noop("%(value)s is after today; feeds report past days only"),
    gettext_noop("%(field)s must not be negative ('%(value)s')"),
    gettext_noop("'%(value)s' is not an amount with at most 2 decimals"),
    gettext_noop("name is empty"),
    gettext_noop("name is longer than 100 characters"),
    gettext_noop("phone must be 7 to 15 digits, optionally with a leading +"),
    gettext_noop("id_number must be 18 characters (17 digits + digit/X)"),
    gettext_noop("birth_date is in the future"),
    gettext_noop("registered_at is empty"),
    gettext_noop("registered_at is in the future"),
    gettext_noop("credit_risk must be 0, 1 or empty, not '%(value)s'"),
    gettext_noop("unknown category '%(value)s'; expected one of %(expected)s"),
    gettext_noop("count must be a whole number ≥ 0, not '%(value)s'"),
    gettext_noop("the row contains a NUL byte"),
    gettext_noop("expected %(expected)s columns, found %(found)s"),
    gettext_noop("unknown branch '%(value)s'"),
    gettext_noop("unknown manager '%(value)s'"),
    gettext_noop("%(member_no)s appears already at line %(line)s with other values"),
    gettext_noop("unknown member %(member_no)s"),
    gettext_noop("same member and day as line %(line)s with a different value"),
    gettext_noop(
        "differs from the value already loaded by feed batch #%(batch)s; a correction needs "
        "a reversal, not a second row"
    ),
)

_PLACEHOLDER = re.compile(r"%\\\(([a-z_]+)\\\)s")


def _reason_pattern(template: str) -> re.Pattern:
    escaped = re.escape(template)
    return re.compile("^" + _PLACEHOLDER.sub(r"(?P<\1>.*?)", escaped) + "$", re.DOTALL)


_REASON_PATTERNS = [(_reason_pattern(template), template) for template in REJECTION_REASONS]


def rejection_reason_known(reason: str) -> bool:
    return any(pattern.match(reason) for pattern, _template in _REASON_PATTERNS)


def rejection_reason_text(reason: str) -> str:
    """A stored rejection reason in the active language (unchanged if it has no template)."""
    for pattern, template in _REASON_PATTERNS:
        found = pattern.match(reason)
        if found:
            return gettext(template) % found.groupdict()
    return reason
