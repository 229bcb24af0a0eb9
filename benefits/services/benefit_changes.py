"""Changing the benefit catalogue. What a benefit costs (its unit cost) and where that is
charged (its budget) spend money on every grant, so a change of either is a proposal a
budget approver other than the proposer decides (`benefits.approvals`); names,
descriptions, provider, validity and active apply at once. The admin and the API call
these; both check the bounds of `benefits.rules`.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from portal.approvals import approval_request_create
from portal.bounds import BoundError
from portal.errors import NotAllowed, StateConflict
from portal.models import ApprovalRequest
from portal.money import fen_to_decimal, yuan_text
from portal.permissions import user_can
from portal.services import audit_record

from ..choices import BenefitApproval
from ..models import Benefit, Budget
from ..rules import BENEFIT_UNIT_COST, BENEFIT_VALIDITY_DAYS

__all__ = [
    "COST_FIELDS",
    "benefit_change_apply",
    "benefit_values_check",
    "benefit_update",
]

#: the fields whose change spends money: proposed, applied on approval
COST_FIELDS = ("unit_cost_fen", "budget")


def benefit_values_check(values: dict) -> None:
    """`ValidationError` by field when a unit cost (fen) or validity is out of bounds —
    for a new benefit and for a change, from the admin and the API alike."""
    errors = {}
    if values.get("unit_cost_fen") is not None:
        try:
            BENEFIT_UNIT_COST.parse(fen_to_decimal(values["unit_cost_fen"]))
        except BoundError as exc:
            errors["unit_cost"] = [exc.message]
    if values.get("validity_days") is not None:
        try:
            BENEFIT_VALIDITY_DAYS.parse(values["validity_days"])
        except BoundError as exc:
            errors["validity_days"] = [exc.message]
    if errors:
        raise ValidationError(errors)


@transaction.atomic
def benefit_update(*, benefit: Benefit, changes: dict, actor, reason: str = ""):
    """Change a benefit: the low-risk fields at once (audited), a new unit cost or budget as
    a proposal (nothing of it applies until approval). Returns `(benefit, approval or
    None)`. One pending cost change per benefit at a time."""
    if not user_can(actor, "benefits.configure_benefits"):
        raise NotAllowed(_("Your role cannot change benefits."))
    benefit_values_check(changes)
    benefit = Benefit.objects.select_for_update().get(pk=benefit.pk)
    cost_changes = {
        name: value
        for name, value in changes.items()
        if name in COST_FIELDS and value != getattr(benefit, name)
    }
    at_once = {name: value for name, value in changes.items() if name not in COST_FIELDS}
    before = {name: getattr(benefit, name) for name in at_once}
    for name, value in at_once.items():
        setattr(benefit, name, value)
    if at_once:
        benefit.save(update_fields=list(at_once))
        audit_record(
            actor=actor,
            action="benefit.change",
            obj=benefit,
            changes={
                name: [str(before[name]), str(value)]
                for name, value in at_once.items()
                if before[name] != value
            },
        )
    approval = None
    if cost_changes:
        approval = _cost_change_request(benefit, cost_changes, actor=actor, reason=reason)
    return benefit, approval


def _cost_change_request(benefit: Benefit, cost_changes: dict, *, actor, reason: str):
    if ApprovalRequest.objects.filter(
        kind=BenefitApproval.BENEFIT_CHANGE,
        object_type=benefit._meta.label_lower,
        object_id=str(benefit.pk),
        status="PENDING",
    ).exists():
        raise StateConflict(
            _(
                "A change of %(code)s's cost or budget is already waiting for approval; "
                "have it decided (or withdrawn) first."
            )
            % {"code": benefit.code},
            code="change_pending",
        )
    current = {
        "unit_cost": yuan_text(fen_to_decimal(benefit.unit_cost_fen)),
        "budget": f"{benefit.budget.code} {benefit.budget.name}",
    }
    new_cost = cost_changes.get("unit_cost_fen", benefit.unit_cost_fen)
    new_budget = cost_changes.get("budget", benefit.budget)
    proposal = {
        "unit_cost": yuan_text(fen_to_decimal(new_cost)),
        "budget": f"{new_budget.code} {new_budget.name}",
        "unit_cost_fen": new_cost,
        "budget_code": new_budget.code,
        "from_unit_cost_fen": benefit.unit_cost_fen,
        "from_budget_code": benefit.budget.code,
    }
    parts = []
    if "unit_cost_fen" in cost_changes:
        parts.append(
            _("unit cost %(before)s → %(after)s")
            % {"before": current["unit_cost"], "after": proposal["unit_cost"]}
        )
    if "budget" in cost_changes:
        parts.append(
            _("budget %(before)s → %(after)s")
            % {"before": benefit.budget.code, "after": new_budget.code}
        )
    return approval_request_create(
        kind=BenefitApproval.BENEFIT_CHANGE,
        summary=f"{benefit.code} {benefit.name}: " + ", ".join(parts),
        obj=benefit,
        current={
            **current,
            "unit_cost_fen": benefit.unit_cost_fen,
            "budget_code": benefit.budget.code,
        },
        proposal=proposal,
        reason=reason,
        actor=actor,
    )


@transaction.atomic
def benefit_change_apply(*, benefit: Benefit, approval, actor) -> Benefit:
    """Apply an approved cost or budget change (called by the approval engine, the benefit
    row locked): refused with `StateConflict` if the benefit changed since the proposal."""
    proposal = approval.proposal
    if (
        benefit.unit_cost_fen != proposal["from_unit_cost_fen"]
        or benefit.budget.code != proposal["from_budget_code"]
    ):
        raise StateConflict(
            _("%(code)s's cost or budget changed since this proposal; reject it and propose again.")
            % {"code": benefit.code}
        )
    budget = Budget.objects.filter(code=proposal["budget_code"]).first()
    if budget is None:
        raise StateConflict(
            _("Budget %(code)s no longer exists; reject and propose again.")
            % {"code": proposal["budget_code"]}
        )
    benefit.unit_cost_fen = int(proposal["unit_cost_fen"])
    benefit.budget = budget
    benefit.save(update_fields=["unit_cost_fen", "budget"])
    audit_record(
        actor=actor,
        action="benefit.change",
        obj=benefit,
        changes={
            "unit_cost": [
                str(fen_to_decimal(proposal["from_unit_cost_fen"])),
                str(fen_to_decimal(benefit.unit_cost_fen)),
            ],
            "budget": [proposal["from_budget_code"], budget.code],
            "approval": approval.pk,
        },
    )
    return benefit
