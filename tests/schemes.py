"""Switching tier schemes in tests: propose, decide the new tiers' entitlements, approve,
and run the switch of the effective night."""

from __future__ import annotations

from datetime import date

from benefits.choices import EntitlementDecision
from benefits.services.scheme_entitlements import scheme_entitlement_decisions_set
from members.choices import MemberApproval
from members.models import TierScheme
from members.services import tier_scheme_request_activation, tier_scheme_switch_due
from tests.approvals import decide_pending


def scheme_decide_entitlements(
    scheme: TierScheme, *, actor, mapping: dict[str, str] | None = None
) -> None:
    """Every tier of `scheme` gets the entitlements of the old tier `mapping` names for its
    code (by code of the active scheme's tier), the others none."""
    from members.models import Tier

    old = {t.code: t.pk for t in Tier.objects.filter(scheme__status="ACTIVE")}
    decisions = {}
    for tier in scheme.tiers.all():
        source = (mapping or {}).get(tier.code)
        decisions[tier.pk] = (
            (EntitlementDecision.MAP, old[source]) if source else (EntitlementDecision.NONE, None)
        )
    scheme_entitlement_decisions_set(scheme=scheme, decisions=decisions, actor=actor)


def scheme_switch(
    scheme: TierScheme,
    *,
    maker,
    checker,
    effective_on: date | None = None,
    mapping: dict[str, str] | None = None,
) -> dict:
    """Maker-checker activation, then the switch at its effective night (the counts)."""
    scheme_decide_entitlements(scheme, actor=maker, mapping=mapping)
    tier_scheme_request_activation(scheme=scheme, actor=maker, effective_on=effective_on)
    scheme = decide_pending(
        scheme, MemberApproval.TIER_SCHEME_ACTIVATION, approve=True, actor=checker
    )
    return tier_scheme_switch_due(business_date=scheme.effective_on)


def members_with_daily_demand(balances: dict[str, int], *, branch, account_manager, dates) -> None:
    """Members (by member no) holding the same DEMAND balance (yuan) every day of the basis
    months of the business `dates`."""
    from members.models import MemberMonthlyStat
    from members.tiers import basis_month_for
    from portal.periods import days_in
    from tests.factories import MemberFactory

    for member_no, daily in balances.items():
        member = MemberFactory(member_no=member_no, branch=branch, account_manager=account_manager)
        for month in {basis_month_for(day) for day in dates}:
            days = days_in(month)
            MemberMonthlyStat.objects.create(
                member=member,
                month=month,
                demand_day_sum_fen=daily * 100 * days,
                financial_day_sum_fen=daily * 100 * days,
                asset_days=days,
            )


def default_schemes() -> None:
    """The default tier schemes of a fresh database (`members` migration 0004), again: a
    transactional test starts from empty tables."""
    import importlib

    from django.apps import apps

    importlib.import_module("members.migrations.0004_default_tier_schemes").create_defaults(
        apps, None
    )
