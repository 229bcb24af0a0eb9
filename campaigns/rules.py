"""Task rule types: measures and recurrences, each a small class chosen from a map.

A *measure* says how a task's events advance its progress (count them, sum their amounts,
or count consecutive days) and in which unit (events, fen, days). A *recurrence* says which
period an event belongs to, by the Asia/Shanghai date it occurred on: `once`, `2026-11-26`,
`2026-W48` (ISO week, Monday to Sunday) or `2026-11`. A late event belongs to the period it
occurred in, not the one it arrived in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

from django.utils.formats import number_format
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from portal.money import yuan_text
from portal.periods import PERIODS

from .choices import Measure, Recurrence

# --- measures ---------------------------------------------------------------------------------


@dataclass
class ProgressState:
    """What a progress row holds, in the measure's unit."""

    value: int = 0
    best: int = 0
    days: list[str] = field(default_factory=list)


class CountMeasure:
    """Each counted event adds one."""

    whole_targets = True

    def to_units(self, target: Decimal) -> int:
        return int(target)

    def display(self, units: int) -> str:
        return str(units)

    def target_text(self, target: Decimal) -> str:
        """A target as people read it, with its unit ("3 times")."""
        count = int(target)
        return ngettext("%(count)s time", "%(count)s times", count) % {
            "count": number_format(count, force_grouping=True)
        }

    def advance(self, state: ProgressState, events: list[tuple[date, int]]) -> ProgressState:
        value = state.value + len(events)
        return ProgressState(value=value, best=max(state.best, value), days=state.days)


class AmountSumMeasure(CountMeasure):
    """Event amounts add up, in fen; the target is in CNY."""

    whole_targets = False

    def to_units(self, target: Decimal) -> int:
        return int(target * 100)

    def display(self, units: int) -> str:
        return f"{Decimal(units) / 100:.2f}"

    def target_text(self, target: Decimal) -> str:
        return yuan_text(target)

    def advance(self, state: ProgressState, events: list[tuple[date, int]]) -> ProgressState:
        value = state.value + sum(amount for _, amount in events)
        return ProgressState(value=value, best=max(state.best, value), days=state.days)


class ConsecutiveDaysMeasure(CountMeasure):
    """Distinct event days of the period: `value` is the streak ending on the latest day (a
    missed day restarts it at 1), `best` the longest streak. The days are kept as a set, so
    an event that arrives late or out of order fills its gap and joins two runs."""

    def target_text(self, target: Decimal) -> str:
        count = int(target)
        return ngettext("%(count)s day in a row", "%(count)s days in a row", count) % {
            "count": number_format(count, force_grouping=True)
        }

    def advance(self, state: ProgressState, events: list[tuple[date, int]]) -> ProgressState:
        days = sorted(set(state.days) | {day.isoformat() for day, _ in events})
        best = run = 0
        previous: date | None = None
        for text in days:
            day = date.fromisoformat(text)
            run = run + 1 if previous is not None and day - previous == timedelta(days=1) else 1
            best = max(best, run)
            previous = day
        return ProgressState(value=run, best=max(best, state.best), days=days)


MEASURES = {
    Measure.COUNT: CountMeasure(),
    Measure.AMOUNT_SUM: AmountSumMeasure(),
    Measure.CONSECUTIVE_DAYS: ConsecutiveDaysMeasure(),
}


# --- recurrences ------------------------------------------------------------------------------

#: a task's recurrence → its calendar period kind (portal.periods); `Once` spans the window
RECURRENCES = {
    Recurrence.ONCE: PERIODS["ONCE"],
    Recurrence.DAILY: PERIODS["DAY"],
    Recurrence.WEEKLY: PERIODS["ISO_WEEK"],
    Recurrence.MONTHLY: PERIODS["MONTH"],
}


def period_count(recurrence: str, *, starts_on: date, ends_on: date, since: date) -> int:
    """How many periods of the recurrence a campaign window holds from `since` on (a period
    under way counts): 1 for `once`, the days, ISO weeks or months otherwise."""
    kind = RECURRENCES[recurrence]
    day, count = max(starts_on, since), 0
    while day <= ends_on:
        count += 1
        day = kind.period(day, starts_on=starts_on, ends_on=ends_on).end + timedelta(days=1)
    return count


# --- a campaign's window and its budget ---------------------------------------------------------


def budget_window_problems(*, budget, starts_on: date | None, ends_on: date | None) -> list[str]:
    """A campaign's window must lie inside its budget's period: rewards after the budget's
    end would find no budget to charge."""
    if budget is None or not starts_on or not ends_on:
        return []
    if starts_on < budget.period_start or ends_on > budget.period_end:
        return [
            _(
                "The window (%(starts)s to %(ends)s) must lie within the period of budget "
                "%(budget)s, %(start)s to %(end)s."
            )
            % {
                "starts": starts_on.isoformat(),
                "ends": ends_on.isoformat(),
                "budget": budget.code,
                "start": budget.period_start.isoformat(),
                "end": budget.period_end.isoformat(),
            }
        ]
    return []
