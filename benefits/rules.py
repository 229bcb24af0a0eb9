"""The bounds of benefit configuration, in one place: the admin, the API, the entitlement
matrix, the budget proposals and the nightly steps all check with these (`portal.bounds`).

The limits are a bank's sanity limits, not its policy: far above anything a programme
configures (a lounge visit costs ¥200, a health check ¥1,500), far below what breaks a
night (a quantity is a number of grants per member per period; a budget is spent in fen in
64-bit integers).
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from django.db.models import Sum
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from portal.bounds import Bound, BoundError
from portal.money import fen_to_decimal, yuan_text

from .models import Budget

__all__ = [
    "ALERT_PERCENT",
    "ALERT_PERCENTS_MAX",
    "BENEFIT_UNIT_COST",
    "BENEFIT_VALIDITY_DAYS",
    "BUDGET_AMOUNT",
    "ENTITLEMENT_QUANTITY",
    "alert_percents_parse",
    "budget_ancestors",
    "budget_parent_alone_problem",
    "budget_parent_problems",
    "budget_parent_room",
    "budget_values_problems",
    "entitlement_quantity_parse",
]

#: grants of one benefit per member per period (0 or empty in the matrix: no entitlement)
ENTITLEMENT_QUANTITY = Bound("quantity", gettext_lazy("quantity"), 1, 999)
#: what one grant of a benefit costs its budget
BENEFIT_UNIT_COST = Bound(
    "unit_cost",
    gettext_lazy("unit cost"),
    Decimal("0.00"),
    Decimal("100000.00"),
    whole=False,
    money=True,
)
#: how long a grant stays valid (empty: to the end of its period)
BENEFIT_VALIDITY_DAYS = Bound("validity_days", gettext_lazy("validity (days)"), 1, 3660)
#: a budget's amount: up to ten billion yuan
BUDGET_AMOUNT = Bound(
    "amount",
    gettext_lazy("amount"),
    Decimal("0.01"),
    Decimal("10000000000.00"),
    whole=False,
    money=True,
)
#: one alert threshold, a percentage of the amount consumed
ALERT_PERCENT = Bound("alert_percents", gettext_lazy("an alert threshold (%)"), 1, 100)
ALERT_PERCENTS_MAX = 10


def entitlement_quantity_parse(text) -> int:
    """A matrix cell as typed: 0 or empty → 0 (no entitlement); otherwise a whole number
    within `ENTITLEMENT_QUANTITY`, else `BoundError` (never silently 0)."""
    if text is None or (not isinstance(text, bool) and str(text).strip() in ("", "0")):
        return 0
    return ENTITLEMENT_QUANTITY.parse(text)


def alert_percents_parse(value) -> list[int]:
    """Alert thresholds as stored: a list of distinct whole percentages 1–100 (at most
    ALERT_PERCENTS_MAX), sorted; text "80, 95" is taken too. `BoundError` otherwise."""
    if value is None or value == "":
        return []
    if isinstance(value, str):
        value = [part for part in value.replace("，", ",").replace("%", "").split(",") if part]
    if not isinstance(value, list | tuple):
        raise BoundError(
            _("Alert thresholds must be a list of percentages, e.g. 80, 95."),
            field=ALERT_PERCENT.field,
        )
    if len(value) > ALERT_PERCENTS_MAX:
        raise BoundError(
            _("At most %(count)d alert thresholds.") % {"count": ALERT_PERCENTS_MAX},
            field=ALERT_PERCENT.field,
        )
    percents = sorted({ALERT_PERCENT.parse(part) for part in value})
    return percents


def budget_ancestors(budget: Budget | None) -> list[Budget]:
    """`budget` and the budgets above it, nearest first (empty for None); a loop in the
    rows (which the rules never let in) ends the walk instead of repeating it."""
    chain, seen = [], set()
    while budget is not None and budget.pk not in seen:
        chain.append(budget)
        seen.add(budget.pk)
        budget = budget.parent
    return chain


def budget_parent_room(parent: Budget, *, without: Budget | None = None) -> int:
    """What `parent` has not given to its child budgets (fen; negative if the children
    were given more), leaving `without` out of the children: the room a child's amount must
    fit in."""
    children = parent.children.all()
    if without is not None and without.pk:
        children = children.exclude(pk=without.pk)
    given = children.aggregate(total=Sum("amount_fen"))["total"] or 0
    return parent.amount_fen - given


def budget_parent_problems(
    *,
    parent: Budget | None,
    amount_fen: int,
    period_start: date,
    period_end: date,
    budget: Budget | None = None,
) -> dict[str, str]:
    """Why `budget` (None: a new one) cannot have `amount_fen` under `parent` for the
    period, by field: the parent must not be the budget itself or below it, its period must
    contain the child's, and the child's amount must fit in what the parent has not given
    to its other children (`budget_parent_room`). An existing budget moving to another
    parent takes what it has consumed with it: every budget above the new parent that is
    not above the old one must have that much left. Empty when it fits."""
    if parent is None:
        return {}
    problems = {}
    above = budget_ancestors(parent)
    if budget is not None and any(ancestor.pk == budget.pk for ancestor in above):
        problems["parent"] = _("A budget cannot be its own parent, nor under its children.")
        return problems
    if period_start < parent.period_start or period_end > parent.period_end:
        problems["period_end"] = _(
            "The period must lie within the parent budget %(code)s's period, %(start)s to %(end)s."
        ) % {
            "code": parent.code,
            "start": parent.period_start.isoformat(),
            "end": parent.period_end.isoformat(),
        }
    room = budget_parent_room(parent, without=budget)
    if amount_fen > room:
        problems["amount"] = _(
            "The parent budget %(code)s has %(room)s left to give (%(amount)s, of which "
            "%(given)s is given to its other budgets)."
        ) % {
            "code": parent.code,
            "room": yuan_text(fen_to_decimal(max(room, 0))),
            "amount": yuan_text(fen_to_decimal(parent.amount_fen)),
            "given": yuan_text(fen_to_decimal(parent.amount_fen - room)),
        }
    if budget is not None and budget.pk and budget.parent_id != parent.pk and budget.consumed_fen:
        kept = {ancestor.pk for ancestor in budget_ancestors(budget.parent)}
        for ancestor in above:
            if ancestor.pk in kept:
                break  # from here up the consumption is counted already
            if ancestor.amount_fen - ancestor.consumed_fen < budget.consumed_fen:
                problems.setdefault(
                    "parent",
                    _(
                        "%(budget)s has already consumed %(consumed)s, which moves with it; "
                        "the budget %(code)s above it has only %(left)s left."
                    )
                    % {
                        "budget": budget.code,
                        "consumed": yuan_text(fen_to_decimal(budget.consumed_fen)),
                        "code": ancestor.code,
                        "left": yuan_text(
                            fen_to_decimal(ancestor.amount_fen - ancestor.consumed_fen)
                        ),
                    },
                )
                break
    return problems


def budget_parent_alone_problem(
    *, budget: Budget, parent: Budget | None, amount_fen: int, period_start, period_end
) -> str:
    """Why a new parent for `budget` cannot be proposed together with these values ("" when
    it can): a new parent waits for approval while an amount or a period would change
    around it, and neither the approver's impact nor the parent's rules would see them
    together. Propose it on its own."""
    if (parent.pk if parent is not None else None) == budget.parent_id:
        return ""
    if (
        amount_fen == budget.amount_fen
        and period_start == budget.period_start
        and period_end == budget.period_end
    ):
        return ""
    return _(
        "A new parent is proposed on its own: save the amount and the period without it, "
        "or after the new parent is decided."
    )


def budget_values_problems(
    *,
    amount,
    period_start: date | None,
    period_end: date | None,
    parent: Budget | None = None,
    alert_percents=None,
    budget: Budget | None = None,
) -> dict[str, str]:
    """Why a budget's values (new, or `budget` changed) are not valid, by field, in the
    user's language: the amount within `BUDGET_AMOUNT` (yuan, to the fen, separators
    allowed), a period that ends on or after its start, alert thresholds, and the parent's
    rules (`budget_parent_problems`). Empty when they are valid. The admin's form and the
    budget proposal services (request and apply) call it."""
    problems = {}
    amount_fen = None
    try:
        amount_fen = int(BUDGET_AMOUNT.parse(amount) * 100)
    except BoundError as exc:
        problems["amount"] = exc.message
    if period_start and period_end and period_end < period_start:
        problems["period_end"] = _("The period must end on or after its start (%(start)s).") % {
            "start": period_start.isoformat()
        }
    if alert_percents is not None:
        try:
            alert_percents_parse(alert_percents)
        except BoundError as exc:
            problems["alert_percents"] = exc.message
    if amount_fen is not None and period_start and period_end and "period_end" not in problems:
        for field, problem in budget_parent_problems(
            parent=parent,
            amount_fen=amount_fen,
            period_start=period_start,
            period_end=period_end,
            budget=budget,
        ).items():
            problems.setdefault(field, problem)
    return problems
