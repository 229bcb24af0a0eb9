"""The business clock: the bank works in Asia/Shanghai, and "today" is its date there.

Batch work follows the business date it is given, never this clock; the clock answers only
"what is today" for interactive work (a request's default date, a form's "not in the past").
"""

from __future__ import annotations

from datetime import date, datetime, time
from zoneinfo import ZoneInfo

__all__ = ["SHANGHAI", "day_start", "today_in_shanghai"]

SHANGHAI = ZoneInfo("Asia/Shanghai")


def today_in_shanghai() -> date:
    """Today's date in Asia/Shanghai."""
    return datetime.now(SHANGHAI).date()


def day_start(day: date) -> datetime:
    """Midnight at the start of `day` in Asia/Shanghai (an aware datetime)."""
    return datetime.combine(day, time.min, tzinfo=SHANGHAI)
