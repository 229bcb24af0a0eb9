"""The approval kinds the benefits app owns, registered with the kernel's engine
(`portal.approvals`) from `BenefitsConfig.ready()`."""

from __future__ import annotations

from decimal import Decimal

from django.utils.formats import number_format
from django.utils.translation import gettext as _

from portal.approvals import ApprovalKind, approval_kind_register
from portal.errors import DomainError
from portal.masking import mask_name
from portal.money import fen_to_decimal, yuan_text

from .choices import BenefitApproval
from .models import Budget
from .services import (
    BudgetImpact,
    benefit_change_apply,
    budget_create_apply,
    budget_creation_impact,
    budget_increase_apply,
    budget_increase_impact,
    budget_parent_change_apply,
    budget_parent_change_impact,
    entitlement_change_apply,
    entitlement_changes_cost,
    manual_grant_apply,
    manual_grant_preview,
    manual_grant_refuse,
)

__all__ = [
    "BenefitChange",
    "BudgetCreation",
    "BudgetIncrease",
    "BudgetParentChange",
    "EntitlementChange",
    "ManualGrantDecision",
    "budget_impact_lines",
]


def _yuan(fen: int) -> str:
    return yuan_text(fen_to_decimal(fen))


def budget_impact_lines(impact: BudgetImpact) -> list[tuple[str, str]]:
    """A budget proposal's impact as the approver reads it: a new parent (old and new by
    name, what moves with the budget), the budget's standing (consumed, committed, left now
    and if approved), its burn forecast, and each parent's room to give before and after."""
    forecast, lines = impact.forecast, []
    if impact.parent_change is not None:
        before, after = impact.parent_change
        top = _("None (a top-level budget)")
        lines += [
            (_("Parent now"), before or top),
            (_("Parent if approved"), after or top),
            (_("Consumed so far, moving with it"), _yuan(impact.moved_fen)),
        ]
    lines += [
        (_("Consumed"), _yuan(forecast.consumed_fen)),
        (_("Committed (granted, not yet redeemed)"), _yuan(forecast.committed_fen)),
    ]
    if impact.left_before_fen is None:
        lines.append((_("Left if approved"), _yuan(forecast.left_fen)))
    elif impact.left_before_fen == forecast.left_fen:
        lines.append((_("Left"), _yuan(forecast.left_fen)))
    else:
        lines += [
            (_("Left now"), _yuan(impact.left_before_fen)),
            (_("Left if approved"), _yuan(forecast.left_fen)),
        ]
    end = {"end": forecast.period_end.isoformat()}
    if not forecast.has_spending:
        none_yet = _("No spending yet")
        rate = runs_out = projected = none_yet
    else:
        rate = _("%(amount)s a day") % {"amount": yuan_text(forecast.daily_rate)}
        if forecast.exhaustion is None:
            runs_out = _("Not at this rate")
        elif forecast.runs_out_in_period:
            runs_out = forecast.exhaustion.isoformat()
        else:
            runs_out = _("Not before its period ends (%(end)s)") % end
        projected = _yuan(forecast.projected_end_fen)
    lines += [
        (_("Spending per day (last 30 days)"), rate),
        (_("Runs out at this rate"), runs_out),
        (_("Consumed by the period end (%(end)s) at this rate") % end, projected),
    ]
    for room in impact.rooms:
        lines += [
            (_("Left to give in %(budget)s now") % {"budget": room.name}, _yuan(room.before_fen)),
            (
                _("Left to give in %(budget)s if approved") % {"budget": room.name},
                _yuan(room.after_fen),
            ),
        ]
    return lines


@approval_kind_register
class ManualGrantDecision(ApprovalKind):
    code = BenefitApproval.MANUAL_GRANT
    label = BenefitApproval.MANUAL_GRANT.label
    approve_action = "benefits.approve_manual_grant"

    def apply(self, approval, target, *, actor, comment):
        manual_grant_apply(request=target, actor=actor, comment=comment)

    def refuse(self, approval, target, *, actor, comment):
        manual_grant_refuse(request=target, actor=actor, comment=comment)

    def impact(self, approval):
        """The customer (masked), the benefit at its cost, and what each budget charged
        would have left, from `manual_grant_preview` (what approving charges)."""
        request = self.target(approval)
        lines = [
            (_("Customer"), f"{request.member.member_no} {mask_name(request.member.name)}"),
            (_("Benefit"), f"{request.benefit.name} ({yuan_text(request.benefit.unit_cost)})"),
        ]
        try:
            chain = manual_grant_preview(request)
        except DomainError as exc:
            return [*lines, (_("Cannot be granted"), str(exc))]
        for budget, before, after in chain:
            lines.append(
                (
                    _("Left in %(budget)s") % {"budget": budget.name},
                    _("%(before)s now → %(after)s if approved")
                    % {
                        "before": yuan_text(fen_to_decimal(before)),
                        "after": yuan_text(fen_to_decimal(after)),
                    }
                    + ("" if after >= 0 else " — " + _("not enough: approving will be refused")),
                )
            )
        return lines


def _budget_value(field: str, value) -> str | None:
    """A budget field's stored proposal value as an approver reads it."""
    if value in (None, "", []):
        return None
    if field == "amount":
        return yuan_text(Decimal(str(value)))
    if field == "alert_percents":
        return "、".join(f"{n} %" for n in value)
    if field == "parent":
        found = Budget.objects.filter(code=value).only("name").first()
        return f"{found.name} ({value})" if found else str(value)
    return str(value)


def budget_diff(approval) -> list[tuple[str, object, object]]:
    """A budget request's fields by their names, amounts in ¥ with separators, thresholds
    with %, a parent by its name (the request keeps the raw values it applies)."""
    labels = {field.name: field.verbose_name for field in Budget._meta.fields}
    return [
        (
            str(labels.get(field, field)).capitalize(),
            _budget_value(field, current),
            _budget_value(field, proposed),
        )
        for field, current, proposed in approval.diff()
        if not field.endswith("_code")
    ]


@approval_kind_register
class BudgetCreation(ApprovalKind):
    """A new budget: the change lives in the request until approval creates the budget."""

    code = BenefitApproval.BUDGET_CREATE
    label = BenefitApproval.BUDGET_CREATE.label
    approve_action = "benefits.approve_budget"

    def apply(self, approval, target, *, actor, comment):
        return budget_create_apply(values=approval.proposal, actor=actor, approval=approval)

    def impact(self, approval):
        return budget_impact_lines(budget_creation_impact(values=approval.proposal))

    def diff(self, approval):
        return budget_diff(approval)


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

    def impact(self, approval):
        return budget_impact_lines(
            budget_increase_impact(
                budget=self.target(approval), amount=Decimal(approval.proposal["amount"])
            )
        )

    def diff(self, approval):
        return budget_diff(approval)


@approval_kind_register
class BudgetParentChange(ApprovalKind):
    """A budget moving under another parent (or none): the parent's amount bounds its
    children's, and what the budget has consumed moves with it."""

    code = BenefitApproval.BUDGET_PARENT_CHANGE
    label = BenefitApproval.BUDGET_PARENT_CHANGE.label
    approve_action = "benefits.approve_budget"

    def apply(self, approval, target, *, actor, comment):
        budget_parent_change_apply(budget=target, approval=approval, actor=actor)

    def impact(self, approval):
        code = approval.proposal.get("parent_code")
        parent = Budget.objects.filter(code=code).first() if code else None
        return budget_impact_lines(
            budget_parent_change_impact(budget=self.target(approval), parent=parent)
        )

    def diff(self, approval):
        return budget_diff(approval)


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
        lines = [
            (_("Monthly entitlement cost now"), yuan_text(cost.before)),
            (_("Monthly entitlement cost if approved"), yuan_text(cost.after)),
            (_("Members entitled"), number_format(sum(cost.members.values()), force_grouping=True)),
        ]
        budget_code = approval.proposal.get("budget_code")
        if budget_code and budget_code != approval.proposal.get("from_budget_code"):
            budget = Budget.objects.filter(code=budget_code).first()
            if budget is not None:  # the grants of the benefit are charged there from then on
                lines += [
                    (_("Budget now"), target.budget.name),
                    (_("Budget if approved"), budget.name),
                    (
                        _("Left in %(budget)s") % {"budget": budget.name},
                        yuan_text(budget.remaining),
                    ),
                ]
        return lines
