"""The pure geometry of the dashboard's server-rendered SVG charts: horizontal bars, 100 %
stacked bars, heat tables, a line over days and a budget's burn-down. Each function turns
plain values into the numbers the template draws (coordinates as dotted strings, never
localised); no request, no query, no Django view.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from django.contrib.humanize.templatetags.humanize import intcomma
from django.template.defaultfilters import floatformat

__all__ = ["PALETTE", "bars", "burn_down", "coordinate", "heat", "line", "stacked"]

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
                "width": coordinate(max(0.0, min(100.0, float(value) * 100 / top))),
                "text": text,
                "flagged": flagged,
            }
            for label, value, text, flagged in items
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


LINE_W, LINE_H, LINE_LEFT, LINE_BOTTOM, LINE_TOP = 720, 220, 56, 24, 12


def line(series_points: list[tuple[date, dict[str, int]]], keys: list[tuple[str, str, str]]):
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
                "points": " ".join(_point(px, py) for px, py in points),
                "last": {"x": coordinate(points[-1][0]), "y": coordinate(points[-1][1])},
                "latest": intcomma(series_points[-1][1].get(key, 0)),
            }
        )
    ticks = [
        {"y": coordinate(y(value)), "text": intcomma(value)} for value in sorted({0, top // 2, top})
    ]
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


def burn_down(budget: dict, business_date: date) -> dict:
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
        projection = f"{_point(x(business_date), y(remaining))} {_point(*target)}"
    return {
        "code": budget["code"],
        "name": budget["name"],
        "width": BURN_W,
        "height": BURN_H,
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
        "amount": floatformat(amount, "2g"),
        "remaining": floatformat(Decimal(budget["remaining"]), "2g"),
        "consumed_percent": floatformat(Decimal(budget["consumed_percent"] or 0), "1g"),
        "daily_rate": floatformat(rate, "2g"),
        "exhaustion": budget["projected_exhaustion"],
        "runs_out_early": budget["runs_out_early"],
    }
