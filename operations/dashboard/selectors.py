"""Reading KPI snapshots back: the latest one, and the daily trend of the last ones. The page
and the CSV exports read through these, never the member population."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from portal.models import KpiSnapshot

__all__ = ["TREND_DAYS", "KpiPoint", "kpi_latest", "kpi_series"]

#: how many daily snapshots a trend shows by default
TREND_DAYS = 90


def kpi_latest() -> KpiSnapshot | None:
    """The most recent snapshot, or None before the first nightly run."""
    return KpiSnapshot.objects.order_by("-business_date").first()


@dataclass(frozen=True)
class KpiPoint:
    """One day of a trend: the population, members per lifecycle stage and per tier code."""

    business_date: date
    members: int
    lifecycle: dict[str, int]
    tiers: dict[str, int] = field(default_factory=dict)

    @property
    def dormant(self) -> int:
        return self.lifecycle.get("DORMANT", 0)


def kpi_series(*, days: int = TREND_DAYS, until: date | None = None) -> list[KpiPoint]:
    """The last `days` daily snapshots (up to `until` when given), oldest first, reduced to
    what trends need. One query that reads only those keys of the JSON."""
    snapshots = KpiSnapshot.objects.order_by("-business_date")
    if until is not None:
        snapshots = snapshots.filter(business_date__lte=until)
    rows = snapshots.values_list(
        "business_date", "data__members", "data__lifecycle", "data__tiers"
    )[:days]
    return [
        KpiPoint(
            business_date=day,
            members=members or 0,
            lifecycle=lifecycle or {},
            tiers={tier["code"]: tier.get("members", 0) for tier in tiers or []},
        )
        for day, members, lifecycle, tiers in reversed(list(rows))
    ]
