"""Changing budgets: a new budget, an increase and a new parent are proposals a budget
approver other than the proposer decides (`benefits.approvals`); lowering applies at once,
never below what is consumed, and so do names, line, period and alert thresholds
(`budget_update`, the one door of the admin and the API).

Every proposal shows its impact, computed here by the code the approval applies: the
budget's standing (consumed, committed, left) and its burn forecast at the spend rate of
the last 30 days (`budget_forecast`), and the room each parent concerned has left to give
before and after (`budget_creation_impact`, `budget_increase_impact`,
`budget_parent_change_impact`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from django.db import transaction
from django.db.models import Sum
from django.utils.translation import gettext as _

from portal.approvals import approval_is_pending, approval_request_create
from portal.clock import day_start, today_in_shanghai
from portal.errors import InvalidInput, NotAllowed, StateConflict
from portal.models import Department
from portal.money import decimal_to_fen, fen_to_decimal, yuan_text
from portal.permissions import user_can
from portal.services import audit_record

from ..choices import BenefitApproval, BudgetEntryKind, GrantStatus
from ..models import BenefitGrant, Budget, BudgetEntry
from ..rules import (
    alert_percents_parse,
    budget_parent_alone_problem,
    budget_parent_problems,
    budget_parent_room,
    budget_values_problems,
)
from .budgets import budget_consumption_move


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


def _unknown_parent(code: str) -> str:
    return _("Unknown parent budget %(code)s.") % {"code": code}


def _code_taken(code: str) -> str:
    return _("A budget with code %(code)s already exists.") % {"code": code}


def _budget_proposal_check(values: dict, *, budget: Budget | None = None) -> None:
    """The bounds and rules of `benefits.rules.budget_values_problems` (amount, period,
    alert thresholds, parent), then the line's periods: the first problem, with its field."""
    start = date.fromisoformat(str(values["period_start"]))
    end = date.fromisoformat(str(values["period_end"]))
    parent = values.get("parent")
    if isinstance(parent, str) and parent:
        parent = Budget.objects.filter(code=parent).first()
        if parent is None:
            raise BudgetProposalError(_unknown_parent(values["parent"]), field="parent")
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
        raise NotAllowed(_("Your role cannot propose budgets."))
    values = {name: values.get(name) for name in BUDGET_PROPOSAL_FIELDS}
    _budget_proposal_check(values)
    if Budget.objects.filter(code=values["code"]).exists():
        raise BudgetProposalError(_code_taken(values["code"]), field="code")
    if not Department.objects.filter(code=values["department"]).exists():
        raise BudgetProposalError(
            _("Unknown department %(code)s.") % {"code": values["department"]}, field="department"
        )
    with transaction.atomic():
        return approval_request_create(
            kind=BenefitApproval.BUDGET_CREATE,
            summary=f"{values['name']}: {yuan_text(Decimal(str(values['amount'])))}",
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
        raise BudgetProposalError(_code_taken(values["code"]), field="code")
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
        raise NotAllowed(_("Your role cannot change budgets."))
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
            _("%(amount)s is not above the current amount %(current)s.")
            % {"amount": yuan_text(amount), "current": yuan_text(budget.amount)},
            field="amount",
        )
    with transaction.atomic():
        return approval_request_create(
            kind=BenefitApproval.BUDGET_INCREASE,
            obj=budget,
            summary=f"{budget.name}: {yuan_text(budget.amount)} → {yuan_text(amount)}",
            current={"amount": f"{budget.amount:.2f}"},
            proposal={"amount": f"{amount:.2f}"},
            reason=reason,
            actor=actor,
        )


@transaction.atomic
def budget_increase_apply(*, budget: Budget, from_amount: str, to_amount: str, actor, approval):
    """Apply an approved increase (called by the approval engine): the amount becomes
    `to_amount`, provided it is still `from_amount` (a budget changed since the request is
    not silently overwritten) and still fits in what its parent has not given to others."""
    if problems := budget_parent_problems(
        parent=budget.parent,
        amount_fen=decimal_to_fen(Decimal(to_amount)),
        period_start=budget.period_start,
        period_end=budget.period_end,
        budget=budget,
    ):
        raise StateConflict(next(iter(problems.values())))
    changed = Budget.objects.filter(
        pk=budget.pk, amount_fen=decimal_to_fen(Decimal(from_amount))
    ).update(amount_fen=decimal_to_fen(Decimal(to_amount)))
    if not changed:
        raise StateConflict(
            _(
                "Budget %(code)s no longer has the amount %(amount)s; ask for a new increase "
                "from its current amount."
            )
            % {"code": budget.code, "amount": yuan_text(Decimal(from_amount))}
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
        raise NotAllowed(_("Your role cannot change budgets."))
    amount_fen = decimal_to_fen(Decimal(str(amount)))
    before = budget.amount
    with transaction.atomic():
        # locked, so that no child is given more meanwhile; never below what it has given
        locked = Budget.objects.select_for_update().get(pk=budget.pk)
        given = locked.children.aggregate(total=Sum("amount_fen"))["total"] or 0
        if amount_fen < given:
            raise BudgetProposalError(
                _(
                    "%(amount)s is below what %(code)s has given to the budgets under it "
                    "(%(given)s): lower those first."
                )
                % {
                    "amount": yuan_text(Decimal(str(amount))),
                    "code": budget.code,
                    "given": yuan_text(fen_to_decimal(given)),
                },
                field="amount",
            )
        changed = Budget.objects.filter(
            pk=budget.pk, consumed_fen__lte=amount_fen, amount_fen__gte=amount_fen
        ).update(amount_fen=amount_fen)
    if not changed:
        raise BudgetProposalError(
            _(
                "%(amount)s is below what %(code)s has already consumed, or above its amount "
                "(an increase needs approval)."
            )
            % {"amount": yuan_text(Decimal(amount)), "code": budget.code},
            field="amount",
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


def budget_proposal_values(data: dict) -> dict:
    """A new budget's proposal (`BUDGET_PROPOSAL_FIELDS`, as stored in the request: codes,
    ISO dates, the amount in yuan as text) from the values a form or a serializer
    validated (department and parent as objects, dates, a Decimal amount)."""
    return {
        "code": data["code"],
        "name": data["name"],
        "department": data["department"].code,
        "parent": data["parent"].code if data.get("parent") else None,
        "line": data.get("line") or "",
        "period_start": data["period_start"].isoformat(),
        "period_end": data["period_end"].isoformat(),
        "amount": f"{Decimal(data['amount']):.2f}",
        "alert_percents": alert_percents_parse(data.get("alert_percents")),
    }


# --- changing a budget: at once, or proposed ------------------------------------------------

#: the fields of a budget that change at once: no money moves with them
BUDGET_FIELDS_AT_ONCE = (
    "code",
    "name",
    "department",
    "line",
    "period_start",
    "period_end",
    "alert_percents",
)


def _first_problem(problems: dict[str, str]) -> None:
    if problems:
        field, problem = next(iter(problems.items()))
        raise BudgetProposalError(problem, field=field)


@transaction.atomic
def budget_update(*, budget: Budget, changes: dict, actor, reason: str = ""):
    """Change a budget (`changes`: fields as a form or serializer validated them, the amount
    as Decimal yuan, department and parent as objects). Code, names, line, period and alert
    thresholds apply at once (audited), a lower amount too (never below what is consumed);
    a higher amount and a new parent are proposals a budget approver other than `actor`
    decides, nothing of them applied until then. A new parent is proposed on its own
    (`budget_parent_alone_problem`). Returns `(budget, approval or None)`."""
    if not user_can(actor, "benefits.configure_budgets"):
        raise NotAllowed(_("Your role cannot change budgets."))
    budget = Budget.objects.select_for_update().get(pk=budget.pk)
    if "alert_percents" in changes:
        changes = {**changes, "alert_percents": alert_percents_parse(changes["alert_percents"])}
    amount = Decimal(str(changes["amount"])) if changes.get("amount") is not None else None
    amount = budget.amount if amount is None else amount
    parent = changes.get("parent", budget.parent)
    moves = (parent.pk if parent is not None else None) != budget.parent_id
    at_once = {
        name: changes[name]
        for name in BUDGET_FIELDS_AT_ONCE
        if name in changes and changes[name] != getattr(budget, name)
    }
    start = at_once.get("period_start", budget.period_start)
    end = at_once.get("period_end", budget.period_end)
    if refusal := budget_parent_alone_problem(
        budget=budget,
        parent=parent,
        amount_fen=decimal_to_fen(amount),
        period_start=start,
        period_end=end,
    ):
        raise BudgetProposalError(refusal, field="parent")
    problems = budget_values_problems(
        amount=amount,
        period_start=start,
        period_end=end,
        parent=parent,
        alert_percents=at_once.get("alert_percents"),
        budget=budget,
    )
    if moves:  # amount and period stay: what does not fit is the new parent
        problems = {
            "parent" if field != "alert_percents" else field: problem
            for field, problem in problems.items()
        }
    _first_problem(problems)
    if "code" in at_once and Budget.objects.filter(code=at_once["code"]).exists():
        raise BudgetProposalError(_code_taken(at_once["code"]), field="code")
    if {"line", "period_start", "period_end"} & set(at_once) and (
        refusal := budget_line_overlap(
            line=at_once.get("line", budget.line),
            period_start=start,
            period_end=end,
            exclude_pk=budget.pk,
        )
    ):
        raise BudgetProposalError(refusal, field="line")
    if at_once:
        before = {name: getattr(budget, name) for name in at_once}
        for name, value in at_once.items():
            setattr(budget, name, value)
        budget.save(update_fields=list(at_once))
        audit_record(
            actor=actor,
            action="budget.change",
            obj=budget,
            changes={name: [str(before[name]), str(value)] for name, value in at_once.items()},
            reason=reason,
        )
    approval = None
    if amount > budget.amount:
        approval = budget_increase_request(budget=budget, amount=amount, actor=actor, reason=reason)
    elif amount < budget.amount:
        budget_amount_lower(budget=budget, amount=amount, actor=actor, reason=reason)
    if moves:
        approval = budget_parent_change_request(
            budget=budget, parent=parent, actor=actor, reason=reason
        )
    budget.refresh_from_db()
    return budget, approval


# --- a new parent -----------------------------------------------------------------------------


def _parent_display(budget: Budget | None) -> str:
    return budget.name if budget is not None else _("None (a top-level budget)")


def _parent_problems(budget: Budget, parent: Budget | None) -> dict[str, str]:
    """Why `budget`, as it is, cannot move under `parent` (`budget_parent_problems`): asked
    when the move is proposed and again when it is approved."""
    return budget_parent_problems(
        parent=parent,
        amount_fen=budget.amount_fen,
        period_start=budget.period_start,
        period_end=budget.period_end,
        budget=budget,
    )


@transaction.atomic
def budget_parent_change_request(*, budget: Budget, parent: Budget | None, actor, reason: str = ""):
    """Propose moving `budget` under `parent` (None: no parent). Its amount must fit in
    what the new parent has not given to its other children, within the parent's period,
    and what it has consumed moves with it (`budget_parent_problems`, checked now and again
    on approval). Nothing changes until a budget approver other than `actor` approves; one
    proposal per budget waits at a time."""
    if not user_can(actor, "benefits.configure_budgets"):
        raise NotAllowed(_("Your role cannot change budgets."))
    # locked: two requests at once wait for each other, so one new parent waits at a time
    budget = (
        Budget.objects.select_for_update(of=("self",)).select_related("parent").get(pk=budget.pk)
    )
    parent = Budget.objects.get(pk=parent.pk) if parent is not None else None  # as it is now
    current = budget.parent
    if (parent.pk if parent is not None else None) == budget.parent_id:
        raise StateConflict(
            _("%(code)s is already under %(parent)s: nothing to change.")
            % {"code": budget.code, "parent": _parent_display(current)},
            code="no_change",
        )
    problems = _parent_problems(budget, parent)
    if problems:
        raise BudgetProposalError(next(iter(problems.values())), field="parent")
    if approval_is_pending(kind=BenefitApproval.BUDGET_PARENT_CHANGE, obj=budget):
        raise StateConflict(
            _(
                "A new parent for %(code)s is already waiting for approval; have it decided "
                "(or withdrawn) first."
            )
            % {"code": budget.code},
            code="change_pending",
        )
    with transaction.atomic():
        return approval_request_create(
            kind=BenefitApproval.BUDGET_PARENT_CHANGE,
            obj=budget,
            summary=f"{budget.name}: "
            + _("parent %(before)s → %(after)s")
            % {
                "before": current.name if current is not None else "—",
                "after": parent.name if parent is not None else "—",
            },
            current={
                "parent": _parent_display(current),
                "parent_code": current.code if current is not None else None,
            },
            proposal={
                "parent": _parent_display(parent),
                "parent_code": parent.code if parent is not None else None,
            },
            reason=reason,
            actor=actor,
        )


def _proposed_parent(code: str | None) -> Budget | None:
    if not code:
        return None
    parent = Budget.objects.filter(code=code).first()
    if parent is None:
        raise StateConflict(
            _("Budget %(code)s no longer exists; reject and propose again.") % {"code": code}
        )
    return parent


@transaction.atomic
def budget_parent_change_apply(*, budget: Budget, approval, actor) -> Budget:
    """Move an approved budget under its new parent (called by the approval engine, the
    budget row locked): refused with `StateConflict` if its parent changed since the
    proposal or the parent's rules no longer hold; what it has consumed moves with it
    (`budget_consumption_move`), and the audit trail says so."""
    from_code = approval.current.get("parent_code")
    if (budget.parent.code if budget.parent_id else None) != from_code:
        raise StateConflict(
            _("%(code)s's parent changed since this proposal; reject it and propose again.")
            % {"code": budget.code}
        )
    old_parent = budget.parent
    parent = _proposed_parent(approval.proposal.get("parent_code"))
    problems = _parent_problems(budget, parent)
    if problems:
        raise StateConflict(next(iter(problems.values())))
    moved = budget_consumption_move(
        budget=budget,
        from_parent=old_parent,
        to_parent=parent,
        source=f"parent change {budget.code}",
    )
    budget.parent = parent
    budget.save(update_fields=["parent"])
    audit_record(
        actor=actor,
        action="budget.parent",
        obj=budget,
        changes={
            "parent": [from_code, parent.code if parent is not None else None],
            "consumption_moved": f"{fen_to_decimal(moved):.2f}",
            "approval": approval.pk,
        },
    )
    return budget


# --- impact: where a budget stands and where it is heading -----------------------------------

#: the spend rate is the net spending per day over this many business days, today included
#: (the rule of the burn-down: `benefits.selectors.budget_burn`)
BURN_WINDOW_DAYS = 30


@dataclass(frozen=True)
class BudgetForecast:
    """A budget's standing (fen) and its burn forecast at the spend rate of the last 30 days.

    `consumed` is spent for good (redeemed grants, task rewards' points); `committed` is
    held by grants given but not yet redeemed (charged to the budget, given back if they
    expire or are revoked); `left` may still be spent: consumed + committed + left = amount.
    """

    amount_fen: int
    consumed_fen: int
    committed_fen: int
    left_fen: int
    period_start: date
    period_end: date
    #: net spending per day (yuan) over the last 30 days; None: no spending yet
    daily_rate: Decimal | None = None
    #: the day the budget runs out at that rate; None: not at that rate (or no spending)
    exhaustion: date | None = None
    #: what will have been consumed (with what is committed) when the period ends, at that
    #: rate, never more than the amount; None: no spending yet
    projected_end_fen: int | None = None

    @property
    def has_spending(self) -> bool:
        return self.daily_rate is not None

    @property
    def runs_out_in_period(self) -> bool:
        return self.exhaustion is not None and self.exhaustion <= self.period_end


def _budgets_below(budget: Budget) -> list[int]:
    """The budget and every budget under it (ids): their grants are charged up to it."""
    ids, level = [budget.pk], [budget.pk]
    while level:
        level = list(
            Budget.objects.filter(parent_id__in=level)
            .exclude(pk__in=ids)
            .values_list("pk", flat=True)
        )
        ids += level
    return ids


def _committed_fen(budget: Budget) -> int:
    """The cost of the grants given, not yet redeemed, charged to the budget or below it."""
    return (
        BenefitGrant.objects.filter(
            budget_id__in=_budgets_below(budget), status=GrantStatus.GRANTED
        ).aggregate(total=Sum("cost_fen"))["total"]
        or 0
    )


def _forecast(
    *,
    amount_fen: int,
    consumed_fen: int,
    committed_fen: int,
    period_start: date,
    period_end: date,
    spending: tuple[bool, int],
    today: date,
) -> BudgetForecast:
    has_spending, recent_fen = spending
    committed_fen = min(committed_fen, consumed_fen)
    standing = {
        "amount_fen": amount_fen,
        "consumed_fen": consumed_fen - committed_fen,
        "committed_fen": committed_fen,
        "left_fen": amount_fen - consumed_fen,
        "period_start": period_start,
        "period_end": period_end,
    }
    if not has_spending:
        return BudgetForecast(**standing)
    since = today - timedelta(days=BURN_WINDOW_DAYS - 1)
    window = max(1, min(BURN_WINDOW_DAYS, (today - max(period_start, since)).days + 1))
    rate = (fen_to_decimal(recent_fen) / window).quantize(Decimal("0.01"))
    exhaustion = None
    if rate > 0:
        exhaustion = today + timedelta(days=int(fen_to_decimal(amount_fen - consumed_fen) / rate))
    days_ahead = max(0, (period_end - today).days)
    projected = min(amount_fen, consumed_fen + decimal_to_fen(max(rate, Decimal(0)) * days_ahead))
    return BudgetForecast(
        **standing, daily_rate=rate, exhaustion=exhaustion, projected_end_fen=projected
    )


def _spending(budget: Budget, today: date) -> tuple[bool, int]:
    """Whether the budget has ever been spent from, and its net spending (fen) over the last
    30 business days, today included. An entry's business date is its day in Asia/Shanghai;
    consumption moving with a budget to another parent (ADJUST) is no spending."""
    entries = BudgetEntry.objects.filter(budget=budget).exclude(kind=BudgetEntryKind.ADJUST)
    if not entries.filter(kind=BudgetEntryKind.CONSUME).exists():
        return False, 0
    since = today - timedelta(days=BURN_WINDOW_DAYS - 1)
    recent = entries.filter(
        created_at__gte=day_start(since), created_at__lt=day_start(today + timedelta(days=1))
    ).aggregate(total=Sum("amount_fen"))["total"]
    return True, recent or 0


def budget_forecast(
    *, budget: Budget, amount_fen: int | None = None, today: date | None = None
) -> BudgetForecast:
    """Where `budget` stands now (read fresh) and, at its spend rate of the last 30
    business days, the day it runs out and what it will have consumed at the end of its
    period — with `amount_fen` instead of its amount when given (an increase as if
    approved)."""
    today = today or today_in_shanghai()
    budget = Budget.objects.get(pk=budget.pk)
    return _forecast(
        amount_fen=budget.amount_fen if amount_fen is None else amount_fen,
        consumed_fen=budget.consumed_fen,
        committed_fen=_committed_fen(budget),
        period_start=budget.period_start,
        period_end=budget.period_end,
        spending=_spending(budget, today),
        today=today,
    )


@dataclass(frozen=True)
class BudgetRoom:
    """What a budget has left to give to its child budgets (fen), before and after."""

    code: str
    name: str
    before_fen: int
    after_fen: int


@dataclass(frozen=True)
class BudgetImpact:
    """What approving a budget proposal does, as the approval applies it."""

    #: the budget as it stands if approved
    forecast: BudgetForecast
    #: what it has left now (None: a new budget)
    left_before_fen: int | None
    #: the room of each budget concerned (parents; a parent's own, for its children)
    rooms: tuple[BudgetRoom, ...] = ()
    #: a new parent: the names of the parent now and then (None: no parent), and what the
    #: budget has consumed, which moves with it
    parent_change: tuple[str | None, str | None] | None = None
    moved_fen: int = 0


def _room(budget: Budget, delta_fen: int, *, without: Budget | None = None) -> BudgetRoom:
    before = budget_parent_room(budget, without=without)
    return BudgetRoom(
        code=budget.code, name=budget.name, before_fen=before, after_fen=before + delta_fen
    )


def budget_creation_impact(*, values: dict, today: date | None = None) -> BudgetImpact:
    """A proposed new budget (`values` as in its request): its standing once created
    (nothing consumed, no spending yet) and its parent's room before and after."""
    amount_fen = decimal_to_fen(Decimal(str(values["amount"])))
    forecast = _forecast(
        amount_fen=amount_fen,
        consumed_fen=0,
        committed_fen=0,
        period_start=date.fromisoformat(str(values["period_start"])),
        period_end=date.fromisoformat(str(values["period_end"])),
        spending=(False, 0),
        today=today or today_in_shanghai(),
    )
    parent = Budget.objects.filter(code=values["parent"]).first() if values.get("parent") else None
    rooms = (_room(parent, -amount_fen),) if parent is not None else ()
    return BudgetImpact(forecast=forecast, left_before_fen=None, rooms=rooms)


def budget_increase_impact(
    *, budget: Budget, amount: Decimal, today: date | None = None
) -> BudgetImpact:
    """A proposed increase to `amount` (yuan): the budget's standing and forecast at the new
    amount, its parent's room (which gives the difference) and, for a budget with children,
    its own room to give them, before and after."""
    budget = Budget.objects.select_related("parent").get(pk=budget.pk)
    amount_fen = decimal_to_fen(Decimal(str(amount)))
    delta = amount_fen - budget.amount_fen
    rooms = []
    if budget.parent is not None:
        rooms.append(_room(budget.parent, -delta))
    if budget.children.exists():
        rooms.append(_room(budget, delta))
    return BudgetImpact(
        forecast=budget_forecast(budget=budget, amount_fen=amount_fen, today=today),
        left_before_fen=budget.amount_fen - budget.consumed_fen,
        rooms=tuple(rooms),
    )


def budget_parent_change_impact(
    *, budget: Budget, parent: Budget | None, today: date | None = None
) -> BudgetImpact:
    """A proposed new parent: the budget's standing and forecast (unchanged), the old and
    the new parent by name with the room each has to give before and after, and what the
    budget has consumed, which moves from the old parent's chain to the new one's."""
    budget = Budget.objects.select_related("parent").get(pk=budget.pk)
    rooms = []
    if budget.parent is not None:
        rooms.append(_room(budget.parent, budget.amount_fen))
    if parent is not None:
        rooms.append(_room(parent, -budget.amount_fen, without=budget))
    return BudgetImpact(
        forecast=budget_forecast(budget=budget, today=today),
        left_before_fen=budget.amount_fen - budget.consumed_fen,
        rooms=tuple(rooms),
        parent_change=(
            budget.parent.name if budget.parent is not None else None,
            parent.name if parent is not None else None,
        ),
        moved_fen=budget.consumed_fen,
    )


__all__ = [
    "BUDGET_FIELDS_AT_ONCE",
    "BUDGET_PROPOSAL_FIELDS",
    "BURN_WINDOW_DAYS",
    "BudgetForecast",
    "BudgetImpact",
    "BudgetProposalError",
    "BudgetRoom",
    "budget_amount_lower",
    "budget_create_apply",
    "budget_create_request",
    "budget_creation_impact",
    "budget_forecast",
    "budget_increase_apply",
    "budget_increase_impact",
    "budget_increase_request",
    "budget_line_overlap",
    "budget_parent_change_apply",
    "budget_parent_change_impact",
    "budget_parent_change_request",
    "budget_proposal_values",
    "budget_update",
]
