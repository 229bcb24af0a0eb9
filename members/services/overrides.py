"""Manual tier overrides: an account manager asks, a branch manager of the customer's branch
decides through the approval engine (`members.approvals`)."""

from __future__ import annotations

from datetime import date

from dateutil.relativedelta import relativedelta
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from portal.approvals import approval_pending_for, approval_request_create, approval_withdraw
from portal.clock import today_in_shanghai
from portal.errors import NotAllowed, StateConflict
from portal.permissions import user_can
from portal.services import audit_record

from ..choices import MemberApproval, OverrideStatus, TierChangeCause
from ..models import Member, TierChange, TierOverride
from ..selectors import member_scope
from ..tiers import TierPlan
from .tiers import TierRuleError


def tier_override_latest_expiry(today: date) -> date:
    """The latest expiry a manual tier may have when asked for `today`
    (`TIER_OVERRIDE_MAX_MONTHS` months on)."""
    return today + relativedelta(months=settings.TIER_OVERRIDE_MAX_MONTHS)


def tier_override_problems(
    *, member, tier, expires_on, today: date, request: TierOverride | None = None
) -> dict[str, str]:
    """Why a manual tier cannot be asked for, by field, in the user's language: it must be
    a tier of the active scheme other than the one the engine computes for the customer,
    end after today and within `TIER_OVERRIDE_MAX_MONTHS`, and the customer must have no
    other request waiting (`request`: the one being decided, not another)."""
    problems = {}
    if tier.scheme_id != TierPlan.active(today).scheme.pk:
        problems["tier"] = _("The tier must belong to the active tier scheme.")
    computed = member.computed_tier_id or member.tier_id
    if tier.pk == computed:
        problems["tier"] = _(
            "%(tier)s is the tier the customer has by the rules; a manual tier must differ."
        ) % {"tier": tier.name}
    latest = tier_override_latest_expiry(today)
    if expires_on <= today:
        problems["expires_on"] = _("The expiry date must be after today.")
    elif expires_on > latest:
        problems["expires_on"] = _(
            "A manual tier lasts at most %(months)d months: the latest expiry is %(latest)s."
        ) % {"months": settings.TIER_OVERRIDE_MAX_MONTHS, "latest": latest.isoformat()}
    waiting = TierOverride.objects.filter(member=member, status=OverrideStatus.PENDING)
    if request is not None:
        waiting = waiting.exclude(pk=request.pk)
    if waiting.exists():
        problems["tier"] = _(
            "A manual tier request for this customer is already waiting for approval; "
            "withdraw it or have it decided first."
        )
    return problems


def tier_override_request(*, member, tier, reason: str, expires_on, actor):
    """An account manager asks for a manual tier (with reason and expiry); nothing changes
    until a branch manager approves it (`tier_override_problems` says what may be asked)."""
    if not user_can(actor, "members.request_tier_override") or not (
        member_scope(user=actor).filter(pk=member.pk).exists()
    ):
        raise NotAllowed(_("Only the customer's account manager can ask for a manual tier."))
    if not reason.strip():
        raise TierRuleError(_("A reason is required for a manual tier."), field="reason")
    with transaction.atomic():
        member = (
            Member.objects.select_for_update(of=("self",)).select_related("tier").get(pk=member.pk)
        )
        problems = tier_override_problems(
            member=member, tier=tier, expires_on=expires_on, today=today_in_shanghai()
        )
        if problems:
            field, problem = next(iter(problems.items()))
            raise TierRuleError(problem, field=field)
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
            summary=_("%(member)s: %(tier)s until %(date)s")
            % {"member": member.member_no, "tier": tier.name, "date": expires_on.isoformat()},
            current={"tier": member.tier.name if member.tier_id else None},
            proposal={"tier": tier.name, "expires_on": expires_on.isoformat()},
            reason=reason,
            branch=member.branch,
            actor=actor,
        )
    return override


def tier_override_withdraw(*, override: TierOverride, actor, reason: str = "") -> TierOverride:
    """The requester takes back a manual tier request still waiting (`approval_withdraw`)."""
    approval_withdraw(
        approval=approval_pending_for(kind=MemberApproval.TIER_OVERRIDE, obj=override),
        actor=actor,
        reason=reason,
    )
    return TierOverride.objects.get(pk=override.pk)


@transaction.atomic
def tier_override_withdrawn(*, override: TierOverride, actor, reason: str = "") -> TierOverride:
    """Record a withdrawn request (called by the approval engine)."""
    override = _tier_override_pending(override)
    override.status = OverrideStatus.WITHDRAWN
    override.decided_by, override.decided_at = actor, timezone.now()
    override.decision_comment = reason[:255]
    override.save()
    audit_record(actor=actor, action="tier_override.withdraw", obj=override, reason=reason)
    return override


def tier_override_replaces(override: TierOverride) -> TierOverride | None:
    """The customer's manual tier in force that approving `override` ends (None: none)."""
    return (
        TierOverride.objects.filter(member_id=override.member_id, status=OverrideStatus.ACTIVE)
        .exclude(pk=override.pk)
        .select_related("tier")
        .first()
    )


def _tier_override_pending(override: TierOverride) -> TierOverride:
    override = TierOverride.objects.select_for_update().get(pk=override.pk)
    if override.status != OverrideStatus.PENDING:
        raise StateConflict(
            _("This request is already %(status)s.") % {"status": override.get_status_display()}
        )
    return override


@transaction.atomic
def tier_override_apply(*, override: TierOverride, actor, comment: str = "") -> TierOverride:
    """Apply an approved manual tier (called by the approval engine, which has checked the
    decider): it replaces the customer's active override (`tier_override_replaces`, named on
    the approval page and in the audit entry) and takes effect at once, with a TierChange.
    Still a manual tier only if it differs from what the rules give now."""
    override = _tier_override_pending(override)
    today = today_in_shanghai()
    replaced = tier_override_replaces(override)
    problems = tier_override_problems(
        member=Member.objects.get(pk=override.member_id),
        tier=override.tier,
        expires_on=override.expires_on,
        today=today,
        request=override,
    )
    if problems:
        raise StateConflict(" ".join(problems.values()), code="override_invalid")
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
    audit_record(
        actor=actor,
        action="tier_override.approve",
        obj=override,
        changes={"replaces": replaced.pk} if replaced else {},
        reason=comment,
    )
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
