"""Budget movements: every consume and every release walks the budget's chain (the budget and
its parents, leaf first) through `_chain_move`, the one place a budget's `consumed` changes.

Consuming is one conditional UPDATE per level (consumed + amount ≤ amount, the period open):
a budget can never go over its amount, however many requests race for it. Every movement
is a `BudgetEntry` at every level of the chain.

Budgets follow the business date: what is charged for a date `on` goes to the budget whose
period contains `on` — the budget named, or the budget of its line that covers the date
(`budget_for_date`); a date no budget of the line covers is refused, saying so. Releases
give back to the budget that was charged.

A budget that moves to another parent takes what it has consumed with it
(`budget_consumption_move`): the levels only the old parent's chain has give it back, the
levels only the new one has take it (within their amounts), as ADJUST entries — so a later
release of the budget's grants gives back to the chain that holds their cost.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

from django.core.mail import mail_admins
from django.db import transaction
from django.db.models import F
from django.utils import translation
from django.utils.translation import gettext as _

from portal.clock import today_in_shanghai
from portal.display import money_text
from portal.errors import DomainError, StateConflict
from portal.money import fen_to_decimal

from ..choices import BudgetEntryKind
from ..models import BenefitGrant, Budget, BudgetAlert, BudgetEntry
from ..rules import alert_percents_parse

__all__ = [
    "BudgetExhausted",
    "BudgetNotOpen",
    "budget_alerts_raise",
    "budget_consume",
    "budget_consume_many",
    "budget_consume_up_to",
    "budget_consumption_move",
    "budget_for_date",
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
        super().__init__(
            reason
            or _("Budget %(code)s has no room for %(amount)s.")
            % {"code": code, "amount": money_text(fen_to_decimal(amount_fen))}
        )
        self.budget = budget
        self.amount_fen = amount_fen


class BudgetNotOpen(BudgetExhausted):
    """No budget of the line is open on the business date; nothing was written."""

    code = "budget_not_open"

    def __init__(self, budget: Budget, on: date) -> None:
        values = {
            "code": budget.code,
            "on": on,
            "start": budget.period_start,
            "end": budget.period_end,
            "line": budget.line,
        }
        if budget.line:
            message = _(
                "Budget %(code)s is not open on %(on)s (%(start)s to %(end)s) and no budget of "
                "its line %(line)s covers that date: open a budget for the period, then run the "
                "date again."
            )
        else:
            message = _(
                "Budget %(code)s is not open on %(on)s (%(start)s to %(end)s): open a budget "
                "for the period, then run the date again."
            )
        super().__init__(budget, 0, message % values)
        self.on = on


def budget_for_date(budget: Budget | int, on: date) -> Budget:
    """The budget charged for business date `on` when `budget` is named: itself if its period
    contains `on`, otherwise the budget of its line whose period does; `BudgetNotOpen` if
    none does."""
    if not isinstance(budget, Budget) or not budget.code:
        budget = Budget.objects.get(pk=budget.pk if isinstance(budget, Budget) else budget)
    if budget.period_start <= on <= budget.period_end:
        return budget
    if budget.line:
        covering = (
            Budget.objects.filter(line=budget.line, period_start__lte=on, period_end__gte=on)
            .order_by("period_start", "pk")
            .first()
        )
        if covering is not None:
            return covering
    raise BudgetNotOpen(budget, on)


def _budget_chain(budget_id: int) -> list[int]:
    """The budget and its parents, leaf first (the lock order every mover follows)."""
    chain, current = [], budget_id
    while current is not None:
        chain.append(current)
        current = _parent_id(current)
    return chain


def _parent_id(budget_id: int) -> int | None:
    return Budget.objects.filter(pk=budget_id).values_list("parent_id", flat=True).first()


def _levels(budget_id: int, chain: list[int] | None) -> Iterator[int]:
    """The levels a movement walks, leaf first: `chain` as given, or the budget and its
    parents, each parent read only when the walk reaches it — after the level below was
    updated, so locked."""
    if chain is not None:
        yield from chain
        return
    level: int | None = budget_id
    while level is not None:
        yield level
        level = _parent_id(level)


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
    level the amount given back. ADJUST (consumption already made, moving with a budget to
    another parent: `budget_consumption_move`): a signed amount on the levels of `chain`,
    a positive one only where it leaves the level within its amount, whatever its period.
    Ledger: the leaf gets `entries` (signed by `kind`; none when the caller writes them
    set-based); each parent gets the same entries, or one entry for the whole amount when
    `parent_source` names it.

    Without `chain`, each level's parent is read after the level is updated (so locked):
    a parent changed by an approval meanwhile is followed, never the one read before."""
    sign = -1 if kind == BudgetEntryKind.RELEASE else 1
    for position, level_id in enumerate(_levels(budget_id, chain)):
        levels = Budget.objects.filter(pk=level_id)
        if kind == BudgetEntryKind.CONSUME:
            levels = levels.filter(
                consumed_fen__lte=F("amount_fen") - amount_fen,
                period_start__lte=on,
                period_end__gte=on,
            )
        elif kind == BudgetEntryKind.ADJUST and amount_fen > 0:
            levels = levels.filter(consumed_fen__lte=F("amount_fen") - amount_fen)
        elif kind == BudgetEntryKind.ADJUST:
            levels = levels.filter(consumed_fen__gte=-amount_fen)
        if not levels.update(consumed_fen=F("consumed_fen") + sign * amount_fen):
            _refuse(level_id, amount_fen, on, kind)
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


def _refuse(level_id: int, amount_fen: int, on: date, kind: BudgetEntryKind) -> None:
    level = Budget.objects.get(pk=level_id)
    if kind == BudgetEntryKind.ADJUST and amount_fen < 0:
        raise StateConflict(
            _("Budget %(code)s has consumed less than the %(amount)s that would move out of it.")
            % {"code": level.code, "amount": money_text(fen_to_decimal(-amount_fen))}
        )
    if kind == BudgetEntryKind.CONSUME and not level.period_start <= on <= level.period_end:
        raise BudgetExhausted(
            level,
            amount_fen,
            _("Budget %(code)s is not open on %(on)s (%(start)s to %(end)s).")
            % {"code": level.code, "on": on, "start": level.period_start, "end": level.period_end},
        )
    raise BudgetExhausted(level, amount_fen)


@transaction.atomic
def budget_consume(
    *,
    budget: Budget,
    amount_fen: int,
    source: str,
    grant: BenefitGrant | None = None,
    on: date | None = None,
) -> Budget:
    """Consume `amount_fen` for business date `on` (default today) from the budget of
    `budget`'s line open on that date and every parent (one conditional UPDATE per level,
    leaf first); returns the budget charged. If any level has no room, `BudgetExhausted` is
    raised and the transaction leaves nothing written."""
    on = on or today_in_shanghai()
    charged = budget_for_date(budget, on)
    if amount_fen <= 0:
        return charged
    _chain_move(
        budget_id=charged.pk,
        amount_fen=amount_fen,
        kind=BudgetEntryKind.CONSUME,
        entries=[(amount_fen, source, grant.pk if grant is not None else None)],
        on=on,
    )
    return charged


@transaction.atomic
def budget_consume_many(
    *, budget_id: int, charges: list[tuple[int, str]], on: date | None = None
) -> int:
    """Consume many charges (amount in fen, source) for business date `on` (default today)
    at once: ONE conditional UPDATE per level of the chain for their total, leaf first, and
    one ledger entry per charge and level; returns the id of the budget charged (the line's
    budget open on `on`). All or nothing: if the total does not fit, `BudgetExhausted` is
    raised and nothing is written (the caller may then try the charges one by one with
    `budget_consume`)."""
    on = on or today_in_shanghai()
    charged = budget_for_date(budget_id, on)
    total = sum(amount for amount, _ in charges)
    if total <= 0:
        return charged.pk
    _chain_move(
        budget_id=charged.pk,
        amount_fen=total,
        kind=BudgetEntryKind.CONSUME,
        entries=[(amount, source, None) for amount, source in charges],
        on=on,
    )
    return charged.pk


def budget_consume_up_to(
    *, budget: Budget, unit_fen: int, wanted: int, source: str, on: date | None = None
) -> tuple[int, str, int]:
    """Consume, for business date `on` (default today), room for as many units (≤ wanted)
    as the chain of the line's budget open on `on` has; return how many, the code of a budget
    that is not open on `on` ("" if all are) and the id of the budget charged. Parents get
    one entry for the whole amount; the caller writes the leaf's entries, one per unit, with
    the set-based statement that inserts the units (`entitlement_grants_run`)."""
    today = on or today_in_shanghai()
    try:
        budget = budget_for_date(budget, today)
    except BudgetNotOpen:
        return 0, budget.code, budget.pk
    if wanted == 0:
        return 0, "", budget.pk
    chain = _budget_chain(budget.pk)
    closed = (
        Budget.objects.filter(pk__in=chain)
        .exclude(period_start__lte=today, period_end__gte=today)
        .values_list("code", flat=True)
        .first()
    )
    if closed:
        return 0, closed, budget.pk
    if unit_fen == 0:
        return wanted, "", budget.pk
    for _attempt in range(5):
        levels = Budget.objects.filter(pk__in=chain).values("amount_fen", "consumed_fen")
        room = min((level["amount_fen"] - level["consumed_fen"]) // unit_fen for level in levels)
        count = max(0, min(wanted, room))
        if count == 0:
            return 0, "", budget.pk
        try:
            with transaction.atomic():
                _chain_move(
                    budget_id=budget.pk,
                    amount_fen=count * unit_fen,
                    kind=BudgetEntryKind.CONSUME,
                    entries=[],
                    on=today,
                    parent_source=source,
                )
        except BudgetExhausted:
            continue  # someone consumed concurrently: read again and retry with less
        return count, "", budget.pk
    return 0, "", budget.pk


def budget_consumption_move(
    *, budget: Budget, from_parent: Budget | None, to_parent: Budget | None, source: str
) -> int:
    """Move what `budget` has consumed from the chain above `from_parent` to the chain above
    `to_parent` (None: no parent), the levels both share untouched: an ADJUST entry of −X on
    each level only the old chain has, +X on each level only the new one has (one
    conditional UPDATE each: `BudgetExhausted` when a level has less than X left, and the
    caller's transaction writes nothing). The caller holds `budget`'s row lock (so X cannot
    move meanwhile) and then sets its parent. Returns X in fen."""
    moved = Budget.objects.filter(pk=budget.pk).values_list("consumed_fen", flat=True).get()
    old_chain = _budget_chain(from_parent.pk) if from_parent is not None else []
    new_chain = _budget_chain(to_parent.pk) if to_parent is not None else []
    shared = set(old_chain) & set(new_chain)
    if not moved:
        return 0
    today = today_in_shanghai()
    for levels, amount in (
        ([level for level in old_chain if level not in shared], -moved),
        ([level for level in new_chain if level not in shared], moved),
    ):
        _chain_move(
            budget_id=budget.pk,
            amount_fen=amount,
            kind=BudgetEntryKind.ADJUST,
            entries=[(amount, source, None)],
            on=today,
            chain=levels,
        )
    return moved


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
    """Record (once) every alert threshold crossed by a budget open on the business date
    (default today) and tell the admins."""
    on = business_date or today_in_shanghai()
    raised, refused = [], []
    budgets = Budget.objects.exclude(alert_percents=[]).filter(
        period_start__lte=on, period_end__gte=on
    )
    for budget in budgets:
        try:  # a value that reached the row around the checks: reported, the others go on
            with translation.override("en"):  # the night's report reads in one language
                percents = alert_percents_parse(budget.alert_percents)
        except DomainError as exc:
            refused.append(f"{budget.code}: {exc.message.rstrip('.')}")
            continue
        for percent in percents:
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
    return {
        "raised": len(raised),
        "budgets_refused": len(refused),
        "alerts": raised,
        "refused": refused,
    }
