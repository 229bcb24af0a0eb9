"""The charts of the KPI dashboard, each a small class chosen from `CHARTS` by its slug: the
table it reads from a snapshot (the rows of both the page's table and the CSV export, so the
two cannot drift apart), the picture drawn from that table (`svg`), and where it sits on the
page (its section, title and help). What they share is `tables.Chart`.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from django.contrib.humanize.templatetags.humanize import intcomma
from django.urls import reverse
from django.utils.translation import gettext, pgettext_lazy
from django.utils.translation import gettext_lazy as _

from campaigns.choices import CampaignStatus
from campaigns.uplift import VERDICTS
from members.choices import LifecycleStage
from portal.display import in_english, name_of, percent_text
from portal.models import KpiSnapshot

from . import svg
from .selectors import KpiPoint
from .snapshot import NONE_CODE, share_percent
from .tables import (
    Chart,
    CountsByTier,
    KpiColumn,
    KpiTable,
    MemberShares,
    as_date,
    as_decimal,
    format_value,
    kpi_tier_names,
    stage_label,
    tier_name,
)

__all__ = ["CHARTS", "KPI_CHARTS", "kpi_table"]

#: the heading of a count of members (not the "Members" pages of the navigation)
MEMBERS = pgettext_lazy("number of members", "Members")


def _choice_label(choices, value: str) -> str:
    """A stored choice (a campaign status) by its label in the user's language."""
    try:
        return str(choices(value).label)
    except ValueError:
        return value


def _benefit_names(data: dict, codes: list[str]) -> str:
    """Benefits of a snapshot by their names in the user's language, as a list people read."""
    catalogue = data.get("benefit_names", {})
    names = [name_of(catalogue[code]) if code in catalogue else code for code in codes]
    return (", " if in_english() else "、").join(names)


def _budget_department(row: dict) -> str:
    return row.get("department_name") or row["department"]


# --- tiers and lifecycle stages -------------------------------------------------------------


class TierDistribution(MemberShares):
    slug = "tier-distribution"
    title = _("Tier distribution")
    help_text = _("Members per tier on the business date.")
    columns = (
        KpiColumn("tier_code", _("Tier code"), "code"),
        KpiColumn("tier_name", _("Tier")),
        KpiColumn("members", MEMBERS, "count"),
        KpiColumn("percent", _("Share"), "percent"),
    )

    def rows(self, data, series):
        total = data["members"]
        return [
            [tier["code"], tier_name(tier), tier["members"], share_percent(tier["members"], total)]
            for tier in data["tiers"]
        ]


class TiersByBranch(CountsByTier):
    slug = "tiers-by-branch"
    title = _("Tiers by branch")
    help_text = _("Members per tier in each top-level branch (and everything below it).")
    code_key, name_key, dimension = "branch_code", "branch_name", 0
    code_label, name_label = _("Branch code"), _("Branch")

    def keys(self, data):
        branches = [(b["code"], b["name"]) for b in data["branches"]]
        if any(cell[0] == NONE_CODE for cell in data["cube"]):
            branches.append((NONE_CODE, str(_("No branch"))))
        seen = {cell[0] for cell in data["cube"]}
        return [b for b in branches if b[0] in seen]


class TierMigration(Chart):
    slug = "tier-migration"
    title = _("Tier migration, last month → this month")
    help_text = _(
        "Rows: the tier held at the end of last month; columns: the tier held on the "
        "business date (this month so far, month to date). The diagonal kept their tier; "
        "right of it moved up."
    )
    kind = "heat"
    columns = (
        KpiColumn("from_tier_code", _("Tier code at the end of last month"), "code"),
        KpiColumn("from_tier", _("Tier at the end of last month")),
        KpiColumn("to_tier_code", _("Tier code on the business date"), "code"),
        KpiColumn("to_tier", _("Tier on the business date")),
        KpiColumn("members", MEMBERS, "count"),
    )

    def rows(self, data, series):
        names = kpi_tier_names(data)
        before = gettext("Not graded before")
        return [
            [old, names.get(old, old) if old else before, new, names.get(new, new), n]
            for old, new, n in data["migration"]["cells"]
        ]

    def visual(self, table, data, series):
        codes = [tier["code"] for tier in data["tiers"]]
        cells = {(old, new): n for old, new, n in data["migration"]["cells"]}
        rows = [code for code in codes if code != NONE_CODE]
        if any(old == NONE_CODE for old, _new in cells):
            rows.insert(0, NONE_CODE)
        names = kpi_tier_names(data)
        return svg.heat(
            rows,
            list(codes),
            cells,
            text=lambda r, c: intcomma(cells[(r, c)]),
            row_label=lambda code: names.get(code, code) if code else gettext("Not graded before"),
            col_label=lambda code: names.get(code, code),
        )


class LifecycleFunnel(MemberShares):
    slug = "lifecycle"
    title = _("Lifecycle funnel")
    help_text = _("Members per lifecycle stage on the business date.")
    columns = (
        KpiColumn("stage", _("Stage code"), "code"),
        KpiColumn("stage_name", _("Lifecycle stage")),
        KpiColumn("members", MEMBERS, "count"),
        KpiColumn("percent", _("Share"), "percent"),
    )

    def rows(self, data, series):
        total = data["members"]
        counts = data["lifecycle"]  # a JSON object: its key order is not kept (jsonb)
        return [
            [
                stage,
                stage_label(stage),
                counts.get(stage, 0),
                share_percent(counts.get(stage, 0), total),
            ]
            for stage in LifecycleStage.values
        ]


class LifecycleByTier(CountsByTier):
    slug = "lifecycle-by-tier"
    title = _("Lifecycle stages by tier")
    help_text = _("Members per lifecycle stage, split by tier.")
    code_key, name_key, dimension = "stage", "stage_name", 2
    code_label, name_label = _("Stage code"), _("Lifecycle stage")

    def keys(self, data):
        return [(stage, stage_label(stage)) for stage in LifecycleStage.values]


class DormantTrend(Chart):
    slug = "dormant-trend"
    title = _("Dormant trend")
    help_text = _(
        "Dormant, at-risk and reactivated members over the last snapshots; the month in "
        "progress is shaded: its last point is the figure so far."
    )
    kind = "line"
    trend = True
    columns = (
        KpiColumn("business_date", _("Business date"), "date"),
        KpiColumn("members", MEMBERS, "count"),
        KpiColumn("dormant", _("Dormant"), "count"),
        KpiColumn("at_risk", _("At risk"), "count"),
        KpiColumn("churned", _("Churned"), "count"),
        KpiColumn("reactivated", _("Reactivated"), "count"),
    )

    def rows(self, data, series):
        return [
            [
                point.business_date,
                point.members,
                point.lifecycle.get("DORMANT", 0),
                point.lifecycle.get("AT_RISK", 0),
                point.lifecycle.get("CHURNED", 0),
                point.lifecycle.get("REACTIVATED", 0),
            ]
            for point in series
        ]

    def visual(self, table, data, series):
        return svg.line(
            [(point.business_date, point.lifecycle) for point in series],
            [
                ("DORMANT", gettext("Dormant"), "#1d4ed8"),
                ("AT_RISK", gettext("At risk"), "#b45309"),
                ("REACTIVATED", gettext("Reactivated"), "#047857"),
            ],
        )


class TierTrend(Chart):
    slug = "tier-trend"
    title = _("Tier trend")
    help_text = _(
        "Members per tier over the last snapshots; the month in progress is shaded: its "
        "last point is the figure so far."
    )
    kind = "line"
    trend = True

    def _tiers(self, data: dict) -> list[dict]:
        return [tier for tier in data["tiers"] if tier["code"] != NONE_CODE]

    def header(self, data):
        return [
            KpiColumn("business_date", _("Business date"), "date"),
            *(KpiColumn(tier["code"], tier_name(tier), "count") for tier in self._tiers(data)),
            KpiColumn("members", MEMBERS, "count"),
        ]

    def rows(self, data, series):
        codes = [tier["code"] for tier in self._tiers(data)]
        return [
            [point.business_date, *(point.tiers.get(code, 0) for code in codes), point.members]
            for point in series
        ]

    def visual(self, table, data, series):
        return svg.line(
            [(point.business_date, point.tiers) for point in series],
            [
                (tier["code"], tier_name(tier), svg.PALETTE[index % len(svg.PALETTE)])
                for index, tier in enumerate(self._tiers(data))
            ],
        )


# --- campaigns and benefits -----------------------------------------------------------------


class CampaignEffectiveness(Chart):
    slug = "campaigns"
    title = _("Campaign effectiveness")
    help_text = _(
        "Completion rate of the launched campaigns (bars), with participants, cost and "
        "dormant members reactivated."
    )
    kind = "bars"
    columns = (
        KpiColumn("campaign_code", _("Campaign code"), "code"),
        KpiColumn("campaign_name", _("Campaign")),
        KpiColumn("status", _("Status")),
        KpiColumn("participants", _("Participants"), "count"),
        KpiColumn("completers", _("Completers"), "count"),
        KpiColumn("completion_rate", _("Completion rate"), "percent"),
        KpiColumn("total_cost", _("Cost"), "money"),
        KpiColumn("reactivated", _("Dormant members reactivated"), "count"),
        KpiColumn("cost_per_reactivation", _("Cost per reactivation"), "money"),
    )

    def rows(self, data, series):
        return [
            [
                row["code"],
                row["name"],
                _choice_label(CampaignStatus, row["status"]),
                row["participants"],
                row["completers"],
                as_decimal(row["completion_rate"]),
                as_decimal(row["total_cost"]),
                row["reactivated"],
                as_decimal(row["cost_per_reactivation"]),
            ]
            for row in data["campaigns"]
        ]

    def visual(self, table, data, series):
        return svg.bars(
            [
                (
                    row[1],
                    float(row[5] or 0),
                    f"{format_value(row[5], 'percent')} · "
                    + gettext("%(n)s participants") % {"n": intcomma(row[3])},
                    False,
                    row[0],
                )
                for row in table.rows
            ]
        )


def _rate_percent(value: str | None) -> Decimal | None:
    """A stored fraction ("0.2531") as a percent (25.31)."""
    return None if value is None else (Decimal(value) * 100).quantize(Decimal("0.1"))


class CampaignUplift(Chart):
    slug = "campaign-uplift"
    title = _("Campaign uplift against the holdout")
    help_text = _(
        "Campaigns that held out a random share of their audience: reactivation of those "
        "dormant at launch, offered against held out, the uplift with its confidence interval "
        "(95 percent) and the verdict. The chart follows the newest campaign night by night."
    )
    kind = "line"
    columns = (
        KpiColumn("campaign_code", _("Campaign code"), "code"),
        KpiColumn("campaign_name", _("Campaign")),
        KpiColumn("measured_until", _("Measured until"), "date"),
        KpiColumn("offered", _("Offered the campaign"), "count"),
        KpiColumn("held_out", _("Held out"), "count"),
        KpiColumn("rate_offered", _("Reactivated, offered"), "percent"),
        KpiColumn("rate_held_out", _("Reactivated, held out"), "percent"),
        KpiColumn("uplift", _("Uplift (percentage points)")),
        KpiColumn("low", _("Interval from (points)")),
        KpiColumn("high", _("Interval to (points)")),
        KpiColumn("verdict", _("Verdict")),
        KpiColumn("incremental", _("Incremental reactivations"), "count"),
        KpiColumn("cost_per_incremental", _("Cost per incremental reactivation"), "money"),
    )

    def rows(self, data, series):
        return [
            [
                row["code"],
                row["name"],
                as_date(row["measured_until"]),
                row["offered"],
                row["held_out"],
                _rate_percent(row["rate_offered"]),
                _rate_percent(row["rate_held_out"]),
                _rate_percent(row["uplift"]),
                _rate_percent(row["low"]),
                _rate_percent(row["high"]),
                str(VERDICTS.get(row["verdict"], row["verdict"])),
                None if row["incremental"] is None else round(Decimal(row["incremental"])),
                as_decimal(row["cost_per_incremental"]),
            ]
            for row in data.get("uplift", [])
        ]

    def visual(self, table, data, series):
        rows = data.get("uplift", [])
        if not rows or not rows[0]["series"]:
            return None
        newest = rows[0]
        return svg.uplift_line(
            [(as_date(day), treated, held) for day, treated, held in newest["series"]],
            offered=f"{newest['name']}: " + gettext("offered the campaign"),
            held_out=f"{newest['name']}: " + gettext("held out"),
        )

    def links(self, data):
        return [
            (row["name"], reverse("campaign-effect", kwargs={"code": row["code"]}))
            for row in data.get("uplift", [])
        ]


class BenefitDifferentiation(Chart):
    slug = "differentiation"
    title = _("Benefit differentiation")
    help_text = _(
        "What each step up the tiers adds, as yearly cost per member; a step that adds "
        "no new benefit (only more of the same) is flagged."
    )
    kind = "bars"
    columns = (
        KpiColumn("from_tier_code", _("From tier code"), "code"),
        KpiColumn("from_tier", _("From tier")),
        KpiColumn("to_tier_code", _("To tier code"), "code"),
        KpiColumn("to_tier", _("To tier")),
        KpiColumn("new_benefits", _("New benefits")),
        KpiColumn("larger_quantities", _("Only more of")),
        KpiColumn("added_cost_per_member_year", _("Added cost per member a year"), "money"),
        KpiColumn("flagged", _("Nothing new"), "flag"),
    )

    def rows(self, data, series):
        names = kpi_tier_names(data)
        return [
            [
                step["lower"],
                names.get(step["lower"], step["lower"]),
                step["higher"],
                names.get(step["higher"], step["higher"]),
                _benefit_names(data, step["new_benefits"]),
                _benefit_names(data, step["larger_quantities"]),
                as_decimal(step["added_cost_per_member_year"]),
                step["flagged"],
            ]
            for step in data["differentiation"]["steps"]
        ]

    def visual(self, table, data, series):
        return svg.bars(
            [
                (
                    f"{row[1]} → {row[3]}",
                    float(max(row[6], 0)),
                    format_value(row[6], "money"),
                    row[7],
                )
                for row in table.rows
            ]
        )


#: the columns of the demand charts after their key columns
_DEMAND = (
    KpiColumn("granted", _("Granted"), "count"),
    KpiColumn("redeemed", _("Redeemed"), "count"),
    KpiColumn("redemption_rate", _("Redemption rate"), "percent"),
    KpiColumn("flagged", _("Low demand"), "flag"),
)


class BenefitDemand(Chart):
    slug = "demand"
    title = _("Benefit demand")
    help_text = _(
        "Redemption rate of the grants made in the last 90 days; benefits below the "
        "threshold are flagged."
    )
    kind = "bars"
    columns = (
        KpiColumn("benefit_code", _("Benefit code"), "code"),
        KpiColumn("benefit_name", _("Benefit")),
        *_DEMAND,
    )

    def rows(self, data, series):
        return [
            [
                row["code"],
                name_of(row),
                row["granted"],
                row["redeemed"],
                as_decimal(row["rate"]),
                row["flagged"],
            ]
            for row in data["demand"]["benefits"]
        ]

    def visual(self, table, data, series):
        threshold = data["demand"]["threshold_percent"]
        return svg.bars(
            [
                (row[1], float(row[4]), format_value(row[4], "percent"), row[5])
                for row in table.rows
            ],
            marker=float(threshold),
            marker_label=gettext("Threshold: %(percent)s") % {"percent": percent_text(threshold)},
        )


class BenefitDemandByTier(Chart):
    slug = "demand-by-tier"
    title = _("Benefit demand by tier")
    help_text = _("Redemption rate per benefit and member tier (last 90 days).")
    kind = "heat"
    columns = (
        KpiColumn("benefit_code", _("Benefit code"), "code"),
        KpiColumn("benefit_name", _("Benefit")),
        KpiColumn("tier_code", _("Tier code"), "code"),
        KpiColumn("tier_name", _("Tier")),
        *_DEMAND,
    )

    def rows(self, data, series):
        benefits = {row["code"]: name_of(row) for row in data["demand"]["benefits"]}
        tiers = kpi_tier_names(data)
        return [
            [
                row["benefit"],
                benefits.get(row["benefit"], row["benefit"]),
                row["tier"],
                tiers.get(row["tier"], row["tier"]) if row["tier"] else gettext("Not graded"),
                row["granted"],
                row["redeemed"],
                as_decimal(row["rate"]),
                row["flagged"],
            ]
            for row in data["demand"]["by_tier"]
        ]

    def visual(self, table, data, series):
        rates = {(row[0], row[2]): row[6] for row in table.rows}
        counts = {(row[0], row[2]): (row[5], row[4]) for row in table.rows}
        benefit_names = {row[0]: row[1] for row in table.rows}
        benefits = list(dict.fromkeys(row[0] for row in table.rows))
        tiers = [
            code for code in (t["code"] for t in data["tiers"]) if code in {k[1] for k in rates}
        ]
        tiers += sorted({k[1] for k in rates} - set(tiers))
        names = kpi_tier_names(data)
        return svg.heat(
            benefits,
            tiers,
            rates,
            text=lambda b, t: (
                f"{format_value(rates[(b, t)], 'percent')} "
                f"({intcomma(counts[(b, t)][0])}/{intcomma(counts[(b, t)][1])})"
            ),
            row_label=lambda code: benefit_names[code],
            col_label=lambda code: names.get(code, code or "—"),
        )


# --- budgets ----------------------------------------------------------------------------------


class BudgetBurnDown(Chart):
    slug = "budgets"
    title = _("Budget burn-down")
    help_text = _(
        "Remaining budget per day (solid), the even burn to the period end (grey) and "
        "the projection at the last 30 days' rate (dashed) to the exhaustion date."
    )
    kind = "burn"
    columns = (
        KpiColumn("budget_code", _("Budget code"), "code"),
        KpiColumn("budget_name", _("Budget")),
        KpiColumn("department", _("Department")),
        KpiColumn("period_start", _("Period start"), "date"),
        KpiColumn("period_end", _("Period end"), "date"),
        KpiColumn("amount", _("Amount"), "money"),
        KpiColumn("consumed", _("Consumed"), "money"),
        KpiColumn("remaining", _("Remaining"), "money"),
        KpiColumn("consumed_percent", _("Share consumed"), "percent"),
        KpiColumn("daily_rate", _("Daily burn, last 30 days"), "money"),
        KpiColumn("projected_exhaustion", _("Projected exhaustion"), "date"),
        KpiColumn("runs_out_before_period_end", _("Runs out before the period ends"), "flag"),
    )

    def rows(self, data, series):
        return [
            [
                row["code"],
                row["name"],
                _budget_department(row),
                as_date(row["period_start"]),
                as_date(row["period_end"]),
                as_decimal(row["amount"]),
                as_decimal(row["consumed"]),
                as_decimal(row["remaining"]),
                as_decimal(row["consumed_percent"]),
                as_decimal(row["daily_rate"]),
                as_date(row["projected_exhaustion"]),
                row["runs_out_early"],
            ]
            for row in data["budgets"]
        ]

    def visual(self, table, data, series):
        day = date.fromisoformat(data["business_date"])
        return [svg.burn_down(budget, day) for budget in data["budgets"]]


class BudgetBurnByDay(Chart):
    """The days behind the burn-downs: a CSV export offered in the budgets' section."""

    slug = "budget-burn"
    section = "budgets"
    title = _("Budget burn by day")
    columns = (
        KpiColumn("budget_code", _("Budget code"), "code"),
        KpiColumn("budget_name", _("Budget")),
        KpiColumn("date", _("Date"), "date"),
        KpiColumn("consumed_on_day", _("Net consumed that day"), "money"),
        KpiColumn("consumed_to_date", _("Consumed to date"), "money"),
        KpiColumn("remaining", _("Remaining"), "money"),
    )

    def rows(self, data, series):
        rows = []
        for budget in data["budgets"]:
            amount, consumed = Decimal(budget["amount"]), Decimal("0.00")
            for day, net in budget["by_day"]:
                consumed += Decimal(net)
                remaining = amount - consumed
                rows.append(
                    [
                        budget["code"],
                        budget["name"],
                        as_date(day),
                        Decimal(net),
                        consumed,
                        remaining,
                    ]
                )
        return rows


#: the charts of the dashboard by slug, in the order of the page; each has a CSV export
CHARTS: dict[str, Chart] = {
    chart.slug: chart
    for chart in (
        TierDistribution(),
        TiersByBranch(),
        TierTrend(),
        TierMigration(),
        LifecycleFunnel(),
        LifecycleByTier(),
        DormantTrend(),
        CampaignEffectiveness(),
        CampaignUplift(),
        BenefitDifferentiation(),
        BenefitDemand(),
        BenefitDemandByTier(),
        BudgetBurnDown(),
        BudgetBurnByDay(),
    )
}
#: the slugs of the charts, each with a CSV export
KPI_CHARTS: tuple[str, ...] = tuple(CHARTS)


def kpi_table(
    *, chart: str, snapshot: KpiSnapshot, series: list[KpiPoint] | None = None
) -> KpiTable:
    """The table of one chart of the dashboard for `snapshot` (and the trend `series` for
    trend charts): columns and typed rows (int, Decimal, date, bool, str, None). Raises
    KeyError for an unknown chart."""
    return CHARTS[chart].table(snapshot.data, series or [])
