"""The KPI dashboard (issue 6) for the product team and managers: tier distribution and
migration, lifecycle funnel and dormant trend, campaign effectiveness, benefit
differentiation and demand, budget burn-down — each chart with its table and a CSV export.

Everything is read from the nightly `KpiSnapshot` (`portal.kpi`), never from the member
population, so the page costs a fixed handful of queries at any size of bank. Charts are
server-rendered SVG built here from the same tables the CSV exports stream; the page needs
no JavaScript.

Scope: the figures are bank-wide aggregates (counts and sums, no personal data), the same
for every role allowed to open the page, branch managers included; the tier and lifecycle
charts break them down by top-level branch so a branch manager finds their own branch's
figures there.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from decimal import Decimal

from django.contrib.humanize.templatetags.humanize import intcomma
from django.http import Http404
from django.shortcuts import render
from django.template.defaultfilters import floatformat
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from portal.csv_export import csv_lines as portal_csv_lines
from portal.csv_export import csv_response, csv_safe_text
from portal.decorators import action_required
from portal.models import KpiSnapshot

from .kpi import (
    KPI_CHARTS,
    NONE_CODE,
    TREND_CHARTS,
    TREND_DAYS,
    KpiTable,
    kpi_latest,
    kpi_series,
    kpi_table,
    kpi_tier_names,
)

#: colours of the series of a stacked bar (tiers), cycled
PALETTE = (
    "#94a3b8",
    "#f59e0b",
    "#1d4ed8",
    "#7c3aed",
    "#047857",
    "#b91c1c",
    "#0e7490",
    "#be185d",
    "#4d7c0f",
    "#92400e",
)

#: chart → (title, what it shows), in the order of the page
SECTIONS = {
    "tier-distribution": (
        gettext_lazy("Tier distribution"),
        gettext_lazy("Members per tier on the business date."),
    ),
    "tiers-by-branch": (
        gettext_lazy("Tiers by branch"),
        gettext_lazy("Members per tier in each top-level branch (and everything below it)."),
    ),
    "tier-migration": (
        gettext_lazy("Tier migration, last month → this month"),
        gettext_lazy(
            "Rows: the tier held at the end of last month; columns: the tier held on the "
            "business date. The diagonal kept their tier; right of it moved up."
        ),
    ),
    "lifecycle": (
        gettext_lazy("Lifecycle funnel"),
        gettext_lazy("Members per lifecycle stage on the business date."),
    ),
    "lifecycle-by-tier": (
        gettext_lazy("Lifecycle stages by tier"),
        gettext_lazy("Members per lifecycle stage, split by tier."),
    ),
    "dormant-trend": (
        gettext_lazy("Dormant trend"),
        gettext_lazy("Dormant and at-risk members over the last daily snapshots."),
    ),
    "campaigns": (
        gettext_lazy("Campaign effectiveness"),
        gettext_lazy(
            "Completion rate of the launched campaigns (bars), with participants, cost and "
            "dormant members reactivated."
        ),
    ),
    "differentiation": (
        gettext_lazy("Benefit differentiation"),
        gettext_lazy(
            "What each step up the tiers adds, as yearly cost per member; a step that adds "
            "no new benefit (only more of the same) is flagged."
        ),
    ),
    "demand": (
        gettext_lazy("Benefit demand"),
        gettext_lazy(
            "Redemption rate of the grants made in the last 90 days; benefits below the "
            "threshold are flagged."
        ),
    ),
    "demand-by-tier": (
        gettext_lazy("Benefit demand by tier"),
        gettext_lazy("Redemption rate per benefit and member tier (last 90 days)."),
    ),
    "budgets": (
        gettext_lazy("Budget burn-down"),
        gettext_lazy(
            "Remaining budget per day (solid), the even burn to the period end (grey) and "
            "the projection at the last 30 days' rate (dashed) to the exhaustion date."
        ),
    ),
}
#: extra CSV exports shown with a section: section → charts
EXTRA_EXPORTS = {"budgets": ("budget-burn",)}


# --- formatting --------------------------------------------------------------------------------


def format_value(value, kind: str) -> str:
    """A table value as the page shows it, in the user's locale (money with 2 decimals)."""
    if value is None:
        return "—"
    if kind == "count":
        return intcomma(value)
    if kind == "money":
        return floatformat(value, "2g")
    if kind == "percent":
        return floatformat(value, "1g") + "%"
    if kind == "date":
        return value.isoformat()
    if kind == "flag":
        return "⚑ " + _("Yes") if value else ""
    return str(value) if value != NONE_CODE else "—"


def _svg(number: float) -> str:
    """A coordinate for an SVG attribute: never localised (always a dot)."""
    return f"{number:.2f}"


def page_table(table: KpiTable) -> dict:
    numeric = {"count", "money", "percent"}
    return {
        "columns": [
            {"label": str(column.label), "num": column.kind in numeric} for column in table.columns
        ],
        "rows": [
            [
                {
                    "text": format_value(value, column.kind),
                    "num": column.kind in numeric,
                    "flag": column.kind == "flag" and bool(value),
                }
                for value, column in zip(row, table.columns, strict=True)
            ]
            for row in table.rows
        ],
    }


# --- chart geometry ------------------------------------------------------------------------------


def _bars(
    items: list[tuple[str, float, str, bool]],
    *,
    marker: float | None = None,
    marker_label: str = "",
) -> dict:
    """Horizontal bars: (label, value, text shown, flagged); widths relative to the largest
    value, or to 100 when `marker` (a percent threshold) is given."""
    top = 100.0 if marker is not None else max([value for _l, value, _t, _f in items] or [0])
    top = top or 1.0
    return {
        "items": [
            {
                "label": label,
                "width": _svg(max(0.0, min(100.0, float(value) * 100 / top))),
                "text": text,
                "flagged": flagged,
            }
            for label, value, text, flagged in items
        ],
        "marker": _svg(marker) if marker is not None else None,
        "marker_label": marker_label,
    }


def _stacked(table: KpiTable, tier_names: list[str]) -> dict:
    """One 100 % bar per row of a wide table (code, name, one count per tier…, total)."""
    legend = [
        {"label": name, "color": PALETTE[index % len(PALETTE)]}
        for index, name in enumerate(tier_names)
    ]
    rows = []
    for row in table.rows:
        counts, total = row[2:-1], row[-1]
        segments, x = [], 0.0
        for index, count in enumerate(counts):
            if not count or not total:
                continue
            width = count * 100 / total
            segments.append(
                {
                    "x": _svg(x),
                    "width": _svg(width),
                    "color": PALETTE[index % len(PALETTE)],
                    "title": f"{tier_names[index]}: {intcomma(count)}",
                }
            )
            x += width
        rows.append({"label": row[1] or "—", "segments": segments, "total": intcomma(total)})
    return {"legend": legend, "rows": rows}


def _heat(row_keys, col_keys, values: dict, *, text, row_label, col_label) -> dict:
    """A heat table: one cell per (row, column), shaded by value relative to the largest."""
    top = max([v for v in values.values() if v is not None] or [0]) or 1
    rows = []
    for row in row_keys:
        cells = []
        for col in col_keys:
            value = values.get((row, col))
            alpha = 0.0 if not value else 0.08 + 0.77 * float(value) / float(top)
            cells.append(
                {
                    "text": text(row, col) if value is not None else "",
                    "alpha": _svg(alpha),
                    "dark": alpha > 0.5,
                    "diagonal": row == col,
                }
            )
        rows.append({"label": row_label(row), "cells": cells})
    return {"columns": [col_label(col) for col in col_keys], "rows": rows}


LINE_W, LINE_H, LINE_LEFT, LINE_BOTTOM, LINE_TOP = 720, 220, 56, 24, 12


def _line(series_points: list[tuple[date, dict[str, int]]], keys: list[tuple[str, str, str]]):
    """A line chart over days: `keys` are (key, label, colour) of the values to draw."""
    if not series_points:
        return None
    top = max([values.get(key, 0) for _d, values in series_points for key, _l, _c in keys] + [1])
    count = len(series_points)
    width = LINE_W - LINE_LEFT - 8
    height = LINE_H - LINE_TOP - LINE_BOTTOM

    def x(index: int) -> float:
        return LINE_LEFT + (width * index / (count - 1) if count > 1 else width / 2)

    def y(value: int) -> float:
        return LINE_TOP + height * (1 - value / top)

    lines = []
    for key, label, color in keys:
        points = [(x(i), y(values.get(key, 0))) for i, (_d, values) in enumerate(series_points)]
        lines.append(
            {
                "label": label,
                "color": color,
                "points": " ".join(f"{_svg(px)},{_svg(py)}" for px, py in points),
                "last": {"x": _svg(points[-1][0]), "y": _svg(points[-1][1])},
                "latest": intcomma(series_points[-1][1].get(key, 0)),
            }
        )
    ticks = [{"y": _svg(y(value)), "text": intcomma(value)} for value in sorted({0, top // 2, top})]
    return {
        "width": LINE_W,
        "height": LINE_H,
        "left": LINE_LEFT,
        "right": LINE_W - 8,
        "lines": lines,
        "ticks": ticks,
        "first_day": series_points[0][0].isoformat(),
        "last_day": series_points[-1][0].isoformat(),
        "label_y": LINE_H - 6,
    }


BURN_W, BURN_H, BURN_PAD, BURN_TOP, BURN_BOTTOM = 320, 150, 8, 10, 22


def _burn_down(budget: dict, business_date: date) -> dict:
    """A small burn-down of one budget: remaining per day, the even burn, the projection."""
    start = date.fromisoformat(budget["period_start"])
    end = date.fromisoformat(budget["period_end"])
    amount = Decimal(budget["amount"])
    span = max(1, (end - start).days)
    width, height = BURN_W - 2 * BURN_PAD, BURN_H - BURN_TOP - BURN_BOTTOM

    def x(day: date) -> float:
        offset = min(max((day - start).days, 0), span)
        return BURN_PAD + width * offset / span

    def y(value: Decimal) -> float:
        share = float(value / amount) if amount else 0.0
        return BURN_TOP + height * (1 - max(0.0, min(1.0, share)))

    remaining, points = amount, [(x(start), y(amount))]
    for day, net in budget["by_day"]:
        when = date.fromisoformat(day)
        points.append((x(when), y(remaining)))  # flat until the day
        remaining -= Decimal(net)
        points.append((x(when + timedelta(days=1)), y(remaining)))
    points.append((x(business_date), y(remaining)))
    projection = None
    rate = Decimal(budget["daily_rate"])
    if budget["projected_exhaustion"]:
        exhaustion = date.fromisoformat(budget["projected_exhaustion"])
        if exhaustion <= end:
            target = (x(exhaustion), y(Decimal(0)))
        else:
            target = (x(end), y(remaining - rate * (end - business_date).days))
        projection = f"{_svg(x(business_date))},{_svg(y(remaining))} {_svg(target[0])},"
        projection += _svg(target[1])
    return {
        "code": budget["code"],
        "name": budget["name"],
        "width": BURN_W,
        "height": BURN_H,
        "actual": " ".join(f"{_svg(px)},{_svg(py)}" for px, py in points),
        "ideal": f"{_svg(x(start))},{_svg(y(amount))} {_svg(x(end))},{_svg(y(Decimal(0)))}",
        "projection": projection,
        "today_x": _svg(x(business_date)),
        "top": BURN_TOP,
        "bottom": BURN_H - BURN_BOTTOM,
        "label_y": BURN_H - 6,
        "right": BURN_W - BURN_PAD,
        "start": budget["period_start"],
        "end": budget["period_end"],
        "amount": floatformat(amount, "2g"),
        "remaining": floatformat(Decimal(budget["remaining"]), "2g"),
        "consumed_percent": floatformat(Decimal(budget["consumed_percent"] or 0), "1g"),
        "daily_rate": floatformat(rate, "2g"),
        "exhaustion": budget["projected_exhaustion"],
        "runs_out_early": budget["runs_out_early"],
    }


# --- the sections ---------------------------------------------------------------------------------


def _tier_labels(data: dict) -> list[str]:
    return list(kpi_tier_names(data).values())


def _visual(chart: str, table: KpiTable, data: dict, series) -> tuple[str, object]:
    """The kind of chart drawn for `chart` and its geometry."""
    if chart == "tier-distribution":
        return "bars", _bars(
            [
                (row[1], row[2], f"{intcomma(row[2])} · {format_value(row[3], 'percent')}", False)
                for row in table.rows
            ]
        )
    if chart in ("tiers-by-branch", "lifecycle-by-tier"):
        return "stacked", _stacked(table, _tier_labels(data))
    if chart == "tier-migration":
        codes = [tier["code"] for tier in data["tiers"]]
        cells = {(old, new): n for old, new, n in data["migration"]["cells"]}
        rows = [code for code in codes if code != NONE_CODE]
        if any(old == NONE_CODE for old, _new in cells):
            rows.insert(0, NONE_CODE)
        columns = list(codes)
        names = kpi_tier_names(data)
        return "heat", _heat(
            rows,
            columns,
            cells,
            text=lambda r, c: intcomma(cells[(r, c)]),
            row_label=lambda code: names.get(code, code) if code else _("Not graded before"),
            col_label=lambda code: names.get(code, code),
        )
    if chart == "lifecycle":
        return "bars", _bars(
            [
                (row[1], row[2], f"{intcomma(row[2])} · {format_value(row[3], 'percent')}", False)
                for row in table.rows
            ]
        )
    if chart == "dormant-trend":
        points = [(point.business_date, point.lifecycle) for point in series]
        return "line", _line(
            points,
            [
                ("DORMANT", _("Dormant"), "#1d4ed8"),
                ("AT_RISK", _("At risk"), "#b45309"),
                ("REACTIVATED", _("Reactivated"), "#047857"),
            ],
        )
    if chart == "campaigns":
        return "bars", _bars(
            [
                (
                    f"{row[0]} {row[1]}",
                    float(row[5] or 0),
                    f"{format_value(row[5], 'percent')} · "
                    + _("%(n)s participants") % {"n": intcomma(row[3])},
                    False,
                )
                for row in table.rows
            ]
        )
    if chart == "differentiation":
        return "bars", _bars(
            [
                (
                    f"{row[0]} → {row[1]}",
                    float(max(row[4], 0)),
                    format_value(row[4], "money"),
                    row[5],
                )
                for row in table.rows
            ]
        )
    if chart == "demand":
        return "bars", _bars(
            [
                (f"{row[0]} {row[1]}", float(row[4]), format_value(row[4], "percent"), row[5])
                for row in table.rows
            ],
            marker=float(data["demand"]["threshold_percent"]),
            marker_label=_("Threshold: %(percent)s%%")
            % {"percent": data["demand"]["threshold_percent"]},
        )
    if chart == "demand-by-tier":
        rates = {(row[0], row[1]): row[4] for row in table.rows}
        counts = {(row[0], row[1]): (row[3], row[2]) for row in table.rows}
        benefits = list(dict.fromkeys(row[0] for row in table.rows))
        tiers = [
            code for code in (t["code"] for t in data["tiers"]) if code in {k[1] for k in rates}
        ]
        tiers += sorted({k[1] for k in rates} - set(tiers))
        names = kpi_tier_names(data)
        return "heat", _heat(
            benefits,
            tiers,
            rates,
            text=lambda b, t: (
                f"{format_value(rates[(b, t)], 'percent')} "
                f"({intcomma(counts[(b, t)][0])}/{intcomma(counts[(b, t)][1])})"
            ),
            row_label=lambda code: code,
            col_label=lambda code: names.get(code, code or "—"),
        )
    if chart == "budgets":
        day = date.fromisoformat(data["business_date"])
        return "burn", [_burn_down(budget, day) for budget in data["budgets"]]
    return "table", None


def _csv_link(chart: str) -> str:
    return reverse("dashboard-csv", kwargs={"chart": chart})


def dashboard_sections(snapshot: KpiSnapshot, series) -> list[dict]:
    """Every section of the page: title, help, chart geometry, table and CSV links."""
    sections = []
    for chart, (title, help_text) in SECTIONS.items():
        table = kpi_table(chart=chart, snapshot=snapshot, series=series)
        kind, visual = _visual(chart, table, snapshot.data, series)
        exports = [(chart, _csv_link(chart))]
        exports += [(extra, _csv_link(extra)) for extra in EXTRA_EXPORTS.get(chart, ())]
        sections.append(
            {
                "chart": chart,
                "title": title,
                "help": help_text,
                "kind": kind,
                "visual": visual,
                "table": page_table(table),
                "empty": not table.rows,
                "exports": exports,
            }
        )
    return sections


def _headline(snapshot: KpiSnapshot, series) -> list[dict]:
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
    early = [budget["code"] for budget in data["budgets"] if budget["runs_out_early"]]
    return [
        {"label": _("Members"), "value": intcomma(data["members"]), "note": ""},
        {"label": _("Dormant"), "value": intcomma(dormant), "note": change},
        {
            "label": _("Upgraded this month"),
            "value": intcomma(migration["upgraded"]),
            "note": _("%(n)s downgraded") % {"n": intcomma(migration["downgraded"])},
        },
        {"label": _("Campaigns reported"), "value": intcomma(len(data["campaigns"])), "note": ""},
        {
            "label": _("Budgets running out before their period ends"),
            "value": intcomma(len(early)),
            "note": " ".join(early),
        },
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
            "causes": sorted(snapshot.data["migration"]["causes"].items()),
            "sections": dashboard_sections(snapshot, series),
        },
    )


# --- CSV ---------------------------------------------------------------------------------------


def _csv_cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, str):
        return csv_safe_text(value)
    return str(value)  # int, Decimal (never float)


def csv_lines(table: KpiTable) -> Iterator[str]:
    """A UTF-8 byte order mark (Excel then reads Chinese names), the header, the rows."""
    return portal_csv_lines(
        [column.key for column in table.columns],
        ([_csv_cell(value) for value in row] for row in table.rows),
    )


@action_required("portal.view_dashboard")
def dashboard_csv_view(request, chart: str):
    """One chart's table of the latest snapshot as CSV (404 for an unknown chart, or before
    the first snapshot)."""
    if chart not in KPI_CHARTS:
        raise Http404(_("No such chart."))
    snapshot = kpi_latest()
    if snapshot is None:
        raise Http404(_("No KPI snapshot yet: run `manage.py run_nightly`."))
    series = kpi_series(until=snapshot.business_date) if chart in TREND_CHARTS else None
    table = kpi_table(chart=chart, snapshot=snapshot, series=series)
    return csv_response(csv_lines(table), f"{chart}-{snapshot.business_date:%Y%m%d}.csv")
