"""KPI snapshots: the dashboard's figures for one business date, computed once by the last
step of the nightly chain (`kpi_snapshot`) so that the dashboard never scans the member
population (DESIGN.md, "Scale path": dashboards read daily snapshot tables).

The service `kpi_snapshot_compute` runs a fixed number of GROUP BY queries whatever the
number of members (no Python loop per member): one over members by (branch, tier, lifecycle
stage), two over the month's `TierChange` rows, one per report of campaigns and benefits,
and one over the budget ledger by (budget, day). Recomputing a date replaces that date's
snapshot. Figures are what the tables hold when the step runs (after that night's
recomputes); money is kept as strings of Decimal CNY with 2 places, never float.

The selectors `kpi_latest`, `kpi_series` and `kpi_table` read snapshots back; the page and
the CSV exports both call `kpi_table`, so a chart's table and its CSV hold the same rows.

The figures are bank-wide aggregates (counts and sums, no personal data). They are broken
down by top-level branch (分行, the branch right under the head office), which is as far as
a branch manager's view of the bank goes; nothing is scoped per user.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Exists, OuterRef, Q, Subquery, Sum
from django.db.models.functions import TruncDate
from django.utils.functional import Promise
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _

from benefits.choices import GrantStatus
from benefits.models import BenefitGrant, Budget, BudgetEntry
from benefits.selectors import DemandRow, differentiation_report
from campaigns.choices import CampaignStatus
from campaigns.models import Campaign
from campaigns.reports import campaigns_overview
from members.choices import LifecycleStage, SchemeStatus
from members.models import Member, Tier, TierChange, TierScheme
from portal.clock import SHANGHAI
from portal.models import Branch, KpiSnapshot
from portal.money import fen_to_decimal
from portal.services import kpi_snapshot_save

__all__ = [
    "KPI_CHARTS",
    "KpiColumn",
    "KpiPoint",
    "KpiTable",
    "kpi_latest",
    "kpi_series",
    "kpi_snapshot_compute",
    "kpi_snapshot_counts",
    "kpi_table",
    "kpi_tier_names",
]

#: bumped when the shape of `KpiSnapshot.data` changes
SNAPSHOT_VERSION = 1
#: the code of "no tier" / "no branch" in a snapshot
NONE_CODE = ""
#: grants made in this many days up to the business date make the demand report
DEMAND_WINDOW_DAYS = 90
#: the budget burn rate is the average net consumption over this many days (as budget_burn)
BURN_WINDOW_DAYS = 30
#: launched campaigns whose window ended at most this long ago are reported
CAMPAIGN_LOOKBACK_DAYS = 365
#: how many daily snapshots a trend shows by default
TREND_DAYS = 90

_PERCENT = Decimal("0.1")


def _percent(part: int, whole: int) -> Decimal | None:
    if not whole:
        return None
    return (Decimal(part) * 100 / Decimal(whole)).quantize(_PERCENT, rounding=ROUND_HALF_UP)


def _text(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=SHANGHAI)


# --- the computation ----------------------------------------------------------------------


def _tier_catalogue() -> tuple[list[dict], dict[int, str]]:
    """Every tier, those of the active scheme first in rank order, as snapshot entries; and
    tier pk → code. One query (tiers are a small table)."""
    tiers = sorted(
        Tier.objects.select_related("scheme"),
        key=lambda t: (t.scheme.status != SchemeStatus.ACTIVE, t.scheme.code, t.rank),
    )
    entries: dict[str, dict] = {}
    for tier in tiers:
        entries.setdefault(
            tier.code,
            {
                "code": tier.code,
                "name": tier.name,
                "name_en": tier.name_en,
                "rank": tier.rank,
                "active": tier.scheme.status == SchemeStatus.ACTIVE,
            },
        )
    return list(entries.values()), {tier.pk: tier.code for tier in tiers}


def _top_branches() -> tuple[list[dict], dict[int, str]]:
    """The top-level branches (the level right under the head office, or the head office
    itself) as snapshot entries, and branch pk → top-level branch code. One query."""
    branches = list(Branch.objects.order_by("path").values_list("pk", "code", "name", "path"))
    names = {code: name for _pk, code, name, _path in branches}
    top_of: dict[int, str] = {}
    tops: dict[str, dict] = {}
    for pk, _code, _name, path in branches:
        parts = path.strip("/").split("/")
        top = parts[1] if len(parts) > 1 else parts[0]
        top_of[pk] = top
        tops.setdefault(top, {"code": top, "name": names.get(top, top)})
    return list(tops.values()), top_of


def _population(tier_code: dict[int, str], top_of: dict[int, str]) -> dict:
    """Members by (top-level branch, tier, lifecycle stage): one GROUP BY over members."""
    rows = (
        Member.objects.order_by()
        .values("branch_id", "tier_id", "lifecycle_stage")
        .annotate(n=Count("id"))
    )
    cube: dict[tuple[str, str, str], int] = defaultdict(int)
    for row in rows:
        key = (
            top_of.get(row["branch_id"], NONE_CODE),
            tier_code.get(row["tier_id"], NONE_CODE),
            row["lifecycle_stage"],
        )
        cube[key] += row["n"]
    by_tier: dict[str, int] = defaultdict(int)
    lifecycle = {stage: 0 for stage in LifecycleStage.values}
    for (_branch, tier, stage), n in cube.items():
        by_tier[tier] += n
        lifecycle[stage] = lifecycle.get(stage, 0) + n
    return {
        "members": sum(cube.values()),
        "by_tier": dict(by_tier),
        "lifecycle": lifecycle,
        "cube": [[branch, tier, stage, n] for (branch, tier, stage), n in sorted(cube.items())],
    }


def _migration(business_date: date, tier_code: dict[int, str], ranks: dict[str, int]) -> dict:
    """The tier each member held at the end of last month (before this month's first
    `TierChange`) against the tier they hold on the business date (after this month's last
    change). Members without a change this month sit on the diagonal. Three GROUP BYs: the
    first change of each member this month joined to their last; the members without one
    (an anti-join); the changes by cause."""
    since = business_date.replace(day=1)
    month = Q(business_date__gte=since, business_date__lte=business_date)
    same_member = TierChange.objects.filter(month, member_id=OuterRef("member_id"))
    earlier = same_member.filter(
        Q(business_date__lt=OuterRef("business_date"))
        | Q(business_date=OuterRef("business_date"), id__lt=OuterRef("id"))
    )
    last_to = same_member.order_by("-business_date", "-id").values("to_tier_id")[:1]
    movers = (
        TierChange.objects.filter(month)
        .filter(~Exists(earlier))
        .annotate(last_to=Subquery(last_to))
        .order_by()
        .values("from_tier_id", "last_to")
        .annotate(n=Count("id"))
    )
    cells: dict[tuple[str, str], int] = defaultdict(int)
    for row in movers:
        key = (tier_code.get(row["from_tier_id"], NONE_CODE), tier_code.get(row["last_to"]))
        cells[key] += row["n"]
    stayers = (
        Member.objects.filter(~Exists(TierChange.objects.filter(month, member_id=OuterRef("pk"))))
        .order_by()
        .values("tier_id")
        .annotate(n=Count("id"))
    )
    for row in stayers:
        code = tier_code.get(row["tier_id"], NONE_CODE)
        cells[(code, code)] += row["n"]
    causes = dict(
        TierChange.objects.filter(month)
        .order_by()
        .values_list("cause")
        .annotate(n=Count("id"))
        .values_list("cause", "n")
    )
    summary = {"upgraded": 0, "downgraded": 0, "unchanged": 0, "first_graded": 0}
    for (old, new), n in cells.items():
        if old == new:
            summary["unchanged"] += n
        elif old == NONE_CODE:
            summary["first_graded"] += n
        elif ranks.get(new, 0) > ranks.get(old, 0):
            summary["upgraded"] += n
        else:
            summary["downgraded"] += n
    return {
        "since": since.isoformat(),
        "cells": [[old, new, n] for (old, new), n in sorted(cells.items()) if n],
        "causes": causes,
        **summary,
    }


def _campaigns(business_date: date) -> list[dict]:
    """Effectiveness of the launched campaigns (active, paused or ended within the last
    year), newest first: `campaigns_overview`, one query for all of them."""
    launched = Campaign.objects.filter(
        status__in=[CampaignStatus.ACTIVE, CampaignStatus.PAUSED, CampaignStatus.ENDED],
        starts_on__lte=business_date,
        ends_on__gte=business_date - timedelta(days=CAMPAIGN_LOOKBACK_DAYS),
    ).order_by("-starts_on", "code")
    rows = []
    for row in campaigns_overview(campaigns=launched):
        per_reactivation = None
        if row["reactivated"]:
            per_reactivation = (row["total_cost"] / row["reactivated"]).quantize(
                Decimal("0.01"), rounding=ROUND_HALF_UP
            )
        rows.append(
            {
                "code": row["code"],
                "name": row["name"],
                "status": row["status"],
                "participants": row["participants"],
                "completers": row["completers"],
                "completion_rate": _text(row["completion_rate"]),
                "total_cost": str(row["total_cost"]),
                "reactivated": row["reactivated"],
                "cost_per_reactivation": _text(per_reactivation),
            }
        )
    return rows


def _differentiation() -> dict:
    """`differentiation_report` of the active tier scheme (two queries)."""
    scheme = TierScheme.objects.filter(status=SchemeStatus.ACTIVE).first()
    if scheme is None:
        return {"scheme": None, "steps": []}
    return {
        "scheme": scheme.code,
        "steps": [
            {
                "lower": step.lower.code,
                "higher": step.higher.code,
                "new_benefits": step.new_benefits,
                "larger_quantities": step.larger_quantities,
                "added_cost_per_member_year": str(step.added_cost_per_member_year),
                "flagged": step.flagged,
            }
            for step in differentiation_report(scheme_id=scheme.pk)
        ],
    }


def _demand(business_date: date, tier_code_order: list[str]) -> dict:
    """Grant → redemption per benefit and per benefit × member tier, over the grants made in
    the last `DEMAND_WINDOW_DAYS` days (the rules of `benefits.selectors.demand_report`):
    one GROUP BY, rolled up per benefit here."""
    start = business_date - timedelta(days=DEMAND_WINDOW_DAYS - 1)
    rows = (
        BenefitGrant.objects.filter(
            granted_at__date__gte=start, granted_at__date__lte=business_date
        )
        .order_by()
        .values("benefit__code", "benefit__name", "benefit__name_en", "member__tier__code")
        .annotate(granted=Count("id"), redeemed=Count("id", filter=Q(status=GrantStatus.REDEEMED)))
    )
    position = {code: index for index, code in enumerate(tier_code_order)}
    benefits: dict[str, dict] = {}
    by_tier = []
    for row in sorted(
        rows,
        key=lambda r: (r["benefit__code"], position.get(r["member__tier__code"] or "", 999)),
    ):
        code = row["benefit__code"]
        total = benefits.setdefault(
            code,
            {
                "code": code,
                "name": row["benefit__name"],
                "name_en": row["benefit__name_en"],
                "granted": 0,
                "redeemed": 0,
            },
        )
        total["granted"] += row["granted"]
        total["redeemed"] += row["redeemed"]
        cell = DemandRow(key=code, granted=row["granted"], redeemed=row["redeemed"])
        by_tier.append(
            {
                "benefit": code,
                "tier": row["member__tier__code"] or NONE_CODE,
                "granted": cell.granted,
                "redeemed": cell.redeemed,
                "rate": str(cell.rate),
                "flagged": cell.flagged,
            }
        )
    for total in benefits.values():
        row = DemandRow(key=total["code"], granted=total["granted"], redeemed=total["redeemed"])
        total["rate"], total["flagged"] = str(row.rate), row.flagged
    return {
        "start": start.isoformat(),
        "end": business_date.isoformat(),
        "threshold_percent": settings.BENEFIT_LOW_DEMAND_PERCENT,
        "benefits": list(benefits.values()),
        "by_tier": by_tier,
    }


def _budgets(business_date: date) -> list[dict]:
    """Every budget open on the business date: net consumption per day up to the end of that
    day (one GROUP BY over the ledger for all of them), what remains, and the day it runs
    out at the rate of the last 30 days — the rule of `benefits.selectors.budget_burn`."""
    budgets = list(
        Budget.objects.filter(period_start__lte=business_date, period_end__gte=business_date)
        .select_related("department")
        .order_by("code")
    )
    days: dict[int, list[tuple[date, int]]] = defaultdict(list)
    ledger = (
        BudgetEntry.objects.filter(
            budget__in=[budget.pk for budget in budgets],
            created_at__lt=_day_start(business_date + timedelta(days=1)),
        )
        .annotate(day=TruncDate("created_at"))
        .order_by()
        .values("budget_id", "day")
        .annotate(net=Sum("amount_fen"))
    )
    for row in ledger:
        days[row["budget_id"]].append((row["day"], row["net"]))
    since = business_date - timedelta(days=BURN_WINDOW_DAYS - 1)  # today included
    result = []
    for budget in budgets:
        series = sorted(days.get(budget.pk, []))
        consumed_fen = sum(net for _day, net in series)
        recent_fen = sum(net for day, net in series if day >= since)
        window = max(
            1,
            min(BURN_WINDOW_DAYS, (business_date - max(budget.period_start, since)).days + 1),
        )
        rate = (fen_to_decimal(recent_fen) / window).quantize(Decimal("0.01"))
        remaining = fen_to_decimal(budget.amount_fen - consumed_fen)
        exhaustion = None
        if rate > 0:
            exhaustion = business_date + timedelta(days=int(remaining / rate))
        result.append(
            {
                "code": budget.code,
                "name": budget.name,
                "department": budget.department.code,
                "period_start": budget.period_start.isoformat(),
                "period_end": budget.period_end.isoformat(),
                "amount": str(budget.amount),
                "consumed": str(fen_to_decimal(consumed_fen)),
                "remaining": str(remaining),
                "consumed_percent": _text(_percent(consumed_fen, budget.amount_fen)),
                "daily_rate": str(rate),
                "projected_exhaustion": exhaustion.isoformat() if exhaustion else None,
                "runs_out_early": exhaustion is not None and exhaustion < budget.period_end,
                "by_day": [[day.isoformat(), str(fen_to_decimal(net))] for day, net in series],
            }
        )
    return result


@transaction.atomic
def kpi_snapshot_compute(*, business_date: date) -> KpiSnapshot:
    """Compute the dashboard's figures for `business_date` and store them as that date's
    snapshot, replacing any earlier one (idempotent for the date: one snapshot per date).
    A fixed number of set-based queries, whatever the number of members."""
    tiers, tier_code = _tier_catalogue()
    branches, top_of = _top_branches()
    population = _population(tier_code, top_of)
    by_tier = population.pop("by_tier")
    shown = [tier for tier in tiers if tier["active"] or by_tier.get(tier["code"])]
    for tier in shown:
        tier["members"] = by_tier.get(tier["code"], 0)
    if by_tier.get(NONE_CODE):
        shown.append(
            {
                "code": NONE_CODE,
                "name": "",
                "name_en": "",
                "rank": -1,
                "active": False,
                "members": by_tier[NONE_CODE],
            }
        )
    ranks = {tier["code"]: tier["rank"] for tier in tiers}
    data = {
        "version": SNAPSHOT_VERSION,
        "business_date": business_date.isoformat(),
        **population,
        "tiers": shown,
        "branches": branches,
        "migration": _migration(business_date, tier_code, ranks),
        "campaigns": _campaigns(business_date),
        "differentiation": _differentiation(),
        "demand": _demand(business_date, [tier["code"] for tier in shown]),
        "budgets": _budgets(business_date),
    }
    return kpi_snapshot_save(business_date=business_date, data=data)


def kpi_snapshot_counts(snapshot: KpiSnapshot) -> dict[str, int]:
    """What the nightly step reports for its JobRun."""
    data = snapshot.data
    return {
        "members": data["members"],
        "dormant": data["lifecycle"].get("DORMANT", 0),
        "tier_moves": data["migration"]["upgraded"]
        + data["migration"]["downgraded"]
        + data["migration"]["first_graded"],
        "campaigns": len(data["campaigns"]),
        "benefits": len(data["demand"]["benefits"]),
        "budgets": len(data["budgets"]),
    }


# --- reading snapshots back -----------------------------------------------------------------


def kpi_latest() -> KpiSnapshot | None:
    """The most recent snapshot, or None before the first nightly run."""
    return KpiSnapshot.objects.order_by("-business_date").first()


@dataclass(frozen=True)
class KpiPoint:
    """One day of a trend: the population and members per lifecycle stage."""

    business_date: date
    members: int
    lifecycle: dict[str, int]

    @property
    def dormant(self) -> int:
        return self.lifecycle.get("DORMANT", 0)


def kpi_series(*, days: int = TREND_DAYS, until: date | None = None) -> list[KpiPoint]:
    """The last `days` daily snapshots (up to `until` when given), oldest first, reduced to
    what trends need. One query that reads only those keys of the JSON."""
    snapshots = KpiSnapshot.objects.order_by("-business_date")
    if until is not None:
        snapshots = snapshots.filter(business_date__lte=until)
    rows = snapshots.values_list("business_date", "data__members", "data__lifecycle")[:days]
    return [
        KpiPoint(business_date=day, members=members or 0, lifecycle=lifecycle or {})
        for day, members, lifecycle in reversed(list(rows))
    ]


# --- chart tables (the page's tables and the CSV exports) -------------------------------------


@dataclass(frozen=True)
class KpiColumn:
    """A column of a chart's table: `key` heads the CSV, `label` the page; `kind` says how a
    value is shown (text, count, money, percent, date, flag)."""

    key: str
    label: str | Promise
    kind: str = "text"


@dataclass(frozen=True)
class KpiTable:
    chart: str
    columns: list[KpiColumn]
    rows: list[list]


def _english() -> bool:
    return (get_language() or "").startswith("en")


def _tier_name(tier: dict) -> str:
    if tier["code"] == NONE_CODE:
        return str(_("Not graded"))
    return tier["name_en"] if _english() and tier.get("name_en") else tier["name"]


def kpi_tier_names(data: dict) -> dict[str, str]:
    """Tier code → name in the current language, in the order of the snapshot's tiers."""
    return {tier["code"]: _tier_name(tier) for tier in data["tiers"]}


def _stage_label(stage: str) -> str:
    try:
        return str(LifecycleStage(stage).label)
    except ValueError:
        return stage


def _decimal(value: str | None) -> Decimal | None:
    return None if value is None else Decimal(value)


def _day(value: str | None) -> date | None:
    return None if value is None else date.fromisoformat(value)


def _tier_distribution(data, series):
    total = data["members"]
    return [
        KpiColumn("tier_code", _("Tier code")),
        KpiColumn("tier_name", _("Tier")),
        KpiColumn("members", _("Members"), "count"),
        KpiColumn("percent", _("Share"), "percent"),
    ], [
        [tier["code"], _tier_name(tier), tier["members"], _percent(tier["members"], total)]
        for tier in data["tiers"]
    ]


def _wide_by(data, dimension: int, keys: list[tuple[str, str]], code_key: str, name_key: str):
    """A table of `keys` (code, name) rows by tier columns, from the cube; `dimension` is the
    cube position of the row key (0 branch, 2 stage)."""
    codes = [tier["code"] for tier in data["tiers"]]
    names = kpi_tier_names(data)
    counts: dict[tuple[str, str], int] = defaultdict(int)
    for cell in data["cube"]:
        counts[(cell[dimension], cell[1])] += cell[3]
    columns = [KpiColumn(code_key, _("Code")), KpiColumn(name_key, _("Name"))]
    columns += [KpiColumn(code or "not_graded", names[code], "count") for code in codes]
    columns.append(KpiColumn("total", _("Total"), "count"))
    rows = []
    for key, name in keys:
        values = [counts.get((key, code), 0) for code in codes]
        rows.append([key, name, *values, sum(values)])
    return columns, rows


def _tiers_by_branch(data, series):
    branches = [(b["code"], b["name"]) for b in data["branches"]]
    if any(cell[0] == NONE_CODE for cell in data["cube"]):
        branches.append((NONE_CODE, str(_("No branch"))))
    seen = {cell[0] for cell in data["cube"]}
    return _wide_by(data, 0, [b for b in branches if b[0] in seen], "branch_code", "branch_name")


def _lifecycle_by_tier(data, series):
    stages = [(stage, _stage_label(stage)) for stage in LifecycleStage.values]
    return _wide_by(data, 2, stages, "stage", "stage_name")


def _tier_migration(data, series):
    return [
        KpiColumn("from_tier", _("Tier at the end of last month")),
        KpiColumn("to_tier", _("Tier on the business date")),
        KpiColumn("members", _("Members"), "count"),
    ], [[old, new, n] for old, new, n in data["migration"]["cells"]]


def _lifecycle(data, series):
    total = data["members"]
    counts = data["lifecycle"]  # a JSON object: its key order is not kept (jsonb)
    return [
        KpiColumn("stage", _("Stage code")),
        KpiColumn("stage_name", _("Lifecycle stage")),
        KpiColumn("members", _("Members"), "count"),
        KpiColumn("percent", _("Share"), "percent"),
    ], [
        [stage, _stage_label(stage), counts.get(stage, 0), _percent(counts.get(stage, 0), total)]
        for stage in LifecycleStage.values
    ]


def _dormant_trend(data, series):
    return [
        KpiColumn("business_date", _("Business date"), "date"),
        KpiColumn("members", _("Members"), "count"),
        KpiColumn("dormant", _("Dormant"), "count"),
        KpiColumn("at_risk", _("At risk"), "count"),
        KpiColumn("churned", _("Churned"), "count"),
        KpiColumn("reactivated", _("Reactivated"), "count"),
    ], [
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


def _campaign_table(data, series):
    return [
        KpiColumn("campaign_code", _("Campaign code")),
        KpiColumn("campaign_name", _("Campaign")),
        KpiColumn("status", _("Status")),
        KpiColumn("participants", _("Participants"), "count"),
        KpiColumn("completers", _("Completers"), "count"),
        KpiColumn("completion_rate", _("Completion rate"), "percent"),
        KpiColumn("total_cost", _("Cost"), "money"),
        KpiColumn("reactivated", _("Dormant members reactivated"), "count"),
        KpiColumn("cost_per_reactivation", _("Cost per reactivation"), "money"),
    ], [
        [
            row["code"],
            row["name"],
            row["status"],
            row["participants"],
            row["completers"],
            _decimal(row["completion_rate"]),
            _decimal(row["total_cost"]),
            row["reactivated"],
            _decimal(row["cost_per_reactivation"]),
        ]
        for row in data["campaigns"]
    ]


def _differentiation_table(data, series):
    return [
        KpiColumn("from_tier", _("From tier")),
        KpiColumn("to_tier", _("To tier")),
        KpiColumn("new_benefits", _("New benefits")),
        KpiColumn("larger_quantities", _("Only more of")),
        KpiColumn("added_cost_per_member_year", _("Added cost per member a year"), "money"),
        KpiColumn("flagged", _("Nothing new"), "flag"),
    ], [
        [
            step["lower"],
            step["higher"],
            " ".join(step["new_benefits"]),
            " ".join(step["larger_quantities"]),
            _decimal(step["added_cost_per_member_year"]),
            step["flagged"],
        ]
        for step in data["differentiation"]["steps"]
    ]


def _demand_table(data, series):
    english = _english()
    return [
        KpiColumn("benefit_code", _("Benefit code")),
        KpiColumn("benefit_name", _("Benefit")),
        KpiColumn("granted", _("Granted"), "count"),
        KpiColumn("redeemed", _("Redeemed"), "count"),
        KpiColumn("redemption_rate", _("Redemption rate"), "percent"),
        KpiColumn("flagged", _("Low demand"), "flag"),
    ], [
        [
            row["code"],
            row["name_en"] if english and row["name_en"] else row["name"],
            row["granted"],
            row["redeemed"],
            _decimal(row["rate"]),
            row["flagged"],
        ]
        for row in data["demand"]["benefits"]
    ]


def _demand_by_tier(data, series):
    return [
        KpiColumn("benefit_code", _("Benefit code")),
        KpiColumn("tier_code", _("Tier code")),
        KpiColumn("granted", _("Granted"), "count"),
        KpiColumn("redeemed", _("Redeemed"), "count"),
        KpiColumn("redemption_rate", _("Redemption rate"), "percent"),
        KpiColumn("flagged", _("Low demand"), "flag"),
    ], [
        [
            row["benefit"],
            row["tier"],
            row["granted"],
            row["redeemed"],
            _decimal(row["rate"]),
            row["flagged"],
        ]
        for row in data["demand"]["by_tier"]
    ]


def _budget_table(data, series):
    return [
        KpiColumn("budget_code", _("Budget code")),
        KpiColumn("budget_name", _("Budget")),
        KpiColumn("department", _("Department")),
        KpiColumn("period_start", _("Period start"), "date"),
        KpiColumn("period_end", _("Period end"), "date"),
        KpiColumn("amount", _("Amount"), "money"),
        KpiColumn("consumed", _("Consumed"), "money"),
        KpiColumn("remaining", _("Remaining"), "money"),
        KpiColumn("consumed_percent", _("Consumed %"), "percent"),
        KpiColumn("daily_rate", _("Daily burn (last 30 days)"), "money"),
        KpiColumn("projected_exhaustion", _("Projected exhaustion"), "date"),
        KpiColumn("runs_out_before_period_end", _("Runs out before the period ends"), "flag"),
    ], [
        [
            row["code"],
            row["name"],
            row["department"],
            _day(row["period_start"]),
            _day(row["period_end"]),
            _decimal(row["amount"]),
            _decimal(row["consumed"]),
            _decimal(row["remaining"]),
            _decimal(row["consumed_percent"]),
            _decimal(row["daily_rate"]),
            _day(row["projected_exhaustion"]),
            row["runs_out_early"],
        ]
        for row in data["budgets"]
    ]


def _budget_burn(data, series):
    rows = []
    for budget in data["budgets"]:
        amount, consumed = Decimal(budget["amount"]), Decimal("0.00")
        for day, net in budget["by_day"]:
            consumed += Decimal(net)
            rows.append([budget["code"], _day(day), Decimal(net), consumed, amount - consumed])
    return [
        KpiColumn("budget_code", _("Budget code")),
        KpiColumn("date", _("Date"), "date"),
        KpiColumn("consumed_on_day", _("Net consumed that day"), "money"),
        KpiColumn("consumed_to_date", _("Consumed to date"), "money"),
        KpiColumn("remaining", _("Remaining"), "money"),
    ], rows


#: chart → the builder of its table (columns, rows) from a snapshot's data and the trend
_TABLES = {
    "tier-distribution": _tier_distribution,
    "tiers-by-branch": _tiers_by_branch,
    "tier-migration": _tier_migration,
    "lifecycle": _lifecycle,
    "lifecycle-by-tier": _lifecycle_by_tier,
    "dormant-trend": _dormant_trend,
    "campaigns": _campaign_table,
    "differentiation": _differentiation_table,
    "demand": _demand_table,
    "demand-by-tier": _demand_by_tier,
    "budgets": _budget_table,
    "budget-burn": _budget_burn,
}
#: the charts of the dashboard, each with a CSV export
KPI_CHARTS: tuple[str, ...] = tuple(_TABLES)
#: charts that read the trend of snapshots rather than one snapshot
TREND_CHARTS = frozenset({"dormant-trend"})


def kpi_table(*, chart: str, snapshot: KpiSnapshot, series: list[KpiPoint] | None = None):
    """The table of one chart of the dashboard for `snapshot` (and the trend `series` for
    trend charts): columns and typed rows (int, Decimal, date, bool, str, None). Raises
    KeyError for an unknown chart."""
    columns, rows = _TABLES[chart](snapshot.data, series or [])
    return KpiTable(chart=chart, columns=columns, rows=rows)
