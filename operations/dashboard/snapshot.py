"""The nightly KPI snapshot: the dashboard's figures for one business date, computed once by
the last step of the nightly chain (`kpi_snapshot`) so that the dashboard never scans the
member population (DESIGN.md, "Scale path": dashboards read daily snapshot tables).

The service `kpi_snapshot_compute` runs a fixed number of GROUP BY queries whatever the
number of members (no Python loop per member): one over members by (branch, tier, lifecycle
stage), two over the month's `TierChange` rows, one per report of campaigns and benefits,
and one over the budget ledger by (budget, day). Recomputing a date replaces that date's
snapshot (stored through `portal.services.kpi_snapshot_save`). Figures are what the tables
hold when the step runs (after that night's recomputes); money is kept as strings of
Decimal CNY with 2 places, never float.

The figures are bank-wide aggregates (counts and sums, no personal data). They are broken
down by top-level branch (分行, the branch right under the head office), which is as far as
a branch manager's view of the bank goes; nothing is scoped per user.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Exists, OuterRef, Q, Subquery, Sum
from django.db.models.functions import TruncDate

from benefits.choices import GrantStatus
from benefits.models import Benefit, BenefitGrant, Budget, BudgetEntry
from benefits.selectors import DemandRow, differentiation_report
from campaigns.choices import CampaignStatus
from campaigns.models import Campaign
from campaigns.reports import campaigns_overview
from campaigns.uplift import campaigns_uplift
from members.choices import LifecycleStage, SchemeStatus
from members.models import Member, Tier, TierChange, TierScheme
from portal.clock import SHANGHAI
from portal.models import Branch, KpiSnapshot
from portal.money import fen_to_decimal
from portal.services import kpi_snapshot_save

__all__ = ["NONE_CODE", "kpi_snapshot_compute", "kpi_snapshot_counts", "share_percent"]

#: bumped when the shape of `KpiSnapshot.data` changes (2: budgets carry their department's
#: name, and `benefit_names` the benefits' names, so that pages and CSVs show names; 3:
#: `uplift`, the campaigns measured against a holdout — older snapshots have none)
SNAPSHOT_VERSION = 3
#: the code of "no tier" / "no branch" in a snapshot
NONE_CODE = ""
#: grants made in this many days up to the business date make the demand report
DEMAND_WINDOW_DAYS = 90
#: the budget burn rate is the average net consumption over this many days (as budget_burn)
BURN_WINDOW_DAYS = 30
#: launched campaigns whose window ended at most this long ago are reported
CAMPAIGN_LOOKBACK_DAYS = 365

_PERCENT = Decimal("0.1")


def share_percent(part: int, whole: int) -> Decimal | None:
    """`part` as a percent of `whole`, to one place (None when `whole` is 0); the snapshot's
    budget shares and the tables' shares of members round the same way."""
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


def _migration(
    business_date: date,
    tier_code: dict[int, str],
    ranks: dict[str, int],
    active: set[str] = frozenset(),
) -> dict:
    """The tier each member held at the end of last month (before this month's first
    `TierChange`) against the tier they hold on the business date (after this month's last
    change). Members without a change this month sit on the diagonal; a move between a tier of
    a retired scheme and one of the `active` scheme is a scheme change, neither up nor down
    (the ladders differ). Three GROUP BYs: the
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
    summary = {
        "upgraded": 0,
        "downgraded": 0,
        "unchanged": 0,
        "first_graded": 0,
        "scheme_changed": 0,
    }
    for (old, new), n in cells.items():
        if old == new:
            summary["unchanged"] += n
        elif old == NONE_CODE:
            summary["first_graded"] += n
        elif active and (old in active) != (new in active):
            summary["scheme_changed"] += n
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


def _number(value: float | None, places: int = 4) -> str | None:
    return None if value is None else str(round(value, places))


def _uplift(business_date: date) -> list[dict]:
    """The campaigns measured against a holdout (newest first, up to a year after their
    follow-up): the reactivation of each group, the uplift with its interval and verdict
    (a code: the page words it in the reader's language), and the nights behind the chart.
    Two queries for all of them."""
    measured = Campaign.objects.filter(
        holdout_share__gt=0,
        audience_recorded_on__isnull=False,
        starts_on__lte=business_date,
        ends_on__gte=business_date - timedelta(days=CAMPAIGN_LOOKBACK_DAYS),
    ).order_by("-starts_on", "code")
    rows = []
    for uplift in campaigns_uplift(campaigns=measured, on=business_date):
        if uplift.measured_until is None:
            continue
        estimate = uplift.reactivation
        incremental = uplift.incremental
        rows.append(
            {
                "code": uplift.campaign.code,
                "name": uplift.campaign.name,
                "measured_until": uplift.measured_until.isoformat(),
                "complete": uplift.complete,
                "offered": uplift.treatment["members"],
                "held_out": uplift.holdout["members"],
                "rate_offered": _number(estimate.treatment),
                "rate_held_out": _number(estimate.holdout),
                "uplift": _number(estimate.difference),
                "low": _number(estimate.low),
                "high": _number(estimate.high),
                "verdict": estimate.verdict,
                "incremental": _number(incremental[0], 1) if incremental else None,
                "cost": str(uplift.cost),
                "cost_per_incremental": _text(uplift.cost_per_incremental),
                "series": [
                    [day.isoformat(), _number(treated), _number(held)]
                    for day, treated, held in uplift.series
                ],
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


def _benefit_names() -> dict[str, dict]:
    """Benefit code → its names (zh-Hans, English), for the reports that list benefits by
    code (the differentiation's steps). One query: the catalogue is a small table."""
    return {
        code: {"name": name, "name_en": name_en}
        for code, name, name_en in Benefit.objects.values_list("code", "name", "name_en")
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
        # spent: without consumption that moved with a child budget to another parent
        .annotate(net=Sum("amount_fen"), spent=Sum("amount_fen", filter=~Q(kind="ADJUST")))
    )
    for row in ledger:
        days[row["budget_id"]].append((row["day"], row["net"], row["spent"] or 0))
    since = business_date - timedelta(days=BURN_WINDOW_DAYS - 1)  # today included
    result = []
    for budget in budgets:
        series = sorted(days.get(budget.pk, []))
        consumed_fen = sum(net for _day, net, _spent in series)
        recent_fen = sum(spent for day, _net, spent in series if day >= since)
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
                "department_name": budget.department.name,
                "period_start": budget.period_start.isoformat(),
                "period_end": budget.period_end.isoformat(),
                "amount": str(budget.amount),
                "consumed": str(fen_to_decimal(consumed_fen)),
                "remaining": str(remaining),
                "consumed_percent": _text(share_percent(consumed_fen, budget.amount_fen)),
                "daily_rate": str(rate),
                "projected_exhaustion": exhaustion.isoformat() if exhaustion else None,
                "runs_out_early": exhaustion is not None and exhaustion < budget.period_end,
                "by_day": [
                    [day.isoformat(), str(fen_to_decimal(net))] for day, net, _spent in series
                ],
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
        "migration": _migration(
            business_date, tier_code, ranks, {tier["code"] for tier in tiers if tier["active"]}
        ),
        "campaigns": _campaigns(business_date),
        "uplift": _uplift(business_date),
        "differentiation": _differentiation(),
        "benefit_names": _benefit_names(),
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
