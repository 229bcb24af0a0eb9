"""What a campaign changed: its audience offered the tasks (treatment) against the share held
out at random (holdout, `holdout`), over the window and its follow-up (DESIGN.md).

Read-only: the nightly outcome rows (`services.outcomes`, counts, sums and sums of squares of
each group) are turned into estimates with a 95 % confidence interval:

- **rates** (reactivation of those dormant at launch, share who bought a fund): difference of
  two proportions, the normal (Wald) interval with the unpooled standard error;
- **amounts and counts per member** (active days, fund purchases, change in MADA): difference
  of means, Welch's interval (unequal variances, Welch–Satterthwaite degrees of freedom) —
  robust to groups of different size and spread;
- **verdict**: 显著提升 / significant uplift when the whole interval is above zero, 显著下降 /
  significant decline when below, 差异不显著 / no significant difference when it contains
  zero, 样本不足 / sample too small when a group has fewer than `MIN_GROUP` members (for
  a rate: fewer than `MIN_EVENTS` with or without the outcome in a group);
- **incremental reactivations** = uplift of the reactivation rate × dormant members offered,
  with the same interval; **cost per incremental reactivation** = what the rewards of the
  offered group cost ÷ incremental reactivations (none unless the uplift is significant).

Statistics are estimates, computed in floating point by scipy; amounts are then shown as CNY
to the cent (Decimal). One query reads a campaign's outcome rows, whatever its audience.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

from django.utils.translation import gettext_lazy as _
from scipy import stats

from portal.clock import today_in_shanghai

from .models import Campaign, CampaignOutcome

__all__ = [
    "CONFIDENCE",
    "MIN_EVENTS",
    "MIN_GROUP",
    "Estimate",
    "Uplift",
    "VERDICTS",
    "campaign_uplift",
    "campaigns_uplift",
    "mean_difference",
    "proportion_difference",
]

CONFIDENCE = 0.95
#: fewer members than this in a group: no verdict
MIN_GROUP = 30
#: fewer members with (or without) the outcome in a group: no verdict on a rate
MIN_EVENTS = 5

UPLIFT, DECLINE, NO_DIFFERENCE, TOO_FEW = "UPLIFT", "DECLINE", "NO_DIFFERENCE", "TOO_FEW"
#: verdict code → the words a product operator reads
VERDICTS = {
    UPLIFT: _("Significant uplift"),
    DECLINE: _("Significant decline"),
    NO_DIFFERENCE: _("No significant difference"),
    TOO_FEW: _("Sample too small"),
}


@dataclass(frozen=True)
class Estimate:
    """One outcome in both groups: their values, the difference (treatment − holdout) with
    its interval, and the verdict. Rates are fractions (0.253), means in their unit."""

    treatment: float | None
    holdout: float | None
    difference: float | None
    low: float | None
    high: float | None
    p_value: float | None
    verdict: str

    @property
    def verdict_text(self) -> str:
        return str(VERDICTS[self.verdict])

    @property
    def significant(self) -> bool:
        return self.verdict in (UPLIFT, DECLINE)


def _verdict(low: float, high: float) -> str:
    if low > 0:
        return UPLIFT
    if high < 0:
        return DECLINE
    return NO_DIFFERENCE


def _z() -> float:
    return float(stats.norm.ppf(0.5 + CONFIDENCE / 2))


def proportion_difference(hits_t: int, n_t: int, hits_h: int, n_h: int) -> Estimate:
    """Rate of the treatment − rate of the holdout, with the normal interval."""
    rate_t = hits_t / n_t if n_t else None
    rate_h = hits_h / n_h if n_h else None
    if rate_t is None or rate_h is None:
        return Estimate(rate_t, rate_h, None, None, None, None, TOO_FEW)
    difference = rate_t - rate_h
    too_few = (
        min(n_t, n_h) < MIN_GROUP or min(hits_t, n_t - hits_t, hits_h, n_h - hits_h) < MIN_EVENTS
    )
    error = math.sqrt(rate_t * (1 - rate_t) / n_t + rate_h * (1 - rate_h) / n_h)
    if error == 0:
        return Estimate(rate_t, rate_h, difference, difference, difference, None, TOO_FEW)
    margin = _z() * error
    p_value = float(2 * stats.norm.sf(abs(difference) / error))
    low, high = difference - margin, difference + margin
    verdict = TOO_FEW if too_few else _verdict(low, high)
    return Estimate(rate_t, rate_h, difference, low, high, p_value, verdict)


def _mean_and_variance(n: int, total: int, squares: int) -> tuple[float, float]:
    """Mean and sample variance from a count, a sum and a sum of squares (exact integers
    until the division, so large sums of fen lose nothing before the float)."""
    mean = Decimal(total) / n
    variance = (Decimal(squares) - Decimal(total) * Decimal(total) / n) / (n - 1) if n > 1 else 0
    return float(mean), max(float(variance), 0.0)


def mean_difference(
    n_t: int, total_t: int, squares_t: int, n_h: int, total_h: int, squares_h: int
) -> Estimate:
    """Mean of the treatment − mean of the holdout, with Welch's interval."""
    if not n_t or not n_h:
        mean_t = total_t / n_t if n_t else None
        mean_h = total_h / n_h if n_h else None
        return Estimate(mean_t, mean_h, None, None, None, None, TOO_FEW)
    mean_t, var_t = _mean_and_variance(n_t, total_t, squares_t)
    mean_h, var_h = _mean_and_variance(n_h, total_h, squares_h)
    difference = mean_t - mean_h
    too_few = min(n_t, n_h) < MIN_GROUP
    share_t, share_h = var_t / n_t, var_h / n_h
    error = math.sqrt(share_t + share_h)
    if error == 0:
        verdict = TOO_FEW if too_few else _verdict(difference, difference)
        return Estimate(mean_t, mean_h, difference, difference, difference, None, verdict)
    freedom = (share_t + share_h) ** 2 / (
        (share_t**2 / (n_t - 1) if n_t > 1 else 0) + (share_h**2 / (n_h - 1) if n_h > 1 else 0)
        or 1e-300
    )
    margin = float(stats.t.ppf(0.5 + CONFIDENCE / 2, freedom)) * error
    p_value = float(2 * stats.t.sf(abs(difference) / error, freedom))
    low, high = difference - margin, difference + margin
    verdict = TOO_FEW if too_few else _verdict(low, high)
    return Estimate(mean_t, mean_h, difference, low, high, p_value, verdict)


# --- a campaign's report --------------------------------------------------------------------


@dataclass(frozen=True)
class Metric:
    key: str
    label: str
    unit: str  # "rate", "days", "money"
    estimate: Estimate


@dataclass(frozen=True)
class Uplift:
    """A campaign's measured effect on `measured_until` (None: nothing measured yet)."""

    campaign: Campaign
    measured_until: date | None
    follow_up_ends: date
    treatment: dict
    holdout: dict
    metrics: tuple[Metric, ...]
    incremental: tuple[float, float, float] | None  # estimate, low, high
    cost: Decimal
    points: int
    cost_per_incremental: Decimal | None
    series: tuple[tuple[date, float | None, float | None], ...]  # day, rates of both groups

    @property
    def reactivation(self) -> Estimate:
        return self.metrics[0].estimate

    @property
    def verdict(self) -> str:
        return self.reactivation.verdict

    @property
    def verdict_text(self) -> str:
        return self.reactivation.verdict_text

    @property
    def complete(self) -> bool:
        """The follow-up is over: the figures are final."""
        return self.measured_until is not None and self.measured_until >= self.follow_up_ends

    @property
    def treatment_cost_per_member(self) -> Decimal | None:
        members = self.treatment.get("members", 0)
        return _yuan(self.cost / members) if members else None


def _yuan(value: Decimal | float) -> Decimal:
    return Decimal(str(value)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def _rate(hits: int, whole: int) -> float | None:
    return hits / whole if whole else None


def _metrics(t: dict, h: dict) -> tuple[Metric, ...]:
    metrics = [
        Metric(
            "reactivation",
            _("Reactivation of those dormant at launch"),
            "rate",
            proportion_difference(t["reactivated"], t["dormant"], h["reactivated"], h["dormant"]),
        ),
        Metric(
            "active_days",
            _("Active days per member"),
            "days",
            mean_difference(
                t["members"], t["active_days"], t["active_days_sq"],
                h["members"], h["active_days"], h["active_days_sq"],
            ),
        ),
        Metric(
            "fund_buyers",
            _("Members who bought a fund"),
            "rate",
            proportion_difference(t["purchasers"], t["members"], h["purchasers"], h["members"]),
        ),
        Metric(
            "fund_purchases",
            _("Fund purchases per member"),
            "money",
            _in_yuan(
                mean_difference(
                    t["members"], t["purchase_fen"], t["purchase_fen_sq"],
                    h["members"], h["purchase_fen"], h["purchase_fen_sq"],
                )
            ),
        ),
    ]  # fmt: skip
    if t["mada_members"] and h["mada_members"]:
        metrics.append(
            Metric(
                "mada_change",
                _("Change in MADA per member"),
                "money",
                _in_yuan(
                    mean_difference(
                        t["mada_members"], t["mada_change_fen"], t["mada_change_fen_sq"],
                        h["mada_members"], h["mada_change_fen"], h["mada_change_fen_sq"],
                    )
                ),
            )
        )  # fmt: skip
    return tuple(metrics)


def _in_yuan(estimate: Estimate) -> Estimate:
    """An estimate in fen, in yuan (the verdict does not change)."""

    def yuan(value):
        return None if value is None else value / 100

    return Estimate(
        yuan(estimate.treatment),
        yuan(estimate.holdout),
        yuan(estimate.difference),
        yuan(estimate.low),
        yuan(estimate.high),
        estimate.p_value,
        estimate.verdict,
    )


def _values(row: CampaignOutcome | None) -> dict:
    """A group's figures as integers (sums of squares are stored as whole decimals); zeros
    for a group with no row."""
    if row is None:
        return dict.fromkeys(CampaignOutcome.FIGURES, 0)
    return {name: int(getattr(row, name)) for name in CampaignOutcome.FIGURES}


def _report(campaign: Campaign, rows: list[CampaignOutcome]) -> Uplift:
    by_day: dict[date, dict[bool, CampaignOutcome]] = {}
    for row in rows:
        by_day.setdefault(row.business_date, {})[row.held_out] = row
    latest = max(by_day) if by_day else None
    groups = by_day.get(latest, {}) if latest else {}
    t, h = _values(groups.get(False)), _values(groups.get(True))
    metrics = _metrics(t, h)
    reactivation = metrics[0].estimate
    incremental = None
    per_incremental = None
    cost = Decimal(t["cost_fen"]) / 100
    if reactivation.difference is not None and t["dormant"]:
        dormant = t["dormant"]
        incremental = (
            reactivation.difference * dormant,
            reactivation.low * dormant,
            reactivation.high * dormant,
        )
        if reactivation.verdict == UPLIFT and incremental[0] > 0:
            per_incremental = _yuan(cost / Decimal(str(incremental[0])))
    series = tuple(
        (
            day,
            _rate(pair[False].reactivated, pair[False].dormant) if False in pair else None,
            _rate(pair[True].reactivated, pair[True].dormant) if True in pair else None,
        )
        for day, pair in sorted(by_day.items())
    )
    return Uplift(
        campaign=campaign,
        measured_until=latest,
        follow_up_ends=campaign.ends_on + timedelta(days=campaign.follow_up_days),
        treatment=t,
        holdout=h,
        metrics=metrics,
        incremental=incremental,
        cost=_yuan(cost),
        points=t["points"],
        cost_per_incremental=per_incremental,
        series=series,
    )


def campaign_uplift(*, campaign: Campaign, on: date | None = None) -> Uplift:
    """The campaign's effect as measured by the latest night up to `on` (default today), and
    the series of its nights for the chart: one query."""
    on = on or today_in_shanghai()
    rows = list(
        CampaignOutcome.objects.filter(campaign=campaign, business_date__lte=on).order_by(
            "business_date", "held_out"
        )
    )
    return _report(campaign, rows)


def campaigns_uplift(*, campaigns: Iterable[Campaign], on: date | None = None) -> list[Uplift]:
    """`campaign_uplift` of several campaigns with one query."""
    on = on or today_in_shanghai()
    campaigns = list(campaigns)
    rows: dict[int, list[CampaignOutcome]] = {campaign.pk: [] for campaign in campaigns}
    for row in CampaignOutcome.objects.filter(
        campaign__in=campaigns, business_date__lte=on
    ).order_by("campaign", "business_date", "held_out"):
        rows[row.campaign_id].append(row)
    return [_report(campaign, rows[campaign.pk]) for campaign in campaigns]
