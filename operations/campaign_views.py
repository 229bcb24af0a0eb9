"""A campaign's effect, `/campaigns/<code>/effect/`, and its CSV: what the campaign did
(participants, completions, cost: `campaigns.reports`) and what it changed against its
holdout (`campaigns.uplift`) — rates, means, intervals and the verdict in the user's
language, and the reactivation of both groups over the nights as a chart.

Bank-wide aggregates without personal data: the same roles as the dashboard. A fixed number
of queries whatever the audience (the outcome rows are counted at night).
"""

from __future__ import annotations

from decimal import Decimal

from django.shortcuts import get_object_or_404, render
from django.utils.formats import number_format
from django.utils.translation import gettext as _

from campaigns.models import Campaign
from campaigns.reports import campaign_effectiveness
from campaigns.uplift import Estimate, Metric, Uplift, campaign_uplift
from portal.csv_export import csv_lines, csv_response, csv_safe_text
from portal.decorators import action_required
from portal.display import money_text, percent_text

from .dashboard import svg

__all__ = ["campaign_effect_csv_view", "campaign_effect_view", "uplift_rows"]


def _signed(text: str, value: float) -> str:
    return f"+{text}" if value > 0 and not text.startswith(("+", "−", "-")) else text


def _value(value: float | None, unit: str) -> str:
    """One group's value: a rate in %, days per member, or CNY per member."""
    if value is None:
        return "—"
    if unit == "rate":
        return percent_text(Decimal(str(value * 100)), 1)
    if unit == "money":
        return money_text(Decimal(str(value)))
    return number_format(Decimal(str(value)).quantize(Decimal("0.01")), 2)


def _difference(value: float | None, unit: str) -> str:
    """A difference between the groups: percentage points, days or CNY, with its sign."""
    if value is None:
        return "—"
    if unit == "rate":
        number = number_format(Decimal(str(value * 100)).quantize(Decimal("0.1")), 1)
        return _signed(_("%(points)s pp") % {"points": number}, value)
    return _signed(_value(value, unit), value)


def _interval(estimate: Estimate, unit: str) -> str:
    if estimate.low is None or estimate.high is None:
        return "—"
    return f"[{_difference(estimate.low, unit)}, {_difference(estimate.high, unit)}]"


def uplift_rows(uplift: Uplift) -> list[dict]:
    """Each outcome as the page and the CSV show it."""
    return [_row(metric) for metric in uplift.metrics]


def _row(metric: Metric) -> dict:
    estimate = metric.estimate
    return {
        "key": metric.key,
        "label": str(metric.label),
        "treatment": _value(estimate.treatment, metric.unit),
        "holdout": _value(estimate.holdout, metric.unit),
        "difference": _difference(estimate.difference, metric.unit),
        "interval": _interval(estimate, metric.unit),
        "p_value": "—" if estimate.p_value is None else f"{estimate.p_value:.3f}",
        "verdict": estimate.verdict,
        "verdict_text": estimate.verdict_text,
    }


def uplift_chart(uplift: Uplift) -> dict | None:
    """The reactivation so far of those dormant at launch, offered and held out, per night."""
    return svg.uplift_line(
        list(uplift.series), offered=_("Offered the campaign"), held_out=_("Held out")
    )


def _incremental(uplift: Uplift) -> dict | None:
    if uplift.incremental is None:
        return None
    estimate, low, high = uplift.incremental

    def count(value: float) -> str:
        return _signed(number_format(round(value), force_grouping=True), value)

    return {"estimate": count(estimate), "interval": f"[{count(low)}, {count(high)}]"}


@action_required("portal.view_dashboard")
def campaign_effect_view(request, code: str):
    campaign = get_object_or_404(Campaign.objects.select_related("budget"), code=code)
    uplift = campaign_uplift(campaign=campaign)
    window = None  # the same over the window alone, once the follow-up has begun
    if uplift.measured_until and uplift.measured_until > campaign.ends_on:
        window = campaign_uplift(campaign=campaign, on=campaign.ends_on)
    return render(
        request,
        "operations/campaign_effect.html",
        {
            "campaign": campaign,
            "report": campaign_effectiveness(campaign=campaign),
            "uplift": uplift,
            "rows": uplift_rows(uplift),
            "chart": uplift_chart(uplift),
            "incremental": _incremental(uplift),
            "window": window,
            "window_rows": uplift_rows(window) if window else [],
        },
    )


@action_required("portal.view_dashboard")
def campaign_effect_csv_view(request, code: str):
    """The uplift table for people: headers and values in the user's language."""
    campaign = get_object_or_404(Campaign, code=code)
    uplift = campaign_uplift(campaign=campaign)
    header = [
        _("Campaign"),
        _("Measured until"),
        _("Outcome"),
        _("Offered the campaign"),
        _("Held out"),
        _("Difference"),
        _("Confidence interval (95 percent)"),
        _("p-value"),
        _("Verdict"),
    ]
    until = uplift.measured_until.isoformat() if uplift.measured_until else "—"
    rows = [
        [
            csv_safe_text(campaign.name),
            until,
            row["label"],
            row["treatment"],
            row["holdout"],
            row["difference"].removeprefix("+"),  # a leading "+" is a formula to Excel
            row["interval"],
            row["p_value"],
            row["verdict_text"],
        ]
        for row in uplift_rows(uplift)
    ]
    return csv_response(csv_lines(header, rows), f"campaign-effect-{campaign.code}.csv")
