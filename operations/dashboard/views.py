"""The KPI dashboard (issue 6) for the product team and managers, `/dashboard/`, and its CSV
exports, `/dashboard/<chart>.csv`: tier distribution and migration, lifecycle funnel and
dormant trend, campaign effectiveness, benefit differentiation and demand, budget burn-down
— each chart (`charts.CHARTS`) with its table and a CSV export.

Everything is read from the nightly `KpiSnapshot` (`selectors`), never from the member
population, so the page costs a fixed handful of queries at any size of bank. Charts are
server-rendered SVG built from the same tables the CSV exports stream; the page needs no
JavaScript.

Scope: the figures are bank-wide aggregates (counts and sums, no personal data), the same
for every role allowed to open the page, branch managers included; the tier and lifecycle
charts break them down by top-level branch so a branch manager finds their own branch's
figures there.
"""

from __future__ import annotations

from django.contrib.humanize.templatetags.humanize import intcomma
from django.http import Http404
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import pgettext

from members.choices import TierChangeCause
from portal.csv_export import csv_response
from portal.decorators import action_required
from portal.display import in_english
from portal.models import KpiSnapshot

from .charts import CHARTS
from .selectors import TREND_DAYS, KpiPoint, kpi_latest, kpi_series
from .tables import page_table

__all__ = ["dashboard_csv_view", "dashboard_view"]


def _csv_link(chart: str) -> str:
    return reverse("dashboard-csv", kwargs={"chart": chart})


def _sections(snapshot: KpiSnapshot, series: list[KpiPoint]) -> list[dict]:
    """Every section of the page: title, help, chart geometry, table and CSV links (its own
    chart's first, then those of the charts shown within it)."""
    sections = []
    for chart in CHARTS.values():
        if chart.section is not None:
            continue
        table = chart.table(snapshot.data, series)
        within = [other.slug for other in CHARTS.values() if other.section == chart.slug]
        sections.append(
            {
                "chart": chart.slug,
                "title": chart.title,
                "help": chart.help_text,
                "kind": chart.kind,
                "visual": chart.visual(table, snapshot.data, series),
                "links": chart.links(snapshot.data),
                "table": page_table(table),
                "empty": not table.rows,
                # the section's own export, then those of the charts shown within it by title
                "exports": [("", _csv_link(chart.slug))]
                + [(str(CHARTS[slug].title), _csv_link(slug)) for slug in within],
            }
        )
    return sections


def _headline(snapshot: KpiSnapshot, series: list[KpiPoint]) -> list[dict]:
    data = snapshot.data
    migration = data["migration"]
    previous = series[-2] if len(series) > 1 else None
    dormant = data["lifecycle"].get("DORMANT", 0)
    change = ""
    if previous is not None:
        delta = dormant - previous.dormant
        change = _("%(delta)s since %(day)s") % {
            "delta": f"{'+' if delta > 0 else ''}{intcomma(delta)}",
            "day": previous.business_date.isoformat(),
        }
    early = [budget["name"] for budget in data["budgets"] if budget["runs_out_early"]]
    return [
        {
            "label": pgettext("number of members", "Members"),
            "value": intcomma(data["members"]),
            "note": "",
        },
        {"label": _("Dormant"), "value": intcomma(dormant), "note": change},
        {
            "label": _("Upgraded this month (month to date)"),
            "value": intcomma(migration["upgraded"]),
            "note": _("%(n)s downgraded") % {"n": intcomma(migration["downgraded"])}
            + (
                " · "
                + _("%(n)s regraded by the new tier scheme")
                % {"n": intcomma(migration["scheme_changed"])}
                if migration.get("scheme_changed")
                else ""
            ),
        },
        {"label": _("Campaigns reported"), "value": intcomma(len(data["campaigns"])), "note": ""},
        {
            "label": _("Budgets running out before their period ends"),
            "value": intcomma(len(early)),
            "note": "、".join(early) if not in_english() else ", ".join(early),
        },
    ]


def _causes(causes: dict[str, int]) -> list[tuple[str, int]]:
    """This month's tier changes by cause, each by its label, in the order of the causes."""
    order = {cause: index for index, cause in enumerate(TierChangeCause.values)}
    labels = dict(TierChangeCause.choices)
    return [
        (str(labels.get(cause, cause)), count)
        for cause, count in sorted(causes.items(), key=lambda item: order.get(item[0], 99))
    ]


@action_required("portal.view_dashboard")
def dashboard_view(request):
    """The dashboard of the latest KPI snapshot; before the first nightly run it says how to
    produce one. A fixed number of queries: the snapshot and the trend."""
    snapshot = kpi_latest()
    if snapshot is None:
        return render(request, "operations/dashboard.html", {"snapshot": None})
    series = kpi_series(days=TREND_DAYS, until=snapshot.business_date)
    return render(
        request,
        "operations/dashboard.html",
        {
            "snapshot": snapshot,
            "headline": _headline(snapshot, series),
            "causes": _causes(snapshot.data["migration"]["causes"]),
            "sections": _sections(snapshot, series),
        },
    )


@action_required("portal.view_dashboard")
def dashboard_csv_view(request, chart: str):
    """One chart's table of the latest snapshot as CSV (404 for an unknown chart, or before
    the first snapshot)."""
    if chart not in CHARTS:
        raise Http404(_("No such chart."))
    export = CHARTS[chart]
    snapshot = kpi_latest()
    if snapshot is None:
        raise Http404(_("No KPI snapshot yet: run `manage.py run_nightly`."))
    series = kpi_series(until=snapshot.business_date) if export.trend else []
    table = export.table(snapshot.data, series)
    return csv_response(export.csv_lines(table), export.csv_filename(snapshot.business_date))
