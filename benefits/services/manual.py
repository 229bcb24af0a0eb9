"""What an account manager does by hand: grant a benefit to a customer in their scope (above
the limit only with a budget approver's approval, `benefits.approvals`) and record whether a
benefit suits a customer."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from members.selectors import member_scope
from portal.approvals import approval_request_create
from portal.clock import today_in_shanghai
from portal.errors import InvalidInput, NotAllowed, StateConflict
from portal.money import yuan_text
from portal.permissions import user_can
from portal.services import audit_record

from ..choices import BenefitApproval, GrantSource, RequestStatus
from ..models import Benefit, BenefitFeedback, ManualGrantRequest
from ..rules import budget_ancestors
from .budgets import budget_for_date
from .grants import grant_create

__all__ = ["benefit_feedback_record", "manual_grant", "manual_grant_apply", "manual_grant_refuse"]


def manual_grant(*, member, benefit: Benefit, reason: str, actor):
    """An account manager grants a benefit by hand to a customer in their scope. Up to
    BENEFIT_MANUAL_GRANT_LIMIT_FEN it is granted at once; above it a budget approver must
    approve (returns the pending request)."""
    if not user_can(actor, "benefits.grant_manually"):
        raise NotAllowed(_("Your role cannot grant benefits by hand."))
    if not member_scope(user=actor).filter(pk=member.pk).exists():
        raise NotAllowed(
            _(
                "This customer is not in your scope: only their account manager or a branch "
                "manager of their branch can grant them a benefit."
            )
        )
    if not reason.strip():
        raise InvalidInput("A reason is required for a manual grant.", field="reason")
    if benefit.unit_cost_fen > settings.BENEFIT_MANUAL_GRANT_LIMIT_FEN:
        with transaction.atomic():
            request = ManualGrantRequest.objects.create(
                member=member,
                benefit=benefit,
                budget=benefit.budget,
                reason=reason,
                requested_by=actor,
            )
            audit_record(actor=actor, action="manual_grant.request", obj=request, reason=reason)
            approval_request_create(
                kind=BenefitApproval.MANUAL_GRANT,
                obj=request,
                summary=_("%(benefit)s for %(member)s: %(cost)s")
                % {
                    "benefit": benefit.name,
                    "member": member.member_no,
                    "cost": yuan_text(benefit.unit_cost),
                },
                proposal={
                    "member": member.member_no,
                    "benefit": benefit.name,
                    "cost": yuan_text(benefit.unit_cost),
                    "budget": benefit.budget.name,
                },
                reason=reason,
                branch=member.branch,
                actor=actor,
            )
        return request
    return grant_create(
        member=member,
        benefit=benefit,
        budget=benefit.budget,
        source=GrantSource.MANUAL,
        idempotency_key=f"MAN:{member.pk}:{benefit.pk}:{timezone.now().timestamp()}",
        expires_on=today_in_shanghai() + timedelta(days=benefit.validity_days or 90),
        actor=actor,
    )


def _pending_request(request: ManualGrantRequest) -> ManualGrantRequest:
    request = ManualGrantRequest.objects.select_for_update().get(pk=request.pk)
    if request.status != RequestStatus.PENDING:
        raise StateConflict(_("This request has already been decided."))
    return request


@transaction.atomic
def manual_grant_apply(*, request: ManualGrantRequest, actor, comment: str = ""):
    """Make the approved manual grant, charged to its budget (called by the approval engine,
    which has checked the decider); an exhausted budget refuses it and nothing changes."""
    request = _pending_request(request)
    request.grant = grant_create(
        member=request.member,
        benefit=request.benefit,
        budget=request.budget,
        source=GrantSource.MANUAL,
        idempotency_key=f"MANREQ:{request.pk}",
        expires_on=today_in_shanghai() + timedelta(days=request.benefit.validity_days or 90),
        actor=actor,
    )
    return _decided(request, status=RequestStatus.APPROVED, actor=actor, comment=comment)


def manual_grant_preview(request: ManualGrantRequest) -> list[tuple[object, int, int]]:
    """What approving the grant would charge, as `manual_grant_apply` charges it: the budget
    of the request's line open today and every budget above it, each with what it has left
    now and after the grant's cost (fen; negative: approving is refused, nothing granted)."""
    cost = request.benefit.unit_cost_fen
    charged = budget_for_date(request.budget, today_in_shanghai())
    return [
        (
            budget,
            budget.amount_fen - budget.consumed_fen,
            budget.amount_fen - budget.consumed_fen - cost,
        )
        for budget in budget_ancestors(charged)
    ]


@transaction.atomic
def manual_grant_refuse(*, request: ManualGrantRequest, actor, comment: str):
    """Record a rejected manual grant (called by the approval engine)."""
    request = _pending_request(request)
    return _decided(request, status=RequestStatus.REJECTED, actor=actor, comment=comment)


def _decided(request: ManualGrantRequest, *, status: str, actor, comment: str):
    request.status = status
    request.decided_by, request.decided_at = actor, timezone.now()
    request.save()
    action = "manual_grant.approve" if status == RequestStatus.APPROVED else "manual_grant.reject"
    audit_record(actor=actor, action=action, obj=request, reason=comment)
    return request


def benefit_feedback_record(*, member, benefit: Benefit, useful: bool, reason: str, actor):
    """An account manager records whether a benefit suits their customer (one in their
    scope)."""
    if not user_can(actor, "benefits.leave_feedback"):
        raise NotAllowed(_("Your role cannot leave feedback on benefits."))
    if not member_scope(user=actor).filter(pk=member.pk).exists():
        raise NotAllowed(
            _(
                "This customer is not in your scope: only their account manager or a branch "
                "manager of their branch can leave feedback for them."
            )
        )
    return BenefitFeedback.objects.create(
        member=member, benefit=benefit, useful=useful, reason=reason, author=actor
    )
