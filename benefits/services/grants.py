"""Benefit grants: granted once per idempotency key and charged to a budget; redeemed, revoked
or expired exactly once (revocation and expiry give the cost back)."""

from __future__ import annotations

from datetime import date

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from portal.clock import today_in_shanghai
from portal.errors import StateConflict
from portal.services import audit_record

from ..choices import GrantStatus
from ..models import Benefit, BenefitGrant, Budget
from .budgets import budget_consume, budget_for_date, budget_release, budget_release_many

__all__ = ["GrantNotRedeemable", "grant_create", "grant_redeem", "grant_revoke", "grants_expire"]


class GrantNotRedeemable(StateConflict):
    """The grant is already redeemed, expired or revoked."""

    code = "not_redeemable"


def grant_create(
    *,
    member,
    benefit: Benefit,
    budget: Budget,
    source: str,
    idempotency_key: str,
    expires_on: date,
    actor=None,
    period_key: str = "",
    on: date | None = None,
) -> BenefitGrant:
    """Grant a benefit once per idempotency key, charging its unit cost, in the same
    transaction, to the budget of `budget`'s line open on business date `on` (default
    today). The same key again returns the first grant; an exhausted budget, or none open on
    the date, raises `BudgetExhausted` and writes nothing."""
    existing = BenefitGrant.objects.filter(idempotency_key=idempotency_key).first()
    if existing is not None:
        return existing
    on = on or today_in_shanghai()
    budget = budget_for_date(budget, on)
    try:
        with transaction.atomic():
            grant = BenefitGrant.objects.create(
                member=member,
                benefit=benefit,
                source=source,
                budget=budget,
                cost_fen=benefit.unit_cost_fen,
                idempotency_key=idempotency_key,
                period_key=period_key,
                expires_on=expires_on,
                granted_by=actor if getattr(actor, "pk", None) else None,
            )
            budget_consume(
                budget=budget,
                amount_fen=benefit.unit_cost_fen,
                source=f"{source} {benefit.code}",
                grant=grant,
                on=on,
            )
            audit_record(
                actor=actor,
                action="grant.create",
                obj=grant,
                changes={"benefit": benefit.code, "cost": f"{grant.cost:.2f}"},
            )
    except IntegrityError:
        # Another request created the same key first (unique constraint): that one counts.
        return BenefitGrant.objects.get(idempotency_key=idempotency_key)
    return grant


def grant_redeem(*, grant: BenefitGrant, actor=None) -> BenefitGrant:
    """GRANTED and not expired → REDEEMED, exactly once; otherwise `GrantNotRedeemable`."""
    today = today_in_shanghai()
    with transaction.atomic():
        updated = BenefitGrant.objects.filter(
            pk=grant.pk, status=GrantStatus.GRANTED, expires_on__gte=today
        ).update(status=GrantStatus.REDEEMED, redeemed_at=timezone.now())
        grant.refresh_from_db()
        if not updated:
            state = grant.get_status_display() if grant.status != GrantStatus.GRANTED else None
            raise GrantNotRedeemable(
                _("Grant #%(id)s is %(status)s.") % {"id": grant.pk, "status": state}
                if state
                else _("Grant #%(id)s has expired.") % {"id": grant.pk}
            )
        audit_record(actor=actor, action="grant.redeem", obj=grant)
    return grant


def grant_revoke(*, grant: BenefitGrant, actor, reason: str) -> BenefitGrant:
    """GRANTED → REVOKED; the cost goes back to the budget."""
    with transaction.atomic():
        updated = BenefitGrant.objects.filter(pk=grant.pk, status=GrantStatus.GRANTED).update(
            status=GrantStatus.REVOKED, closed_at=timezone.now()
        )
        grant.refresh_from_db()
        if not updated:
            raise GrantNotRedeemable(
                _("Grant #%(id)s is %(status)s.")
                % {"id": grant.pk, "status": grant.get_status_display()}
            )
        budget_release(budget=grant.budget, amount_fen=grant.cost_fen, source="revoke", grant=grant)
        audit_record(actor=actor, action="grant.revoke", obj=grant, reason=reason)
    return grant


def grants_expire(*, business_date: date) -> dict:
    """GRANTED grants whose expiry date has passed → EXPIRED; their cost is released, per
    budget, in one movement of its chain."""
    expired = released = 0
    budgets = (
        BenefitGrant.objects.filter(status=GrantStatus.GRANTED, expires_on__lt=business_date)
        .values_list("budget_id", flat=True)
        .distinct()
        .order_by("budget_id")
    )
    now = timezone.now()
    for budget_id in budgets:
        with transaction.atomic():
            ids = list(
                BenefitGrant.objects.select_for_update()
                .filter(
                    status=GrantStatus.GRANTED, expires_on__lt=business_date, budget_id=budget_id
                )
                .values_list("id", "cost_fen")
            )
            if not ids:
                continue
            BenefitGrant.objects.filter(pk__in=[i for i, _c in ids]).update(
                status=GrantStatus.EXPIRED, closed_at=now
            )
            released += budget_release_many(
                budget_id=budget_id,
                releases=ids,
                source="expiry",
                parent_source="expiry of child budget grants",
            )
            expired += len(ids)
    return {"expired": expired, "released_fen": released}
