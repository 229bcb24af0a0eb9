"""Manual tier overrides: an account manager asks, a branch manager of the customer's branch
decides through the approval engine (`members.approvals`)."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from portal.approvals import approval_request_create
from portal.clock import today_in_shanghai
from portal.errors import NotAllowed, StateConflict
from portal.permissions import user_can
from portal.services import audit_record

from ..choices import MemberApproval, OverrideStatus, TierChangeCause
from ..models import Member, TierChange, TierOverride
from ..selectors import member_scope
from ..tiers import TierPlan
from .tiers import TierRuleError


def tier_override_request(*, member, tier, reason: str, expires_on, actor):
    """An account manager asks for a manual tier (with reason and expiry); nothing changes
    until a branch manager approves it."""
    if not user_can(actor, "members.request_tier_override") or not (
        member_scope(user=actor).filter(pk=member.pk).exists()
    ):
        raise NotAllowed("Only the customer's account manager can ask for a manual tier.")
    if not reason.strip():
        raise TierRuleError("A reason is required for a manual tier.")
    if expires_on <= today_in_shanghai():
        raise TierRuleError("The expiry date must be in the future.")
    if tier.scheme_id != TierPlan.active(today_in_shanghai()).scheme.pk:
        raise TierRuleError("The tier must belong to the active tier scheme.")
    with transaction.atomic():
        override = TierOverride.objects.create(
            member=member, tier=tier, reason=reason, expires_on=expires_on, requested_by=actor
        )
        audit_record(
            actor=actor,
            action="tier_override.request",
            obj=override,
            changes={"tier": tier.code, "expires_on": expires_on.isoformat()},
            reason=reason,
        )
        approval_request_create(
            kind=MemberApproval.TIER_OVERRIDE,
            obj=override,
            summary=f"{member.member_no}: {tier.code} until {expires_on.isoformat()}",
            current={"tier": member.tier.code if member.tier_id else None},
            proposal={"tier": tier.code, "expires_on": expires_on.isoformat()},
            reason=reason,
            branch=member.branch,
            actor=actor,
        )
    return override


def _tier_override_pending(override: TierOverride) -> TierOverride:
    override = TierOverride.objects.select_for_update().get(pk=override.pk)
    if override.status != OverrideStatus.PENDING:
        raise StateConflict(f"This request is already {override.get_status_display()}.")
    return override


@transaction.atomic
def tier_override_apply(*, override: TierOverride, actor, comment: str = "") -> TierOverride:
    """Apply an approved manual tier (called by the approval engine, which has checked the
    decider): it replaces the customer's active override and takes effect at once, with a
    TierChange."""
    override = _tier_override_pending(override)
    today = today_in_shanghai()
    override.status = OverrideStatus.ACTIVE
    override.decided_by, override.decided_at = actor, timezone.now()
    override.decision_comment = comment
    TierOverride.objects.filter(member=override.member, status=OverrideStatus.ACTIVE).update(
        status=OverrideStatus.EXPIRED
    )
    override.save()
    member = Member.objects.select_for_update().get(pk=override.member_id)
    if member.tier_id != override.tier_id:
        TierChange.objects.create(
            member=member,
            from_tier_id=member.tier_id,
            to_tier=override.tier,
            cause=TierChangeCause.OVERRIDE,
            business_date=today,
            basis=member.tier_basis,
            months_below=member.tier_months_below,
        )
        member.tier = override.tier
        member.tier_since = today
        member.save(update_fields=["tier", "tier_since", "updated_at"])
    audit_record(actor=actor, action="tier_override.approve", obj=override, reason=comment)
    return override


@transaction.atomic
def tier_override_refuse(*, override: TierOverride, actor, comment: str) -> TierOverride:
    """Record a rejected manual tier (called by the approval engine)."""
    override = _tier_override_pending(override)
    override.status = OverrideStatus.REJECTED
    override.decided_by, override.decided_at = actor, timezone.now()
    override.decision_comment = comment
    override.save()
    audit_record(actor=actor, action="tier_override.reject", obj=override, reason=comment)
    return override
