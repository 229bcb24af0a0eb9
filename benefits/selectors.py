"""Reads of the benefits app: the differentiation, demand and budget burn reports."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

from django.conf import settings
from django.db.models import Count, Q, QuerySet, Sum
from django.db.models.functions import TruncDate

from members.models import Tier
from members.selectors import member_scope
from portal.clock import day_start, today_in_shanghai
from portal.money import fen_to_decimal

from .choices import BudgetEntryKind, EntitlementPeriod, GrantStatus
from .models import BenefitFeedback, BenefitGrant, Budget, BudgetEntry, TierEntitlement

PER_YEAR = {EntitlementPeriod.MONTH: 12, EntitlementPeriod.QUARTER: 4, EntitlementPeriod.YEAR: 1}


@dataclass
class TierStep:
    """What a member gains by moving from `lower` to `higher`."""

    lower: Tier
    higher: Tier
    new_benefits: list[str] = field(default_factory=list)
    larger_quantities: list[str] = field(default_factory=list)
    added_cost_per_member_year: Decimal = Decimal("0.00")

    @property
    def flagged(self) -> bool:
        """A step that adds no new benefit, only more of the same (or nothing)."""
        return not self.new_benefits


def differentiation_report(*, scheme_id: int) -> list[TierStep]:
    """For each step up the tiers: benefits new at that tier, those only given in larger
    quantities, and the added yearly cost per member; flagged when nothing new is added."""
    tiers = list(Tier.objects.filter(scheme_id=scheme_id).order_by("rank"))
    per_tier: dict[int, dict[str, tuple[int, int]]] = {tier.pk: {} for tier in tiers}
    entitlements = TierEntitlement.objects.filter(
        tier__in=tiers, benefit__active=True, quantity__gt=0
    ).select_related("benefit")
    for entitlement in entitlements:
        yearly = entitlement.quantity * PER_YEAR[entitlement.period]
        per_tier[entitlement.tier_id][entitlement.benefit.code] = (
            yearly,
            yearly * entitlement.benefit.unit_cost_fen,
        )
    steps = []
    for lower, higher in zip(tiers, tiers[1:], strict=False):
        below, above = per_tier[lower.pk], per_tier[higher.pk]
        step = TierStep(lower=lower, higher=higher)
        step.new_benefits = sorted(set(above) - set(below))
        step.larger_quantities = sorted(
            code for code in set(above) & set(below) if above[code][0] > below[code][0]
        )
        added = sum(cost for _q, cost in above.values()) - sum(cost for _q, cost in below.values())
        step.added_cost_per_member_year = fen_to_decimal(added)
        steps.append(step)
    return steps


@dataclass
class DemandRow:
    key: str
    granted: int
    redeemed: int

    @property
    def rate(self) -> Decimal:
        if not self.granted:
            return Decimal("0.0")
        return (Decimal(self.redeemed) * 100 / Decimal(self.granted)).quantize(Decimal("0.1"))

    @property
    def flagged(self) -> bool:
        """Below the threshold, compared exactly (not on the rounded rate shown)."""
        threshold = settings.BENEFIT_LOW_DEMAND_PERCENT
        return self.granted > 0 and self.redeemed * 100 < threshold * self.granted


def demand_report(*, start: date, end: date, by: str = "benefit") -> list[DemandRow]:
    """Grant → redemption rate over grants made in [start, end], per benefit, or per benefit
    and tier (`by="tier"`) or lifecycle stage (`by="stage"`); low rates are flagged."""
    group = {
        "benefit": ["benefit__code"],
        "tier": ["benefit__code", "member__tier__code"],
        "stage": ["benefit__code", "member__lifecycle_stage"],
    }[by]
    rows = (
        BenefitGrant.objects.filter(granted_at__date__gte=start, granted_at__date__lte=end)
        .values(*group)
        .annotate(granted=Count("id"), redeemed=Count("id", filter=Q(status=GrantStatus.REDEEMED)))
        .order_by(*group)
    )
    return [
        DemandRow(
            key=" / ".join(str(row[g] or "—") for g in group),
            granted=row["granted"],
            redeemed=row["redeemed"],
        )
        for row in rows
    ]


@dataclass
class BudgetBurn:
    budget: Budget
    by_day: list[tuple[date, Decimal]]  # net consumption per day
    daily_rate: Decimal  # average over the last 30 days with entries
    projected_exhaustion: date | None


def budget_burn(*, budget: Budget, today: date) -> BudgetBurn:
    """Consumption per day and, at the recent rate, the day the budget runs out."""
    days = (
        BudgetEntry.objects.filter(budget=budget)
        .annotate(day=TruncDate("created_at"))
        .values("day")
        .annotate(net=Sum("amount_fen"))
        .order_by("day")
    )
    by_day = [(row["day"], fen_to_decimal(row["net"])) for row in days]
    since = today - timedelta(days=29)  # the last 30 days, today included
    # consumption that moved with a child budget to another parent (ADJUST) is no spending
    recent = fen_to_decimal(
        BudgetEntry.objects.filter(budget=budget, created_at__gte=day_start(since))
        .exclude(kind=BudgetEntryKind.ADJUST)
        .aggregate(total=Sum("amount_fen"))["total"]
        or 0
    )
    window = max(1, min(30, (today - max(budget.period_start, since)).days + 1))
    rate = (recent / window).quantize(Decimal("0.01"))
    projected = None
    if rate > 0:
        projected = today + timedelta(days=int(budget.remaining / rate))
    return BudgetBurn(budget=budget, by_day=by_day, daily_rate=rate, projected_exhaustion=projected)


# --- one customer's benefits (the customer page, the member centre, the workbench) ----------

#: a closed grant stays on the customer's page this many days
RECENT_GRANT_DAYS = 90
#: unredeemed grants expiring within this many days are on the account manager's workbench
EXPIRING_WITHIN_DAYS = 14


def member_grant_list(*, member) -> list[BenefitGrant]:
    """The member's benefits: redeemable ones, and those used or closed in the last 90 days."""
    since = today_in_shanghai() - timedelta(days=RECENT_GRANT_DAYS)
    return list(
        BenefitGrant.objects.filter(member=member, expires_on__gte=since)
        .select_related("benefit")
        .order_by("expires_on", "id")
    )


def member_grants(*, member) -> list[dict]:
    """The grants of the member centre payload (API.md)."""
    return [
        {
            "id": grant.pk,
            "benefit": grant.benefit.code,
            "status": grant.status,
            "expires_at": grant.expires_on,
        }
        for grant in member_grant_list(member=member)
    ]


def expiring_grants(*, user, today: date) -> QuerySet[BenefitGrant]:
    """Unredeemed benefit grants of the user's customers expiring within 14 days, soonest
    first."""
    return (
        BenefitGrant.objects.filter(
            member__in=member_scope(user=user),
            status=GrantStatus.GRANTED,
            expires_on__gte=today,
            expires_on__lte=today + timedelta(days=EXPIRING_WITHIN_DAYS),
        )
        .select_related("member", "benefit")
        .order_by("expires_on", "id")
    )


def member_benefit_feedback(*, member) -> QuerySet[BenefitFeedback]:
    """What account managers said about benefits for this customer, newest first."""
    return (
        BenefitFeedback.objects.filter(member=member)
        .select_related("benefit", "author")
        .order_by("-created_at", "-id")
    )
