"""Changing budgets: a new budget and an increase are proposals a budget approver other than
the proposer decides (`benefits.approvals`); lowering applies at once, never below what is
consumed."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from django.db import transaction
from django.utils.translation import gettext as _

from portal.approvals import approval_request_create
from portal.errors import InvalidInput, NotAllowed, StateConflict
from portal.models import Department
from portal.money import decimal_to_fen
from portal.permissions import user_can
from portal.services import audit_record

from ..choices import BenefitApproval
from ..models import Budget
from ..rules import budget_values_problems


class BudgetProposalError(InvalidInput):
    """A proposed budget or budget increase is not valid (the message says what to fix)."""


#: the budget fields a creation request proposes, in the order the checker reads them
BUDGET_PROPOSAL_FIELDS = (
    "code",
    "name",
    "department",
    "parent",
    "line",
    "period_start",
    "period_end",
    "amount",
    "alert_percents",
)


def budget_line_overlap(
    *, line: str, period_start: date, period_end: date, exclude_pk: int | None = None
) -> str:
    """The refusal when a budget of `line` for this period would overlap another budget of
    the line ("" when it does not): the budget charged for a business date must be one."""
    if not line:
        return ""
    other = (
        Budget.objects.filter(line=line, period_start__lte=period_end, period_end__gte=period_start)
        .exclude(pk=exclude_pk)
        .first()
    )
    if other is None:
        return ""
    return _(
        "Budget %(code)s of line %(line)s already covers %(start)s to %(end)s: the budgets of "
        "a line must not overlap (the budget charged for a business date must be one)."
    ) % {
        "code": other.code,
        "line": line,
        "start": other.period_start.isoformat(),
        "end": other.period_end.isoformat(),
    }


def _budget_proposal_check(values: dict, *, budget: Budget | None = None) -> None:
    """The bounds and rules of `benefits.rules.budget_values_problems` (amount, period,
    alert thresholds, parent), then the line's periods: the first problem, with its field."""
    start = date.fromisoformat(str(values["period_start"]))
    end = date.fromisoformat(str(values["period_end"]))
    parent = values.get("parent")
    if isinstance(parent, str) and parent:
        parent = Budget.objects.filter(code=parent).first()
        if parent is None:
            raise BudgetProposalError(
                _("Unknown parent budget %(code)s.") % {"code": values["parent"]}, field="parent"
            )
    problems = budget_values_problems(
        amount=values.get("amount"),
        period_start=start,
        period_end=end,
        parent=parent or None,
        alert_percents=values.get("alert_percents"),
        budget=budget,
    )
    if problems:
        field, problem = next(iter(problems.items()))
        raise BudgetProposalError(problem, field=field)
    if refusal := budget_line_overlap(
        line=values.get("line") or "",
        period_start=date.fromisoformat(str(values["period_start"])),
        period_end=date.fromisoformat(str(values["period_end"])),
    ):
        raise BudgetProposalError(refusal, field="line")


def budget_create_request(*, values: dict, actor, reason: str = ""):
    """Propose a new budget (fields as in `BUDGET_PROPOSAL_FIELDS`; department and parent by
    code). Nothing is created until a budget approver other than `actor` approves."""
    if not user_can(actor, "benefits.configure_budgets"):
        raise NotAllowed("Your role cannot propose budgets.")
    values = {name: values.get(name) for name in BUDGET_PROPOSAL_FIELDS}
    _budget_proposal_check(values)
    if Budget.objects.filter(code=values["code"]).exists():
        raise BudgetProposalError(f"A budget with code {values['code']} already exists.")
    if not Department.objects.filter(code=values["department"]).exists():
        raise BudgetProposalError(f"Unknown department {values['department']}.")
    if values["parent"] and not Budget.objects.filter(code=values["parent"]).exists():
        raise BudgetProposalError(f"Unknown parent budget {values['parent']}.")
    with transaction.atomic():
        return approval_request_create(
            kind=BenefitApproval.BUDGET_CREATE,
            summary=f"{values['code']} {values['name']}: {values['amount']} CNY",
            current={},
            proposal=values,
            reason=reason,
            actor=actor,
        )


@transaction.atomic
def budget_create_apply(*, values: dict, actor, approval) -> Budget:
    """Create the budget an approved request proposed (called by the approval engine, which
    has checked the decider, in its transaction)."""
    _budget_proposal_check(values)
    if Budget.objects.filter(code=values["code"]).exists():
        raise BudgetProposalError(f"A budget with code {values['code']} already exists.")
    budget = Budget.objects.create(
        code=values["code"],
        name=values["name"],
        department=Department.objects.get(code=values["department"]),
        parent=Budget.objects.get(code=values["parent"]) if values.get("parent") else None,
        line=values.get("line") or "",
        period_start=date.fromisoformat(values["period_start"]),
        period_end=date.fromisoformat(values["period_end"]),
        amount_fen=decimal_to_fen(Decimal(values["amount"])),
        alert_percents=values.get("alert_percents") or [],
    )
    audit_record(
        actor=actor,
        action="budget.create",
        obj=budget,
        changes={"amount": [None, values["amount"]], "approval": approval.pk},
    )
    return budget


def budget_increase_request(*, budget: Budget, amount, actor, reason: str = ""):
    """Propose raising a budget's amount to `amount` (Decimal yuan). Applied only when a
    budget approver other than `actor` approves; lowering needs none (`budget_amount_lower`)."""
    if not user_can(actor, "benefits.configure_budgets"):
        raise NotAllowed("Your role cannot change budgets.")
    amount = Decimal(str(amount))
    _budget_proposal_check(
        {
            "amount": amount,
            "period_start": budget.period_start,
            "period_end": budget.period_end,
            "parent": budget.parent,
        },
        budget=budget,
    )
    if amount <= budget.amount:
        raise BudgetProposalError(
            f"{amount:.2f} is not above the current amount {budget.amount:.2f}."
        )
    with transaction.atomic():
        return approval_request_create(
            kind=BenefitApproval.BUDGET_INCREASE,
            obj=budget,
            summary=f"{budget.code}: {budget.amount:.2f} → {amount:.2f} CNY",
            current={"amount": f"{budget.amount:.2f}"},
            proposal={"amount": f"{amount:.2f}"},
            reason=reason,
            actor=actor,
        )


@transaction.atomic
def budget_increase_apply(*, budget: Budget, from_amount: str, to_amount: str, actor, approval):
    """Apply an approved increase (called by the approval engine): the amount becomes
    `to_amount`, provided it is still `from_amount` (a budget changed since the request is
    not silently overwritten)."""
    changed = Budget.objects.filter(
        pk=budget.pk, amount_fen=decimal_to_fen(Decimal(from_amount))
    ).update(amount_fen=decimal_to_fen(Decimal(to_amount)))
    if not changed:
        raise StateConflict(
            f"Budget {budget.code} no longer has the amount {from_amount}; ask for a new "
            "increase from its current amount."
        )
    audit_record(
        actor=actor,
        action="budget.increase",
        obj=budget,
        changes={"amount": [from_amount, to_amount], "approval": approval.pk},
    )


@transaction.atomic
def budget_amount_lower(*, budget: Budget, amount, actor, reason: str = "") -> Budget:
    """Lower a budget's amount (no approval: it only reduces what may be spent); never below
    what is already consumed."""
    if not user_can(actor, "benefits.configure_budgets"):
        raise NotAllowed("Your role cannot change budgets.")
    amount_fen = decimal_to_fen(Decimal(str(amount)))
    before = budget.amount
    changed = Budget.objects.filter(
        pk=budget.pk, consumed_fen__lte=amount_fen, amount_fen__gte=amount_fen
    ).update(amount_fen=amount_fen)
    if not changed:
        raise BudgetProposalError(
            f"{Decimal(amount):.2f} is below what {budget.code} has already consumed, or above "
            "its amount (an increase needs approval)."
        )
    audit_record(
        actor=actor,
        action="budget.lower",
        obj=budget,
        changes={"amount": [f"{before:.2f}", f"{Decimal(amount):.2f}"]},
        reason=reason,
    )
    budget.refresh_from_db()
    return budget


__all__ = [
    "BUDGET_PROPOSAL_FIELDS",
    "BudgetProposalError",
    "budget_amount_lower",
    "budget_create_apply",
    "budget_create_request",
    "budget_increase_apply",
    "budget_increase_request",
]
