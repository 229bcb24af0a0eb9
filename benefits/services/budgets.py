"""Budget movements: every consume and every release walks the budget's chain (the budget and
its parents, leaf first) through `_chain_move`, the one place a budget's `consumed` changes.

Consuming is one conditional UPDATE per level (consumed + amount ≤ amount, the period open):
a budget can never go over its amount, however many requests race for it. Every movement
is a `BudgetEntry` at every level of the chain.
"""

from __future__ import annotations

from datetime import date

from django.core.mail import mail_admins
from django.db import transaction
from django.db.models import F

from portal.clock import today_in_shanghai
from portal.errors import StateConflict

from ..choices import BudgetEntryKind
from ..models import BenefitGrant, Budget, BudgetAlert, BudgetEntry

__all__ = [
    "BudgetExhausted",
    "budget_alerts_raise",
    "budget_consume",
    "budget_consume_many",
    "budget_consume_up_to",
    "budget_release",
    "budget_release_many",
]

#: one ledger entry of a movement: (amount in fen, source, grant id or None)
Entry = tuple[int, str, int | None]


class BudgetExhausted(StateConflict):
    """The budget (or one of its parents) has no room for this amount; nothing was written."""

    code = "budget_exhausted"

    def __init__(self, budget: Budget | int, amount_fen: int, reason: str = "") -> None:
        code = budget.code if isinstance(budget, Budget) else f"#{budget}"
        super().__init__(reason or f"Budget {code} has no room for {amount_fen / 100:.2f} CNY.")
        self.budget = budget
        self.amount_fen = amount_fen


def _budget_chain(budget_id: int) -> list[int]:
    """The budget and its parents, leaf first (the lock order every mover follows)."""
    chain, current = [], budget_id
    while current is not None:
        chain.append(current)
        current = Budget.objects.filter(pk=current).values_list("parent_id", flat=True).first()
    return chain


def _chain_move(
    *,
    budget_id: int,
    amount_fen: int,
    kind: BudgetEntryKind,
    entries: list[Entry],
    on: date,
    parent_source: str | None = None,
    chain: list[int] | None = None,
) -> None:
    """Move `amount_fen` on the budget and every parent, leaf first.

    CONSUME: per level ONE conditional UPDATE (room left and the period open on `on`), else
    `BudgetExhausted` (the caller's transaction then leaves nothing written). RELEASE: per
    level the amount given back. Ledger: the leaf gets `entries` (signed by `kind`; none
    when the caller writes them set-based); each parent gets the same entries, or one entry
    for the whole amount when `parent_source` names it."""
    sign = 1 if kind == BudgetEntryKind.CONSUME else -1
    for position, level_id in enumerate(chain or _budget_chain(budget_id)):
        levels = Budget.objects.filter(pk=level_id)
        if kind == BudgetEntryKind.CONSUME:
            levels = levels.filter(
                consumed_fen__lte=F("amount_fen") - amount_fen,
                period_start__lte=on,
                period_end__gte=on,
            )
        if not levels.update(consumed_fen=F("consumed_fen") + sign * amount_fen):
            _refuse(level_id, amount_fen, on)
        if position and parent_source is not None:
            level_entries: list[Entry] = [(amount_fen, parent_source, None)]
        else:
            level_entries = entries
        BudgetEntry.objects.bulk_create(
            BudgetEntry(
                budget_id=level_id,
                kind=kind,
                amount_fen=sign * amount,
                source=source[:100],
                grant_id=grant_id,
            )
            for amount, source, grant_id in level_entries
            if amount or kind == BudgetEntryKind.RELEASE  # a release is recorded even at 0
        )


def _refuse(level_id: int, amount_fen: int, on: date) -> None:
    level = Budget.objects.get(pk=level_id)
    if not level.period_start <= on <= level.period_end:
        raise BudgetExhausted(
            level,
            amount_fen,
            f"Budget {level.code} is not open on {on} ({level.period_start} to "
            f"{level.period_end}).",
        )
    raise BudgetExhausted(level, amount_fen)


@transaction.atomic
def budget_consume(
    *, budget: Budget, amount_fen: int, source: str, grant: BenefitGrant | None = None
) -> None:
    """Consume `amount_fen` from the budget and every parent (one conditional UPDATE per
    level, leaf first). If any level has no room, `BudgetExhausted` is raised and the
    transaction leaves nothing written."""
    if amount_fen <= 0:
        return
    _chain_move(
        budget_id=budget.pk,
        amount_fen=amount_fen,
        kind=BudgetEntryKind.CONSUME,
        entries=[(amount_fen, source, grant.pk if grant is not None else None)],
        on=today_in_shanghai(),
    )


@transaction.atomic
def budget_consume_many(*, budget_id: int, charges: list[tuple[int, str]]) -> None:
    """Consume many charges (amount in fen, source) at once: ONE conditional UPDATE per level
    of the chain for their total, leaf first, and one ledger entry per charge and level. All
    or nothing: if the total does not fit, `BudgetExhausted` is raised and nothing is written
    (the caller may then try the charges one by one with `budget_consume`)."""
    total = sum(amount for amount, _ in charges)
    if total <= 0:
        return
    _chain_move(
        budget_id=budget_id,
        amount_fen=total,
        kind=BudgetEntryKind.CONSUME,
        entries=[(amount, source, None) for amount, source in charges],
        on=today_in_shanghai(),
    )


def budget_consume_up_to(
    *, budget: Budget, unit_fen: int, wanted: int, source: str
) -> tuple[int, str]:
    """Consume room for as many units (≤ wanted) as the budget chain has; return how many,
    and the code of a budget of the chain that is not open ("" if all are). Parents get one
    entry for the whole amount; the caller writes the leaf's entries, one per unit, with the
    set-based statement that inserts the units (`entitlement_grants_run`)."""
    if wanted == 0:
        return 0, ""
    today = today_in_shanghai()
    chain = _budget_chain(budget.pk)
    closed = (
        Budget.objects.filter(pk__in=chain)
        .exclude(period_start__lte=today, period_end__gte=today)
        .values_list("code", flat=True)
        .first()
    )
    if closed:
        return 0, closed
    if unit_fen == 0:
        return wanted, ""
    for _attempt in range(5):
        levels = Budget.objects.filter(pk__in=chain).values("amount_fen", "consumed_fen")
        room = min((level["amount_fen"] - level["consumed_fen"]) // unit_fen for level in levels)
        count = max(0, min(wanted, room))
        if count == 0:
            return 0, ""
        try:
            with transaction.atomic():
                _chain_move(
                    budget_id=budget.pk,
                    amount_fen=count * unit_fen,
                    kind=BudgetEntryKind.CONSUME,
                    entries=[],
                    on=today,
                    parent_source=source,
                    chain=chain,
                )
        except BudgetExhausted:
            continue  # someone consumed concurrently: read again and retry with less
        return count, ""
    return 0, ""


@transaction.atomic
def budget_release(
    *, budget: Budget, amount_fen: int, source: str, grant: BenefitGrant | None = None
) -> None:
    """Give `amount_fen` back to the budget and its parents (a revoked grant)."""
    _chain_move(
        budget_id=budget.pk,
        amount_fen=amount_fen,
        kind=BudgetEntryKind.RELEASE,
        entries=[(amount_fen, source, grant.pk if grant is not None else None)],
        on=today_in_shanghai(),
    )


@transaction.atomic
def budget_release_many(
    *, budget_id: int, releases: list[tuple[int, int]], source: str, parent_source: str
) -> int:
    """Give back the costs of many grants of one budget (grant id, fen): one UPDATE per level
    for their total; the leaf gets an entry per grant, each parent one for the total.
    Returns the total released."""
    total = sum(cost for _grant_id, cost in releases)
    _chain_move(
        budget_id=budget_id,
        amount_fen=total,
        kind=BudgetEntryKind.RELEASE,
        entries=[(cost, source, grant_id) for grant_id, cost in releases],
        on=today_in_shanghai(),
        parent_source=parent_source,
    )
    return total


def budget_alerts_raise(*, business_date: date | None = None) -> dict:
    """Record (once) every alert threshold a budget has crossed and tell the admins."""
    raised = []
    for budget in Budget.objects.exclude(alert_percents=[]):
        for percent in sorted(budget.alert_percents):
            if budget.consumed_fen * 100 < budget.amount_fen * int(percent):
                continue
            _alert, created = BudgetAlert.objects.get_or_create(
                budget=budget, percent=int(percent), defaults={"consumed_fen": budget.consumed_fen}
            )
            if created:
                raised.append(f"{budget.code} ≥ {percent}%")
                mail_admins(
                    f"Budget {budget.code} has reached {percent}%",
                    f"{budget.name}: {budget.consumed:.2f} of {budget.amount:.2f} CNY consumed.",
                    fail_silently=True,
                )
    return {"raised": len(raised), "alerts": raised}
