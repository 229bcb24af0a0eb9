"""The approval kinds the benefits app owns, registered with the kernel's engine
(`portal.approvals`) from `BenefitsConfig.ready()`."""

from __future__ import annotations

from decimal import Decimal

from django.utils.formats import number_format
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from members.models import Tier
from portal.approvals import ApprovalKind, approval_kind_register
from portal.display import name_of, percent_text
from portal.errors import DomainError
from portal.masking import mask_name
from portal.models import Department
from portal.money import fen_to_decimal, yuan_text

from .choices import BenefitApproval, EntitlementPeriod
from .models import Benefit, Budget
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
    summary_related = ("member", "benefit")

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
            (
                _("Benefit"),
                f"{name_of(request.benefit)} ({yuan_text(request.benefit.unit_cost)})",
            ),
        ]
        try:
            chain = manual_grant_preview(request)
        except DomainError as exc:
            return [*lines, (_("Cannot be granted"), str(exc))]
        for budget, before, after in chain:
            lines.append(
                (
                    _("Left in %(budget)s") % {"budget": name_of(budget)},
                    _("%(before)s now → %(after)s if approved")
                    % {
                        "before": yuan_text(fen_to_decimal(before)),
                        "after": yuan_text(fen_to_decimal(after)),
                    }
                    + ("" if after >= 0 else " — " + _("not enough: approving will be refused")),
                )
            )
        return lines

    def summary(self, approval):
        request = self.target(approval)
        return _("%(benefit)s for %(member)s: %(cost)s") % {
            "benefit": name_of(request.benefit),
            "member": request.member.member_no,
            "cost": yuan_text(request.benefit.unit_cost),
        }

    def diff(self, approval):
        """The customer, the benefit, its cost and the budget charged, by name."""
        request = self.target(approval)
        return [
            (_("Customer"), None, f"{request.member.member_no} {mask_name(request.member.name)}"),
            (_("Benefit"), None, name_of(request.benefit)),
            (_("Cost"), None, yuan_text(request.benefit.unit_cost)),
            (_("Budget"), None, name_of(request.budget)),
        ]


#: a budget request's values → what the approval page calls them
BUDGET_FIELD_LABELS = {
    "code": gettext_lazy("Code"),
    "name": gettext_lazy("Name"),
    "department": gettext_lazy("Department"),
    "parent": gettext_lazy("Parent budget"),
    "line": gettext_lazy("Budget line"),
    "period_start": gettext_lazy("Period start"),
    "period_end": gettext_lazy("Period end"),
    "amount": gettext_lazy("Amount"),
    "alert_percents": gettext_lazy("Alert thresholds"),
}


def _budget_name(code) -> str:
    found = Budget.objects.filter(code=code).only("name").first()
    return found.name if found else str(code)


def _budget_value(field: str, value) -> str | None:
    """A budget field's stored proposal value as an approver reads it."""
    if value in (None, "", []):
        return None
    if field == "amount":
        return yuan_text(Decimal(str(value)))
    if field == "alert_percents":
        return "、".join(percent_text(n, 0) for n in value)
    if field in ("parent", "parent_code"):
        return _budget_name(value)
    if field == "department":
        found = Department.objects.filter(code=value).first()
        return name_of(found) if found else str(value)
    return str(value)


def budget_diff(approval) -> list[tuple[str, object, object]]:
    """A budget request's fields by their names, amounts in ¥ with separators, thresholds
    with %, a parent by its name (the request keeps the raw values it applies; a parent
    change keeps the parent's code, read by name now)."""
    rows = []
    for field, current, proposed in approval.diff():
        if field == "parent" and "parent_code" in {*approval.current, *approval.proposal}:
            continue  # said from the codes below, in the reader's language
        if field.endswith("_code") and field != "parent_code":
            continue
        name = "parent" if field == "parent_code" else field
        top = _("None (a top-level budget)") if field == "parent_code" else None
        rows.append(
            (
                str(BUDGET_FIELD_LABELS.get(name, name)),
                _budget_value(field, current) or top,
                _budget_value(field, proposed) or top,
            )
        )
    return rows


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

    def summary(self, approval):
        values = approval.proposal
        return f"{values.get('name', '')}: {yuan_text(Decimal(str(values.get('amount') or 0)))}"

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

    def summary(self, approval):
        before, after = (
            yuan_text(Decimal(str(values["amount"])))
            for values in (approval.current, approval.proposal)
        )
        return f"{self.target(approval).name}: {before} → {after}"

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

    def summary(self, approval):
        before, after = (
            _budget_name(code) if code else "—"
            for code in (approval.current.get("parent_code"), approval.proposal.get("parent_code"))
        )
        return f"{self.target(approval).name}: " + _("parent %(before)s → %(after)s") % {
            "before": before,
            "after": after,
        }

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
        tiers = _tier_names(approval.proposal.get("changes", []))
        lines = [
            (_("Monthly cost of these entitlements now"), yuan_text(cost.before)),
            (_("Monthly cost if approved"), yuan_text(cost.after)),
            (_("Change per month"), ("+" if cost.delta > 0 else "") + yuan_text(cost.delta)),
        ]
        lines += [
            (
                _("Members of tier %(tier)s") % {"tier": tiers.get(tier, tier)},
                number_format(n, force_grouping=True),
            )
            for tier, n in cost.members.items()
        ]
        return lines

    def summary(self, approval):
        changes = approval.proposal.get("changes", [])
        return ngettext(
            "%(count)s entitlement change: %(cells)s",
            "%(count)s entitlement changes: %(cells)s",
            len(changes),
        ) % {
            "count": len(changes),
            "cells": "; ".join(where for where, _before, _after in entitlement_cells(changes)),
        }

    def diff(self, approval):
        """Each cell (benefit × tier, by name) with its quantity and period now and proposed."""
        return entitlement_cells(approval.proposal.get("changes", []))


def _tier_names(changes: list[dict]) -> dict[str, str]:
    """ "SCHEME/TIER" (the keys of `entitlement_changes_cost`' members) → the tier's name."""
    tiers = Tier.objects.select_related("scheme").filter(code__in={c["tier"] for c in changes})
    return {f"{tier.scheme.code}/{tier.code}": name_of(tier) for tier in tiers}


def _quantity_text(quantity, period) -> str:
    if not quantity:
        return "—"
    return _("%(quantity)s × %(period)s") % {
        "quantity": number_format(quantity, force_grouping=True),
        "period": EntitlementPeriod(period).label if period in EntitlementPeriod.values else period,
    }


def entitlement_cells(changes: list[dict]) -> list[tuple[str, str, str]]:
    """(benefit / tier by name, quantity × period now, proposed) for each changed cell."""
    benefits = {b.code: b for b in Benefit.objects.filter(code__in={c["benefit"] for c in changes})}
    tiers = _tier_names(changes)
    cells = []
    for change in changes:
        benefit = benefits.get(change["benefit"])
        tier = tiers.get(f"{change['scheme']}/{change['tier']}", change["tier"])
        cells.append(
            (
                f"{name_of(benefit) if benefit else change['benefit']} / {tier}",
                _quantity_text(change.get("from_quantity"), change.get("from_period")),
                _quantity_text(change.get("quantity"), change.get("period")),
            )
        )
    return cells


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

    def _values(self, approval):
        """(unit cost now, proposed), (budget now, proposed), from the raw values stored."""
        current, proposal = approval.current, approval.proposal
        costs = (
            current.get("unit_cost_fen", proposal.get("from_unit_cost_fen")),
            proposal.get("unit_cost_fen"),
        )
        budgets = (
            current.get("budget_code", proposal.get("from_budget_code")),
            proposal.get("budget_code"),
        )
        return costs, budgets

    def summary(self, approval):
        benefit = self.target(approval)
        (cost_before, cost_after), (budget_before, budget_after) = self._values(approval)
        parts = []
        if cost_before != cost_after:
            parts.append(
                _("unit cost %(before)s → %(after)s")
                % {
                    "before": yuan_text(fen_to_decimal(int(cost_before))),
                    "after": yuan_text(fen_to_decimal(int(cost_after))),
                }
            )
        if budget_before != budget_after:
            parts.append(
                _("budget %(before)s → %(after)s")
                % {"before": _budget_name(budget_before), "after": _budget_name(budget_after)}
            )
        return f"{name_of(benefit)}: " + ", ".join(parts)

    def diff(self, approval):
        """The unit cost in ¥ and the budget by name, now and proposed."""
        (cost_before, cost_after), (budget_before, budget_after) = self._values(approval)
        rows = []
        if cost_before != cost_after:
            rows.append(
                (
                    _("Unit cost"),
                    yuan_text(fen_to_decimal(int(cost_before))),
                    yuan_text(fen_to_decimal(int(cost_after))),
                )
            )
        if budget_before != budget_after:
            rows.append((_("Budget"), _budget_name(budget_before), _budget_name(budget_after)))
        return rows
