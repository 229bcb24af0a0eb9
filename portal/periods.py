"""Calendar periods of the business: one module for every period the domains count in.

A period kind is a small class with `period(day) -> Period` (its key, first and last day);
the domains choose from `PERIODS` by their own choice values (a task's recurrence, an
entitlement's period). Dates are business dates (Asia/Shanghai); weeks are ISO weeks.
"""

from __future__ import annotations

import calendar
from datetime import date, timedelta
from typing import NamedTuple

__all__ = [
    "PERIODS",
    "Period",
    "add_months",
    "days_in",
    "month_end",
    "month_start",
]


def month_start(day: date) -> date:
    return day.replace(day=1)


def add_months(month: date, delta: int) -> date:
    """The first day of the month `delta` months after the month of `month`."""
    index = month.year * 12 + month.month - 1 + delta
    return date(index // 12, index % 12 + 1, 1)


def days_in(month: date) -> int:
    return calendar.monthrange(month.year, month.month)[1]


def month_end(day: date) -> date:
    return day.replace(day=days_in(day))


class Period(NamedTuple):
    key: str
    start: date
    end: date


class Once:
    """One period for a whole window (a campaign's): key `once`."""

    def period(self, day: date, *, starts_on: date, ends_on: date) -> Period:
        return Period("once", starts_on, ends_on)


class Day:
    """Key `2026-11-26`."""

    def period(self, day: date, **window) -> Period:
        return Period(day.isoformat(), day, day)


class IsoWeek:
    """Monday to Sunday; the key uses the ISO year (29 Dec 2025 is `2026-W01`)."""

    def period(self, day: date, **window) -> Period:
        year, week, weekday = day.isocalendar()
        monday = day - timedelta(days=weekday - 1)
        return Period(f"{year}-W{week:02d}", monday, monday + timedelta(days=6))


class Month:
    """Key `2026-11`."""

    def period(self, day: date, **window) -> Period:
        return Period(f"{day:%Y-%m}", month_start(day), month_end(day))


class Quarter:
    """Key `2026-Q4`."""

    def period(self, day: date, **window) -> Period:
        quarter = (day.month - 1) // 3
        start = date(day.year, 3 * quarter + 1, 1)
        return Period(f"{day.year}-Q{quarter + 1}", start, add_months(start, 3) - timedelta(days=1))


class Year:
    """Key `2026`."""

    def period(self, day: date, **window) -> Period:
        return Period(f"{day.year}", date(day.year, 1, 1), date(day.year, 12, 31))


#: every period kind, by name; the domains map their choices onto these
PERIODS = {
    "ONCE": Once(),
    "DAY": Day(),
    "ISO_WEEK": IsoWeek(),
    "MONTH": Month(),
    "QUARTER": Quarter(),
    "YEAR": Year(),
}
