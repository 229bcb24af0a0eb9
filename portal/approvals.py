"""Maker-checker: one inbox of `ApprovalRequest`s for every change that needs a second person.

A request is created by the service that proposes the change (in its transaction), with the
values it would replace (`current`) and the proposed ones (`proposal`) so the checker sees a
diff. Each kind has a handler (a small class in `HANDLERS`) that says who may decide it and
what approval applies. Deciding goes through `approval_decide` (the inbox) or through the
domain's own decide service (the admin pages): both end in the same domain service, which
settles the request with `approval_settle`, so a change is applied exactly once and only on
approval, and the requester can never decide their own request.
"""

from __future__ import annotations

from django.db import models, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from .choices import ApprovalKind, ApprovalStatus, Role
from .models import ApprovalRequest
from .permissions import user_can
from .services import audit_record

__all__ = [
    "HANDLERS",
    "ApprovalError",
    "approval_decide",
    "approval_inbox",
    "approval_list",
    "approval_may_decide",
    "approval_request_create",
    "approval_settle",
    "approval_visible",
]


class ApprovalError(Exception):
    """The request cannot be decided as asked (the message says why, for the checker)."""


# --- handlers: who decides each kind and what approval applies ---------------------------------


class ApprovalHandler:
    """One kind of request. `decide` calls the domain service that applies (or refuses) the
    change; that service settles the request."""

    kind: ApprovalKind
    #: the permission-matrix action the checker needs
    approve_action: str

    def scope(self, user) -> Q | None:
        """The requests of this kind `user` may decide (None: none): their role must hold
        the approving action."""
        return Q(kind=self.kind) if user_can(user, self.approve_action) else None

    def may_decide(self, approval: ApprovalRequest, user) -> bool:
        condition = self.scope(user)
        return (
            condition is not None
            and ApprovalRequest.objects.filter(condition, pk=approval.pk).exists()
        )

    def target(self, approval: ApprovalRequest):
        app_label, model_name = approval.object_type.split(".")
        from django.apps import apps

        return apps.get_model(app_label, model_name).objects.get(pk=approval.object_id)

    def decide(self, approval: ApprovalRequest, *, approve: bool, actor, comment: str) -> None:
        raise NotImplementedError


class TierSchemeActivation(ApprovalHandler):
    kind = ApprovalKind.TIER_SCHEME_ACTIVATION
    approve_action = "members.approve_tier_scheme"

    def decide(self, approval, *, approve, actor, comment):
        from members.services import tier_scheme_decide_activation

        tier_scheme_decide_activation(
            scheme=self.target(approval), approve=approve, actor=actor, comment=comment
        )


class CampaignLaunch(ApprovalHandler):
    kind = ApprovalKind.CAMPAIGN_LAUNCH
    approve_action = "campaigns.approve_campaign"

    def decide(self, approval, *, approve, actor, comment):
        from campaigns.services import campaign_decide

        campaign_decide(
            campaign=self.target(approval), approve=approve, actor=actor, comment=comment
        )


class TierOverrideDecision(ApprovalHandler):
    kind = ApprovalKind.TIER_OVERRIDE
    approve_action = "members.approve_tier_override"

    def scope(self, user) -> Q | None:
        """A request about one customer is decided within the customer's branch (a branch
        manager's branch and everything below it)."""
        condition = super().scope(user)
        if condition is None or user.is_superuser:
            return condition
        if user.branch is None:
            return None
        return condition & (Q(branch__isnull=True) | Q(branch__path__startswith=user.branch.path))

    def decide(self, approval, *, approve, actor, comment):
        from members.services import tier_override_decide

        tier_override_decide(
            override=self.target(approval), approve=approve, actor=actor, comment=comment
        )


class ManualGrantDecision(ApprovalHandler):
    kind = ApprovalKind.MANUAL_GRANT
    approve_action = "benefits.approve_manual_grant"

    def decide(self, approval, *, approve, actor, comment):
        from benefits.services import manual_grant_decide

        manual_grant_decide(
            request=self.target(approval), approve=approve, actor=actor, comment=comment
        )


class BudgetCreation(ApprovalHandler):
    kind = ApprovalKind.BUDGET_CREATE
    approve_action = "benefits.approve_budget"

    def target(self, approval):
        return None

    def decide(self, approval, *, approve, actor, comment):
        from benefits.services import budget_create

        if approve:
            budget = budget_create(values=approval.proposal, actor=actor, approval=approval)
            approval.object_type = budget._meta.label_lower
            approval.object_id = str(budget.pk)


class BudgetIncrease(ApprovalHandler):
    kind = ApprovalKind.BUDGET_INCREASE
    approve_action = "benefits.approve_budget"

    def decide(self, approval, *, approve, actor, comment):
        from benefits.services import budget_amount_raise

        if approve:
            budget_amount_raise(
                budget=self.target(approval),
                from_amount=approval.current["amount"],
                to_amount=approval.proposal["amount"],
                actor=actor,
                approval=approval,
            )


HANDLERS: dict[str, ApprovalHandler] = {
    handler.kind: handler
    for handler in (
        TierSchemeActivation(),
        CampaignLaunch(),
        TierOverrideDecision(),
        ManualGrantDecision(),
        BudgetCreation(),
        BudgetIncrease(),
    )
}


# --- writes ----------------------------------------------------------------------------------


def _jsonable(values: dict) -> dict:
    """Decimals and dates as their text (exact); plain JSON values as they are."""
    return {
        str(key): value if isinstance(value, str | int | bool | list | None) else str(value)
        for key, value in values.items()
    }


def approval_request_create(
    *,
    kind: ApprovalKind,
    summary: str,
    actor,
    obj: models.Model | None = None,
    current: dict | None = None,
    proposal: dict | None = None,
    reason: str = "",
    branch=None,
) -> ApprovalRequest:
    """Record a proposed change for a second person to decide. Call it inside the transaction
    of the service that proposes the change; nothing is applied until approval."""
    approval = ApprovalRequest.objects.create(
        kind=kind,
        object_type=obj._meta.label_lower if obj is not None else "",
        object_id=str(obj.pk) if obj is not None else "",
        summary=summary[:255],
        current=_jsonable(current or {}),
        proposal=_jsonable(proposal or {}),
        reason=reason[:255],
        branch=branch,
        requested_by=actor,
    )
    audit_record(
        actor=actor,
        action="approval.request",
        obj=approval,
        changes={"kind": kind, "summary": approval.summary},
        reason=reason,
    )
    return approval


def approval_settle(
    *, kind: ApprovalKind, obj: models.Model, approved: bool, actor, comment: str = ""
) -> int:
    """Close the pending request for `obj` (called by the domain service that has just applied
    or refused the change, in its transaction). Returns how many requests it closed."""
    return ApprovalRequest.objects.filter(
        kind=kind,
        object_type=obj._meta.label_lower,
        object_id=str(obj.pk),
        status=ApprovalStatus.PENDING,
    ).update(
        status=ApprovalStatus.APPROVED if approved else ApprovalStatus.REJECTED,
        decided_by=actor,
        decided_at=timezone.now(),
        comment=comment[:255],
    )


def approval_decide(
    *, approval: ApprovalRequest, approve: bool, actor, comment: str = ""
) -> ApprovalRequest:
    """The checker's decision from the inbox: only a different user holding the approving
    role (and, for a customer's request, the customer's branch) decides; a rejection says
    why. Approval applies the change through the domain service in this transaction."""
    with transaction.atomic():
        approval = ApprovalRequest.objects.select_for_update().get(pk=approval.pk)
        if approval.status != ApprovalStatus.PENDING:
            raise ApprovalError(
                _("This request is already %(status)s.") % {"status": approval.get_status_display()}
            )
        if approval.requested_by_id == actor.pk:
            raise ApprovalError(_("You cannot decide your own request; a colleague must."))
        handler = HANDLERS[approval.kind]
        if not handler.may_decide(approval, actor):
            raise ApprovalError(_("Your role cannot decide this request."))
        if not approve and not comment.strip():
            raise ApprovalError(_("Say why the request is rejected."))
        try:
            handler.decide(approval, approve=approve, actor=actor, comment=comment)
        except ApprovalError:
            raise
        except (ValueError, PermissionError) as exc:
            raise ApprovalError(str(exc)) from exc
        except Exception as exc:
            # the domain's own refusals (TierRuleError, CampaignStateError, BudgetExhausted…)
            if type(exc).__module__.split(".")[0] in {"members", "campaigns", "benefits"}:
                raise ApprovalError(str(exc)) from exc
            raise
        fresh = ApprovalRequest.objects.get(pk=approval.pk)
        if fresh.status == ApprovalStatus.PENDING:
            # kinds whose change lives only in the request (budgets) are settled here
            fresh.status = ApprovalStatus.APPROVED if approve else ApprovalStatus.REJECTED
            fresh.decided_by, fresh.decided_at = actor, timezone.now()
            fresh.comment = comment[:255]
            fresh.object_type = approval.object_type or fresh.object_type
            fresh.object_id = approval.object_id or fresh.object_id
            fresh.save()
        audit_record(
            actor=actor,
            action="approval.approve" if approve else "approval.reject",
            obj=fresh,
            changes={"kind": fresh.kind, "summary": fresh.summary},
            reason=comment,
        )
    return fresh


# --- reads -----------------------------------------------------------------------------------

#: roles that read every request (read-only unless they also hold an approving role)
OVERSEERS = frozenset({Role.RISK_AUDITOR, Role.ADMINISTRATOR})


def approval_list() -> QuerySet[ApprovalRequest]:
    return ApprovalRequest.objects.select_related("requested_by", "decided_by", "branch").order_by(
        "-requested_at", "-id"
    )


def _decidable_condition(user) -> Q:
    """The requests `user`'s roles may decide, each kind in its handler's scope."""
    condition = Q(pk__in=[])
    for handler in HANDLERS.values():
        scope = handler.scope(user)
        if scope is not None:
            condition |= scope
    return condition


def approval_inbox(*, user) -> QuerySet[ApprovalRequest]:
    """Pending requests `user` may decide (never their own), oldest first."""
    return (
        approval_list()
        .filter(_decidable_condition(user), status=ApprovalStatus.PENDING)
        .exclude(requested_by=user)
        .order_by("requested_at", "id")
    )


def approval_visible(*, user) -> QuerySet[ApprovalRequest]:
    """Every request `user` may open: their own, those they may decide, and all of them for
    risk auditors and administrators."""
    if user.is_superuser or any(user.has_role(role) for role in OVERSEERS):
        return approval_list()
    return approval_list().filter(_decidable_condition(user) | Q(requested_by=user))


def approval_may_decide(*, approval: ApprovalRequest, user) -> bool:
    return (
        approval.status == ApprovalStatus.PENDING
        and approval.requested_by_id != user.pk
        and HANDLERS[approval.kind].may_decide(approval, user)
    )
