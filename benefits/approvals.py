"""The approval kinds the benefits app owns, registered with the kernel's engine
(`portal.approvals`) from `BenefitsConfig.ready()`."""

from __future__ import annotations

from portal.approvals import ApprovalKind, approval_kind_register

from .choices import BenefitApproval
from .services import (
    budget_create_apply,
    budget_increase_apply,
    manual_grant_apply,
    manual_grant_refuse,
)

__all__ = ["BudgetCreation", "BudgetIncrease", "ManualGrantDecision"]


@approval_kind_register
class ManualGrantDecision(ApprovalKind):
    code = BenefitApproval.MANUAL_GRANT
    label = BenefitApproval.MANUAL_GRANT.label
    approve_action = "benefits.approve_manual_grant"

    def apply(self, approval, target, *, actor, comment):
        manual_grant_apply(request=target, actor=actor, comment=comment)

    def refuse(self, approval, target, *, actor, comment):
        manual_grant_refuse(request=target, actor=actor, comment=comment)


@approval_kind_register
class BudgetCreation(ApprovalKind):
    """A new budget: the change lives in the request until approval creates the budget."""

    code = BenefitApproval.BUDGET_CREATE
    label = BenefitApproval.BUDGET_CREATE.label
    approve_action = "benefits.approve_budget"

    def apply(self, approval, target, *, actor, comment):
        return budget_create_apply(values=approval.proposal, actor=actor, approval=approval)


@approval_kind_register
class BudgetIncrease(ApprovalKind):
    code = BenefitApproval.BUDGET_INCREASE
    label = BenefitApproval.BUDGET_INCREASE.label
    approve_action = "benefits.approve_budget"

    def apply(self, approval, target, *, actor, comment):
        budget_increase_apply(
            budget=target,
            from_amount=approval.current["amount"],
            to_amount=approval.proposal["amount"],
            actor=actor,
            approval=approval,
        )
