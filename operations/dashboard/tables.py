"""What every chart of the dashboard shares: `Chart`, the base of the classes of `charts`
(a slug, a section, a table, a picture, a CSV export), and the table it builds — columns and
typed rows (int, Decimal, date, bool, str, None) that the page formats in the user's locale
(`format_value`, `page_table`) and the CSV export writes for people opening it in Excel
(`Chart.csv_lines`: headers in the user's language, names rather than codes beside a code
column, money with 2 decimals), so a chart's table on the page and its CSV hold the same rows.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from django.contrib.humanize.templatetags.humanize import intcomma
from django.utils.functional import Promise
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from members.choices import LifecycleStage
from portal.csv_export import csv_lines as portal_csv_lines
from portal.csv_export import csv_safe_text
from portal.display import in_english, money_text, name_of, percent_text

from . import svg
from .selectors import KpiPoint
from .snapshot import NONE_CODE

__all__ = [
    "Chart",
    "CountsByTier",
    "KpiColumn",
    "KpiTable",
    "MemberShares",
    "as_date",
    "as_decimal",
    "csv_cell",
    "csv_header",
    "in_english",
    "format_value",
    "kpi_tier_names",
    "page_table",
    "stage_label",
    "tier_name",
]


@dataclass(frozen=True)
class KpiColumn:
    """A column of a chart's table: `key` names it for code, `label` heads it on the page and
    in the CSV; `kind` says how a value is shown (text, code, count, money, percent, date,
    flag). A code column stands beside the name it belongs to: the CSV keeps it for staff
    who look the row up elsewhere, the page shows the name only."""

    key: str
    label: str | Promise
    kind: str = "text"


@dataclass(frozen=True)
class KpiTable:
    chart: str
    columns: list[KpiColumn]
    rows: list[list]


def format_value(value, kind: str) -> str:
    """A table value as the page shows it, in the user's language: counts grouped, money as
    ¥1,234.50 / CNY 1,234.50, percentages with %."""
    if value is None:
        return "—"
    if kind == "count":
        return intcomma(value)
    if kind == "money":
        return money_text(value)
    if kind == "percent":
        return percent_text(value)
    if kind == "date":
        return value.isoformat()
    if kind == "flag":
        return "⚑ " + gettext("Yes") if value else ""
    return str(value) if value != NONE_CODE else "—"


_NUMERIC = {"count", "money", "percent"}


def page_table(table: KpiTable) -> dict:
    """A table as the page shows it: labels, and each value formatted (`format_value`),
    numbers aligned right, flags marked; code columns left out (their name is beside)."""
    shown = [index for index, column in enumerate(table.columns) if column.kind != "code"]
    return {
        "columns": [
            {"label": str(table.columns[i].label), "num": table.columns[i].kind in _NUMERIC}
            for i in shown
        ],
        "rows": [
            [
                {
                    "text": format_value(row[i], table.columns[i].kind),
                    "num": table.columns[i].kind in _NUMERIC,
                    "flag": table.columns[i].kind == "flag" and bool(row[i]),
                }
                for i in shown
            ]
            for row in table.rows
        ],
    }


_CENT = Decimal("0.01")


def csv_header(column: KpiColumn) -> str:
    """A column's heading in the CSV, in the user's language, with the unit of its numbers
    (the cells stay plain numbers that Excel can add up)."""
    if column.kind == "money":
        return gettext("%(label)s (CNY)") % {"label": column.label}
    if column.kind == "percent":
        return gettext("%(label)s (%%)") % {"label": column.label}
    return str(column.label)


def csv_cell(value, kind: str) -> str:
    """A value as the CSV holds it: money with 2 decimals, yes / no in the user's language,
    ISO dates, text quoted when Excel would run it as a formula."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return gettext("Yes") if value else gettext("No")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, str):
        return csv_safe_text(value)
    if kind == "money":
        return str(Decimal(value).quantize(_CENT))
    return str(value)  # int, Decimal (never float)


def tier_name(tier: dict) -> str:
    """A tier of a snapshot by its name in the user's language ("Not graded" for none)."""
    if tier["code"] == NONE_CODE:
        return str(_("Not graded"))
    return name_of(tier)


def kpi_tier_names(data: dict) -> dict[str, str]:
    """Tier code → name in the current language, in the order of the snapshot's tiers."""
    return {tier["code"]: tier_name(tier) for tier in data["tiers"]}


def stage_label(stage: str) -> str:
    try:
        return str(LifecycleStage(stage).label)
    except ValueError:
        return stage


def as_decimal(value: str | None) -> Decimal | None:
    return None if value is None else Decimal(value)


def as_date(value: str | None) -> date | None:
    return None if value is None else date.fromisoformat(value)


class Chart:
    """A chart of the dashboard: its table from a snapshot's data (and the trend of daily
    snapshots for a trend chart), the picture drawn from it, its CSV export."""

    slug: str
    #: the page section it is shown in: None for a section of its own (with a title and a
    #: help text); another chart's slug to only offer its CSV export in that section
    section: str | None = None
    title: str | Promise = ""
    help_text: str | Promise = ""
    #: how the template draws `visual`: bars, stacked, heat, line, burn, or only the table
    kind = "table"
    #: reads the trend of daily snapshots (`kpi_series`) rather than one snapshot
    trend = False
    columns: tuple[KpiColumn, ...] = ()

    def header(self, data: dict) -> list[KpiColumn]:
        return list(self.columns)

    def rows(self, data: dict, series: list[KpiPoint]) -> list[list]:
        raise NotImplementedError

    def table(self, data: dict, series: list[KpiPoint]) -> KpiTable:
        return KpiTable(chart=self.slug, columns=self.header(data), rows=self.rows(data, series))

    def visual(self, table: KpiTable, data: dict, series: list[KpiPoint]) -> object:
        """The geometry the template draws (`svg`), or None for a table only."""
        return None

    def links(self, data: dict) -> list[tuple[str, str]]:
        """(label, URL) of the pages behind the chart's rows, shown under its help."""
        return []

    def csv_filename(self, business_date: date) -> str:
        return f"{self.slug}-{business_date:%Y%m%d}.csv"

    def csv_lines(self, table: KpiTable) -> Iterator[str]:
        """A UTF-8 byte order mark (Excel then reads Chinese names), the header, the rows —
        worked out now, in the request's language (the response is streamed after it)."""
        header = [csv_header(column) for column in table.columns]
        rows = [
            [csv_cell(value, column.kind) for value, column in zip(row, table.columns, strict=True)]
            for row in table.rows
        ]
        return portal_csv_lines(header, rows)


# --- the shapes several charts share -----------------------------------------------------


class MemberShares(Chart):
    """Members per category and their share of the population: (code, name, members, %)."""

    kind = "bars"

    def visual(self, table, data, series):
        return svg.bars(
            [
                (row[1], row[2], f"{intcomma(row[2])} · {format_value(row[3], 'percent')}", False)
                for row in table.rows
            ]
        )


class CountsByTier(Chart):
    """Rows (top-level branches, lifecycle stages) by one count column per tier of the
    snapshot and a total, from the cube; one 100 % bar per row."""

    kind = "stacked"
    code_key: str
    name_key: str
    code_label: str | Promise
    name_label: str | Promise
    #: the cube position of the row key (0 branch, 2 stage)
    dimension: int

    def keys(self, data: dict) -> list[tuple[str, str]]:
        """The rows, as (code, name)."""
        raise NotImplementedError

    def header(self, data):
        names = kpi_tier_names(data)
        return [
            KpiColumn(self.code_key, self.code_label, "code"),
            KpiColumn(self.name_key, self.name_label),
            *(
                KpiColumn(tier["code"] or "not_graded", names[tier["code"]], "count")
                for tier in data["tiers"]
            ),
            KpiColumn("total", _("Total"), "count"),
        ]

    def rows(self, data, series):
        codes = [tier["code"] for tier in data["tiers"]]
        counts: dict[tuple[str, str], int] = defaultdict(int)
        for cell in data["cube"]:
            counts[(cell[self.dimension], cell[1])] += cell[3]
        rows = []
        for key, name in self.keys(data):
            values = [counts.get((key, code), 0) for code in codes]
            rows.append([key, name, *values, sum(values)])
        return rows

    def visual(self, table, data, series):
        return svg.stacked(table.rows, list(kpi_tier_names(data).values()))
