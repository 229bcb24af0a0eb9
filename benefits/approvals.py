"""The approval kinds the benefits app owns, registered with the kernel's engine
(`portal.approvals`) from `BenefitsConfig.ready()`."""

from __future__ import annotations

from django.utils.formats import number_format
from django.utils.translation import gettext as _

from portal.approvals import ApprovalKind, approval_kind_register
from portal.money import yuan_text

from .choices import BenefitApproval
from .services import (
    benefit_change_apply,
    budget_create_apply,
    budget_increase_apply,
    entitlement_change_apply,
    entitlement_changes_cost,
    manual_grant_apply,
    manual_grant_refuse,
)

__all__ = [
    "BenefitChange",
    "BudgetCreation",
    "BudgetIncrease",
    "EntitlementChange",
    "ManualGrantDecision",
]


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


@approval_kind_register
class EntitlementChange(ApprovalKind):
    """Entitlement matrix cells: the change lives in the request until approval writes it."""

    code = BenefitApproval.ENTITLEMENT_CHANGE
    label = BenefitApproval.ENTITLEMENT_CHANGE.label
    approve_action = "benefits.approve_budget"

    def apply(self, approval, target, *, actor, comment):
        entitlement_change_apply(approval=approval, actor=actor)

    def impact(self, approval):
        cost = entitlement_changes_cost(approval.proposal.get("changes", []))
        lines = [
            (_("Monthly cost of these entitlements now"), yuan_text(cost.before)),
            (_("Monthly cost if approved"), yuan_text(cost.after)),
            (_("Change per month"), ("+" if cost.delta > 0 else "") + yuan_text(cost.delta)),
        ]
        lines += [
            (_("Members of tier %(tier)s") % {"tier": tier}, number_format(n, force_grouping=True))
            for tier, n in cost.members.items()
        ]
        return lines


@approval_kind_register
class BenefitChange(ApprovalKind):
    """A benefit's unit cost or budget (every grant spends it)."""

    code = BenefitApproval.BENEFIT_CHANGE
    label = BenefitApproval.BENEFIT_CHANGE.label
    approve_action = "benefits.approve_budget"

    def apply(self, approval, target, *, actor, comment):
        benefit_change_apply(benefit=target, approval=approval, actor=actor)

    def impact(self, approval):
        target = self.target(approval)
        changes = [
            {
                "benefit": target.code,
                "tier": entitlement.tier.code,
                "scheme": entitlement.tier.scheme.code,
                "quantity": entitlement.quantity,
                "period": entitlement.period,
                "from_quantity": entitlement.quantity,
                "from_period": entitlement.period,
            }
            for entitlement in target.entitlements.select_related("tier__scheme")
        ]
        cost = entitlement_changes_cost(
            changes, unit_costs_after={target.code: int(approval.proposal["unit_cost_fen"])}
        )
        return [
            (_("Monthly entitlement cost now"), yuan_text(cost.before)),
            (_("Monthly entitlement cost if approved"), yuan_text(cost.after)),
            (_("Members entitled"), number_format(sum(cost.members.values()), force_grouping=True)),
        ]
