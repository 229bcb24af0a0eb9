"""The account manager's work lists: each a small class with its condition and its order,
chosen from `WORK_LISTS` by name (the workbench, the customer list's filter and its form
all read this one map)."""

from __future__ import annotations

from datetime import date

from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

from portal.clock import day_start

from .choices import LifecycleStage
from .models import Tier

__all__ = ["UPGRADE_NEAR_SHARE", "WORK_LISTS", "WorkList", "active_tiers"]

#: "about to upgrade": the basis is within this share of the next tier's threshold
UPGRADE_NEAR_SHARE = 0.9


def active_tiers() -> list[Tier]:
    return list(
        Tier.objects.filter(scheme__status="ACTIVE").select_related("scheme").order_by("rank")
    )


class WorkList:
    """A list of customers an account manager acts on: a plain WHERE over the scoped
    members (no subquery) and the order they are acted on in."""

    name: str
    #: the filter's label on the customer list
    label: str
    #: the heading on the workbench
    title: str
    ordering: tuple = ("member_no",)

    def condition(self, *, today: date) -> Q:
        raise NotImplementedError


class NearUpgrade(WorkList):
    """Members of each tier whose basis is ≥ 90 % of the next tier's threshold but below it
    (one OR of per-tier ranges: no per-member work)."""

    name = "upgrade"
    label = _("About to upgrade")
    title = _("About to upgrade (within 10 percent of the next tier)")
    ordering = ("-basis__value", "member_no")

    def condition(self, *, today: date) -> Q:
        tiers = active_tiers()
        condition = Q(pk__in=[])
        for tier, next_tier in zip(tiers, tiers[1:], strict=False):
            floor = int(next_tier.threshold * UPGRADE_NEAR_SHARE)
            condition |= Q(
                tier=tier,
                basis__value__gte=max(floor, tier.threshold),
                basis__value__lt=next_tier.threshold,
            )
        return condition


class BelowTier(WorkList):
    """Below their tier's threshold, protected for now; most months below first."""

    name = "downgrade"
    label = _("Below their tier")
    title = _("Below their tier: protected, may be downgraded")
    ordering = ("-tier_months_below", "member_no")

    def condition(self, *, today: date) -> Q:
        return Q(tier_months_below__gt=0)


class Dormant(WorkList):
    """Dormant customers, longest inactive first."""

    name = "dormant"
    label = _("Dormant")
    title = _("Dormant customers")
    ordering = (F("last_active_on").asc(nulls_first=True), "member_no")

    def condition(self, *, today: date) -> Q:
        return Q(lifecycle_stage=LifecycleStage.DORMANT)


class NewThisMonth(WorkList):
    """Registered this month, newest first."""

    name = "new"
    label = _("New this month")
    title = _("New this month")
    ordering = ("-registered_at", "member_no")

    def condition(self, *, today: date) -> Q:
        return Q(registered_at__gte=day_start(today.replace(day=1)))


WORK_LISTS: dict[str, WorkList] = {
    work_list.name: work_list
    for work_list in (NearUpgrade(), BelowTier(), Dormant(), NewThisMonth())
}
