"""The pure geometry of the dashboard's server-rendered SVG charts: horizontal bars, 100 %
stacked bars, heat tables, a line over days and a budget's burn-down. Each function turns
plain values into the numbers the template draws (coordinates as dotted strings, never
localised); no request, no query, no Django view.
"""

from __future__ import annotations

import math
from datetime import date, timedelta
from decimal import Decimal

from django.contrib.humanize.templatetags.humanize import intcomma
from django.utils.formats import date_format
from django.utils.translation import gettext

from portal.display import money_text, percent_text

__all__ = [
    "PALETTE",
    "bars",
    "burn_down",
    "coordinate",
    "heat",
    "line",
    "nice_ticks",
    "stacked",
    "uplift_line",
]

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


def coordinate(number: float) -> str:
    """A coordinate for an SVG attribute: never localised (always a dot)."""
    return f"{number:.2f}"


def _point(x: float, y: float) -> str:
    """A point of an SVG polyline, "x,y"."""
    return f"{coordinate(x)},{coordinate(y)}"


def bars(
    items: list[tuple],
    *,
    marker: float | None = None,
    marker_label: str = "",
) -> dict:
    """Horizontal bars: (label, value, text shown, flagged[, code shown beside the label]);
    widths relative to the largest value, or to 100 when `marker` (a percent threshold) is
    given."""
    top = 100.0 if marker is not None else max([float(item[1]) for item in items] or [0])
    top = top or 1.0
    return {
        "items": [
            {
                "label": item[0],
                "code": item[4] if len(item) > 4 else "",
                "width": coordinate(max(0.0, min(100.0, float(item[1]) * 100 / top))),
                "text": item[2],
                "flagged": item[3],
            }
            for item in items
        ],
        "marker": coordinate(marker) if marker is not None else None,
        "marker_label": marker_label,
    }


def stacked(rows: list[list], tier_names: list[str]) -> dict:
    """One 100 % bar per row of a wide table (code, name, one count per tier…, total)."""
    legend = [
        {"label": name, "color": PALETTE[index % len(PALETTE)]}
        for index, name in enumerate(tier_names)
    ]
    stacks = []
    for row in rows:
        counts, total = row[2:-1], row[-1]
        segments, x = [], 0.0
        for index, count in enumerate(counts):
            if not count or not total:
                continue
            width = count * 100 / total
            segments.append(
                {
                    "x": coordinate(x),
                    "width": coordinate(width),
                    "color": PALETTE[index % len(PALETTE)],
                    "title": f"{tier_names[index]}: {intcomma(count)}",
                }
            )
            x += width
        stacks.append({"label": row[1] or "—", "segments": segments, "total": intcomma(total)})
    return {"legend": legend, "rows": stacks}


def heat(row_keys, col_keys, values: dict, *, text, row_label, col_label) -> dict:
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
                    "alpha": coordinate(alpha),
                    "dark": alpha > 0.5,
                    "diagonal": row == col,
                }
            )
        rows.append({"label": row_label(row), "cells": cells})
    return {"columns": [col_label(col) for col in col_keys], "rows": rows}


LINE_W, LINE_H, LINE_LEFT, LINE_RIGHT, LINE_BOTTOM, LINE_TOP = 720, 240, 64, 12, 30, 22


def nice_ticks(top: int, count: int = 4) -> list[int]:
    """Values for a count axis: 0 and about `count` round steps (1, 2, 5 × 10ⁿ) that reach
    at least `top`."""
    if top <= 0:
        return [0, 1]
    raw = top / count
    magnitude = 10 ** max(0, math.floor(math.log10(raw)))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    return [index * step for index in range(math.ceil(top / step) + 1)]


def _month_starts(first: date, last: date) -> list[date]:
    months, month = [], first.replace(day=1)
    while month <= last:
        months.append(month)
        month = (month + timedelta(days=32)).replace(day=1)
    return months


def _month_end(day: date) -> date:
    return (day.replace(day=1) + timedelta(days=32)).replace(day=1) - timedelta(days=1)


def line(
    series_points: list[tuple[date, dict[str, int]]],
    keys: list[tuple[str, str, str]],
    *,
    value_text=intcomma,
    month_to_date: bool = True,
):
    """A line chart over days: `keys` are (key, label, colour) of the values to draw. Days
    sit at their date (snapshots need not be daily); the y-axis carries round values, the
    x-axis the months; a month not yet over is shaded and marked month to date, so that
    its last point reads as the figure so far (unless `month_to_date` is False: a measure
    that is not a monthly figure). `value_text` writes a value (default: a count)."""
    if not series_points:
        return None
    first, last = series_points[0][0], series_points[-1][0]
    ticks = nice_ticks(
        max([values.get(key, 0) for _d, values in series_points for key, _l, _c in keys] + [0])
    )
    top = ticks[-1]
    span = (last - first).days
    width = LINE_W - LINE_LEFT - LINE_RIGHT
    height = LINE_H - LINE_TOP - LINE_BOTTOM
    right = LINE_W - LINE_RIGHT
    bottom = LINE_TOP + height

    def x(day: date) -> float:
        offset = min(max((day - first).days, 0), span)
        return LINE_LEFT + (width * offset / span if span else width / 2)

    def y(value: int) -> float:
        return LINE_TOP + height * (1 - value / top)

    lines = []
    for key, label, color in keys:
        points = [(x(day), y(values.get(key, 0))) for day, values in series_points]
        lines.append(
            {
                "label": label,
                "color": color,
                "points": " ".join(_point(px, py) for px, py in points),
                "dots": [{"x": coordinate(px), "y": coordinate(py)} for px, py in points],
                "last": {"x": coordinate(points[-1][0]), "y": coordinate(points[-1][1])},
                "latest": value_text(series_points[-1][1].get(key, 0)),
            }
        )
    months = []
    for month in _month_starts(first, last):
        start_x = x(max(month, first))
        end_x = x(min(_month_end(month), last))
        months.append(
            {
                "x": coordinate(x(month)),
                "gridline": month > first,
                "label_x": coordinate((start_x + end_x) / 2 if span else start_x),
                "label": date_format(month, "YEAR_MONTH_FORMAT"),
            }
        )
    shaded = None
    if month_to_date and last != _month_end(last):
        band_start = x(max(last.replace(day=1), first))
        shaded = {
            "x": coordinate(band_start),
            "width": coordinate(max(right - band_start, 4.0)),
            "label_x": coordinate(right - 2),
            "label": gettext("Month to date"),
        }
    return {
        "width": LINE_W,
        "height": LINE_H,
        "left": LINE_LEFT,
        "right": right,
        "top": LINE_TOP,
        "bottom": coordinate(bottom),
        "band_height": coordinate(height),
        "lines": lines,
        "ticks": [{"y": coordinate(y(value)), "text": value_text(value)} for value in ticks],
        "tick_x": LINE_LEFT - 6,
        "months": months,
        "month_to_date": shaded,
        "mtd_label_y": LINE_TOP - 8,
        "first_day": first.isoformat(),
        "last_day": last.isoformat(),
        "label_y": LINE_H - 10,
    }


#: the colours of a campaign's two groups: offered the campaign, held out of it
OFFERED_COLOUR, HELD_OUT_COLOUR = "#1d4ed8", "#94a3b8"


def _tenths_percent(tenths: int) -> str:
    return percent_text(Decimal(tenths) / 10)


def uplift_line(
    series: list[tuple[date, object, object]], *, offered: str, held_out: str
) -> dict | None:
    """A campaign's two groups night by night: (day, rate offered, rate held out), rates as
    fractions (a number or its text; None: nothing counted), drawn to a tenth of a percent
    with a percent axis. A running measure, not a month's figure: no month-to-date band."""
    if not series:
        return None
    points = [
        (
            day,
            {
                "offered": round(Decimal(str(treated or 0)) * 1000),
                "held_out": round(Decimal(str(held or 0)) * 1000),
            },
        )
        for day, treated, held in series
    ]
    return line(
        points,
        [("offered", offered, OFFERED_COLOUR), ("held_out", held_out, HELD_OUT_COLOUR)],
        value_text=_tenths_percent,
        month_to_date=False,
    )


BURN_W, BURN_H, BURN_LEFT, BURN_PAD, BURN_TOP, BURN_BOTTOM = 320, 150, 40, 8, 10, 22


def burn_down(budget: dict, business_date: date) -> dict:
    """A small burn-down of one budget: remaining per day, the even burn, the projection.
    The y-axis is the share of the budget left (100 %, 50 %, 0 %), the x-axis its period
    from the first day to the last; amounts are in the facts beside it."""
    start = date.fromisoformat(budget["period_start"])
    end = date.fromisoformat(budget["period_end"])
    amount = Decimal(budget["amount"])
    span = max(1, (end - start).days)
    width, height = BURN_W - BURN_LEFT - BURN_PAD, BURN_H - BURN_TOP - BURN_BOTTOM

    def x(day: date) -> float:
        offset = min(max((day - start).days, 0), span)
        return BURN_LEFT + width * offset / span

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
        projection = f"{_point(x(business_date), y(remaining))} {_point(*target)}"
    return {
        "code": budget["code"],
        "name": budget["name"],
        "width": BURN_W,
        "height": BURN_H,
        "left": BURN_LEFT,
        "tick_x": BURN_LEFT - 4,
        "ticks": [
            {"y": coordinate(y(amount * share / 100)), "text": percent_text(share, 0)}
            for share in (100, 50, 0)
        ],
        "actual": " ".join(_point(px, py) for px, py in points),
        "ideal": f"{_point(x(start), y(amount))} {_point(x(end), y(Decimal(0)))}",
        "projection": projection,
        "today_x": coordinate(x(business_date)),
        "top": BURN_TOP,
        "bottom": BURN_H - BURN_BOTTOM,
        "label_y": BURN_H - 6,
        "right": BURN_W - BURN_PAD,
        "start": budget["period_start"],
        "end": budget["period_end"],
        "amount": money_text(amount),
        "remaining": money_text(Decimal(budget["remaining"])),
        "consumed_percent": percent_text(Decimal(budget["consumed_percent"] or 0)),
        "daily_rate": money_text(rate),
        "exhaustion": budget["projected_exhaustion"],
        "runs_out_early": budget["runs_out_early"],
    }
