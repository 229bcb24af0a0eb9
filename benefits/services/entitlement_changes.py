"""Changing the entitlement matrix: every change costs money every period, so it is a
proposal a budget approver other than the proposer decides (`benefits.approvals`), shown
with its monthly cost before and after, computed by the code that applies it.

A proposal is a list of cell changes `{benefit, tier, quantity, period, from_quantity,
from_period}` (codes; quantity 0 removes the entitlement). Applying it re-reads each cell:
a cell changed by someone else since the proposal refuses the whole change (409), so an
approver never applies what they did not see.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from decimal import Decimal

from django.db import transaction
from django.db.models import Count
from django.utils.translation import gettext as _

from members.models import Member, Tier
from portal.approvals import approval_request_create
from portal.bounds import BoundError
from portal.errors import InvalidInput, NotAllowed, StateConflict
from portal.money import fen_to_decimal, yuan_text
from portal.permissions import user_can
from portal.services import audit_record

from ..choices import BenefitApproval, EntitlementPeriod
from ..models import Benefit, TierEntitlement
from ..rules import entitlement_quantity_parse

__all__ = [
    "EntitlementCost",
    "entitlement_change_apply",
    "entitlement_change_request",
    "entitlement_changes_cost",
    "entitlement_matrix_changes",
]

#: an entitlement period in months (the cost of one grant a month)
PERIOD_MONTHS = {
    EntitlementPeriod.MONTH: 1,
    EntitlementPeriod.QUARTER: 3,
    EntitlementPeriod.YEAR: 12,
}


class EntitlementChangeError(InvalidInput):
    """Cells of the matrix that cannot be saved (`errors`: cell → message)."""

    code = "invalid_entitlements"

    def __init__(self, errors: dict[tuple[str, str], str]):
        self.errors = errors
        cells = "; ".join(
            f"{benefit} / {tier}: {message}" for (benefit, tier), message in errors.items()
        )
        super().__init__(
            _("Nothing was saved; correct these cells: %(cells)s") % {"cells": cells},
            field="quantity",
            details={
                "cells": [{"benefit": b, "tier": t, "error": m} for (b, t), m in errors.items()]
            },
        )


def entitlement_matrix_changes(*, typed: dict[tuple[Benefit, Tier], tuple[str, str]]) -> list[dict]:
    """The cell changes of a matrix as typed (`(benefit, tier)` → (quantity text, period)):
    only the cells that differ from what is stored. Every cell is checked first; one bad
    cell (a negative, fractional, non-numeric or out-of-range quantity, an unknown period)
    refuses them all with `EntitlementChangeError` naming each bad cell — never a silent 0."""
    current = {
        (e.benefit_id, e.tier_id): e
        for e in TierEntitlement.objects.filter(
            benefit__in={b for b, _t in typed}, tier__in={t for _b, t in typed}
        )
    }
    errors: dict[tuple[str, str], str] = {}
    changes = []
    for (benefit, tier), (raw, period) in typed.items():
        cell = current.get((benefit.pk, tier.pk))
        try:
            quantity = entitlement_quantity_parse(raw)
        except BoundError as exc:
            errors[(benefit.code, tier.code)] = exc.message
            continue
        if quantity and period not in EntitlementPeriod.values:
            errors[(benefit.code, tier.code)] = _("Choose a period: month, quarter or year.")
            continue
        before = (cell.quantity, cell.period) if cell else (0, "")
        after = (quantity, period if quantity else "")
        if before != after:
            changes.append(_change(benefit, tier, before, after))
    if errors:
        raise EntitlementChangeError(errors)
    return changes


def _change(benefit, tier, before, after) -> dict:
    return {
        "benefit": benefit.code,
        "tier": tier.code,
        "scheme": tier.scheme.code,
        "quantity": after[0],
        "period": after[1],
        "from_quantity": before[0],
        "from_period": before[1],
    }


@dataclass(frozen=True)
class EntitlementCost:
    """What the entitlements of the changed cells cost a month, now and as proposed, with
    the members they reach (ACTIVE members of each tier today)."""

    before: Decimal
    after: Decimal
    members: dict[str, int]

    @property
    def delta(self) -> Decimal:
        return self.after - self.before


def entitlement_changes_cost(
    changes: list[dict], *, unit_costs_after: dict[str, int] | None = None
) -> EntitlementCost:
    """The monthly cost of the changed cells before and after (members of the tier ×
    quantity × unit cost ÷ the period's months), with the members per tier: the impact an
    approver reads, from the same changes `entitlement_change_apply` writes.
    `unit_costs_after` (benefit code → fen) prices "after" at a proposed unit cost."""
    tiers = {(c["scheme"], c["tier"]) for c in changes}
    counts = Counter()
    for row in (
        Member.objects.filter(status="ACTIVE", tier__code__in={t for _s, t in tiers})
        .values("tier__scheme__code", "tier__code")
        .annotate(n=Count("id"))
    ):
        counts[(row["tier__scheme__code"], row["tier__code"])] = row["n"]
    costs = dict(
        Benefit.objects.filter(code__in={c["benefit"] for c in changes}).values_list(
            "code", "unit_cost_fen"
        )
    )
    before = after = Decimal(0)
    for change in changes:
        members = counts[(change["scheme"], change["tier"])]
        unit = fen_to_decimal(costs.get(change["benefit"], 0))
        unit_after = fen_to_decimal(
            (unit_costs_after or {}).get(change["benefit"], costs.get(change["benefit"], 0))
        )
        if change["from_quantity"]:
            months = PERIOD_MONTHS[change["from_period"]]
            before += members * unit * change["from_quantity"] / months
        if change["quantity"]:
            after += members * unit_after * change["quantity"] / PERIOD_MONTHS[change["period"]]
    quantum = Decimal("0.01")
    return EntitlementCost(
        before=before.quantize(quantum),
        after=after.quantize(quantum),
        members={f"{s}/{t}": counts[(s, t)] for s, t in sorted(tiers)},
    )


def entitlement_change_request(*, changes: list[dict], actor, reason: str = ""):
    """Propose the cell changes (from `entitlement_matrix_changes` or the API) for a budget
    approver to decide; nothing changes until approval. None when there is nothing to change."""
    if not user_can(actor, "benefits.configure_benefits"):
        raise NotAllowed(_("Your role cannot change entitlements."))
    if not changes:
        return None
    cost = entitlement_changes_cost(changes)
    with transaction.atomic():
        return approval_request_create(
            kind=BenefitApproval.ENTITLEMENT_CHANGE,
            summary=_("%(count)d entitlement change(s), monthly cost %(before)s → %(after)s")
            % {
                "count": len(changes),
                "before": yuan_text(cost.before),
                "after": yuan_text(cost.after),
            },
            current={"cells": [_cell_text(c, before=True) for c in changes]},
            proposal={"changes": changes, "cells": [_cell_text(c, before=False) for c in changes]},
            reason=reason,
            actor=actor,
        )


def _cell_text(change: dict, *, before: bool) -> str:
    quantity = change["from_quantity"] if before else change["quantity"]
    period = change["from_period"] if before else change["period"]
    where = f"{change['benefit']} / {change['tier']}"
    if not quantity:
        return f"{where}: —"
    return f"{where}: {quantity} × {EntitlementPeriod(period).label}"


@transaction.atomic
def entitlement_change_apply(*, approval, actor) -> int:
    """Write the approved cell changes (called by the approval engine, in its transaction):
    each cell must still be what the proposal saw, else `StateConflict` and nothing is
    written. Returns the number of cells changed."""
    changes = approval.proposal.get("changes", [])
    benefits = {b.code: b for b in Benefit.objects.filter(code__in={c["benefit"] for c in changes})}
    tiers = {
        (t.scheme.code, t.code): t
        for t in Tier.objects.select_related("scheme").filter(code__in={c["tier"] for c in changes})
    }
    for change in changes:
        benefit = benefits.get(change["benefit"])
        tier = tiers.get((change["scheme"], change["tier"]))
        if benefit is None or tier is None:
            raise StateConflict(
                _("Benefit %(benefit)s or tier %(tier)s no longer exists; propose again.")
                % {"benefit": change["benefit"], "tier": change["tier"]}
            )
        cell = (
            TierEntitlement.objects.select_for_update().filter(benefit=benefit, tier=tier).first()
        )
        now = (cell.quantity, cell.period) if cell else (0, "")
        if now != (change["from_quantity"], change["from_period"]):
            raise StateConflict(
                _(
                    "The entitlement %(benefit)s / %(tier)s was changed since this proposal; "
                    "reject it and propose again."
                )
                % {"benefit": change["benefit"], "tier": change["tier"]}
            )
        if not change["quantity"]:
            cell.delete()
        elif cell is None:
            TierEntitlement.objects.create(
                benefit=benefit, tier=tier, quantity=change["quantity"], period=change["period"]
            )
        else:
            cell.quantity, cell.period = change["quantity"], change["period"]
            cell.save()
        audit_record(
            actor=actor,
            action="entitlement.change",
            changes={**change, "approval": approval.pk},
        )
    return len(changes)
