"""Writes of the benefits app: budgets, grants, redemption, nightly entitlement grants,
expiry and budget alerts."""

from __future__ import annotations

from datetime import date, timedelta

from django.core.mail import mail_admins
from django.db import IntegrityError, connection, transaction
from django.db.models import F, Sum
from django.utils import timezone

from members.feeds import today_in_shanghai
from members.tiers import add_months, month_start
from portal.approvals import approval_request_create, approval_settle
from portal.choices import ApprovalKind
from portal.money import decimal_to_fen
from portal.services import audit_record

from .choices import BudgetEntryKind, EntitlementPeriod, GrantSource, GrantStatus
from .models import Benefit, BenefitGrant, Budget, BudgetAlert, BudgetEntry, TierEntitlement


class BudgetExhausted(Exception):
    """The budget (or one of its parents) has no room for this amount; nothing was written."""

    def __init__(self, budget: Budget | int, amount_fen: int, reason: str = "") -> None:
        code = budget.code if isinstance(budget, Budget) else f"#{budget}"
        super().__init__(reason or f"Budget {code} has no room for {amount_fen / 100:.2f} CNY.")
        self.budget = budget
        self.amount_fen = amount_fen


class GrantNotRedeemable(Exception):
    """The grant is already redeemed, expired or revoked."""


def _budget_chain(budget_id: int) -> list[int]:
    """The budget and its parents, leaf first (the lock order every consumer follows)."""
    chain, current = [], budget_id
    while current is not None:
        chain.append(current)
        current = Budget.objects.filter(pk=current).values_list("parent_id", flat=True).first()
    return chain


@transaction.atomic
def budget_consume(
    *, budget: Budget, amount_fen: int, source: str, grant: BenefitGrant | None = None
) -> None:
    """Consume `amount_fen` from the budget and every parent, each with ONE conditional
    UPDATE (consumed + amount ≤ amount, inside the period), leaf first. If any level has no
    room, `BudgetExhausted` is raised and the transaction leaves nothing written."""
    if amount_fen <= 0:
        return
    _chain_consume(
        budget_id=budget.pk, amount_fen=amount_fen, entries=[(amount_fen, source, grant)]
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
    _chain_consume(
        budget_id=budget_id,
        amount_fen=total,
        entries=[(amount, source, None) for amount, source in charges],
    )


def _chain_consume(
    *, budget_id: int, amount_fen: int, entries: list[tuple[int, str, BenefitGrant | None]]
) -> None:
    """The one place a budget is consumed: per level of the chain, leaf first, a conditional
    UPDATE for `amount_fen`, then the ledger entries (amount, source, grant) of that level."""
    today = today_in_shanghai()
    for level_id in _budget_chain(budget_id):
        updated = Budget.objects.filter(
            pk=level_id,
            consumed_fen__lte=F("amount_fen") - amount_fen,
            period_start__lte=today,
            period_end__gte=today,
        ).update(consumed_fen=F("consumed_fen") + amount_fen)
        if not updated:
            level = Budget.objects.get(pk=level_id)
            if not level.period_start <= today <= level.period_end:
                raise BudgetExhausted(
                    level,
                    amount_fen,
                    f"Budget {level.code} is not open today ({level.period_start} to "
                    f"{level.period_end}).",
                )
            raise BudgetExhausted(level, amount_fen)
        BudgetEntry.objects.bulk_create(
            BudgetEntry(
                budget_id=level_id,
                kind=BudgetEntryKind.CONSUME,
                amount_fen=amount,
                source=source[:100],
                grant=grant,
            )
            for amount, source, grant in entries
            if amount
        )


@transaction.atomic
def budget_release(
    *, budget: Budget, amount_fen: int, source: str, grant: BenefitGrant | None = None
) -> None:
    """Give `amount_fen` back to the budget and its parents (revoked or expired grants)."""
    for level_id in _budget_chain(budget.pk):
        Budget.objects.filter(pk=level_id).update(consumed_fen=F("consumed_fen") - amount_fen)
        BudgetEntry.objects.create(
            budget_id=level_id,
            kind=BudgetEntryKind.RELEASE,
            amount_fen=-amount_fen,
            source=source[:100],
            grant=grant,
        )


def grant_create(
    *,
    member,
    benefit: Benefit,
    budget: Budget,
    source: str,
    idempotency_key: str,
    expires_on: date,
    actor=None,
    period_key: str = "",
) -> BenefitGrant:
    """Grant a benefit once per idempotency key, charging its unit cost to the budget in the
    same transaction. The same key again returns the first grant; an exhausted budget raises
    `BudgetExhausted` and writes nothing."""
    existing = BenefitGrant.objects.filter(idempotency_key=idempotency_key).first()
    if existing is not None:
        return existing
    try:
        with transaction.atomic():
            grant = BenefitGrant.objects.create(
                member=member,
                benefit=benefit,
                source=source,
                budget=budget,
                cost_fen=benefit.unit_cost_fen,
                idempotency_key=idempotency_key,
                period_key=period_key,
                expires_on=expires_on,
                granted_by=actor if getattr(actor, "pk", None) else None,
            )
            budget_consume(
                budget=budget,
                amount_fen=benefit.unit_cost_fen,
                source=f"{source} {benefit.code}",
                grant=grant,
            )
            audit_record(
                actor=actor,
                action="grant.create",
                obj=grant,
                changes={"benefit": benefit.code, "cost": f"{grant.cost:.2f}"},
            )
    except IntegrityError:
        # Another request created the same key first (unique constraint): that one counts.
        return BenefitGrant.objects.get(idempotency_key=idempotency_key)
    return grant


def grant_redeem(*, grant: BenefitGrant, actor=None) -> BenefitGrant:
    """GRANTED and not expired → REDEEMED, exactly once; otherwise `GrantNotRedeemable`."""
    today = today_in_shanghai()
    with transaction.atomic():
        updated = BenefitGrant.objects.filter(
            pk=grant.pk, status=GrantStatus.GRANTED, expires_on__gte=today
        ).update(status=GrantStatus.REDEEMED, redeemed_at=timezone.now())
        grant.refresh_from_db()
        if not updated:
            state = grant.get_status_display() if grant.status != GrantStatus.GRANTED else None
            raise GrantNotRedeemable(
                f"Grant #{grant.pk} is {state}." if state else f"Grant #{grant.pk} has expired."
            )
        audit_record(actor=actor, action="grant.redeem", obj=grant)
    return grant


def grant_revoke(*, grant: BenefitGrant, actor, reason: str) -> BenefitGrant:
    """GRANTED → REVOKED; the cost goes back to the budget."""
    with transaction.atomic():
        updated = BenefitGrant.objects.filter(pk=grant.pk, status=GrantStatus.GRANTED).update(
            status=GrantStatus.REVOKED, closed_at=timezone.now()
        )
        grant.refresh_from_db()
        if not updated:
            raise GrantNotRedeemable(f"Grant #{grant.pk} is {grant.get_status_display()}.")
        budget_release(budget=grant.budget, amount_fen=grant.cost_fen, source="revoke", grant=grant)
        audit_record(actor=actor, action="grant.revoke", obj=grant, reason=reason)
    return grant


# --- nightly steps ----------------------------------------------------------------------------


def period_of(kind: str, day: date) -> tuple[str, date, date]:
    """(period key, first day, last day) of the entitlement period containing `day`."""
    if kind == EntitlementPeriod.MONTH:
        start, months = month_start(day), 1
        key = f"{start:%Y-%m}"
    elif kind == EntitlementPeriod.QUARTER:
        start, months = date(day.year, 3 * ((day.month - 1) // 3) + 1, 1), 3
        key = f"{day.year}-Q{(day.month - 1) // 3 + 1}"
    else:
        start, months = date(day.year, 1, 1), 12
        key = f"{day.year}"
    return key, start, add_months(start, months) - timedelta(days=1)


def entitlement_grants_run(*, business_date: date) -> dict:
    """Grant every member the entitlements of their current tier for the period containing
    the business date, once per member, benefit, period and unit (idempotency key). Per
    entitlement, candidates are found with one statement, the budget is consumed for as many
    as it has room for (one conditional UPDATE per budget level) and the grants inserted in
    one statement; a shortfall is reported, never overspent."""
    granted = skipped = 0
    shortfalls = []
    entitlements = TierEntitlement.objects.select_related("benefit__budget", "tier").filter(
        benefit__active=True, quantity__gt=0
    )
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    for entitlement in entitlements:
        benefit = entitlement.benefit
        key, _start, end = period_of(entitlement.period, business_date)
        expires = end
        if benefit.validity_days:
            expires = min(end, business_date + timedelta(days=benefit.validity_days))
        prefix = f"ENT:{benefit.code}:{key}:"
        units = " UNION ALL ".join(
            f"SELECT {i} AS unit" for i in range(1, entitlement.quantity + 1)
        )
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("DROP TABLE IF EXISTS ent_candidates")
            cursor.execute(
                f"""
CREATE TEMP TABLE ent_candidates AS
SELECT m.id AS member_id,
    CAST(%(prefix)s AS varchar(60)) || m.id || ':' || u.unit AS grant_key
FROM members_member m CROSS JOIN ({units}) u
WHERE m.tier_id = %(tier)s AND m.status = 'ACTIVE'
  AND NOT EXISTS (SELECT 1 FROM benefits_benefitgrant g
                  WHERE g.idempotency_key
                      = CAST(%(prefix)s AS varchar(60)) || m.id || ':' || u.unit)
""",
                {"prefix": prefix, "tier": entitlement.tier_id},
            )
            cursor.execute("SELECT COUNT(*) FROM ent_candidates")
            wanted = cursor.fetchone()[0]
            affordable, closed = _consume_up_to(
                budget=benefit.budget,
                unit_fen=benefit.unit_cost_fen,
                wanted=wanted,
                source=f"entitlement {benefit.code} {key}",
            )
            if affordable:
                cursor.execute(
                    """
INSERT INTO benefits_benefitgrant
    (member_id, benefit_id, source, budget_id, cost_fen, status, idempotency_key, period_key,
     granted_at, expires_on)
SELECT c.member_id, %(benefit)s, %(source)s, %(budget)s, %(cost)s, %(status)s, c.grant_key,
    %(period)s, %(now)s, %(expires)s
FROM ent_candidates c
ORDER BY c.member_id, c.grant_key
LIMIT %(limit)s
""",
                    {
                        "benefit": benefit.pk,
                        "source": GrantSource.ENTITLEMENT,
                        "budget": benefit.budget_id,
                        "cost": benefit.unit_cost_fen,
                        "status": GrantStatus.GRANTED,
                        "period": key,
                        "now": now,
                        "expires": expires.isoformat(),
                        "limit": affordable,
                    },
                )
                # One ledger entry per grant on the benefit's own budget.
                cursor.execute(
                    """
INSERT INTO benefits_budgetentry (budget_id, kind, amount_fen, source, grant_id, created_at)
SELECT g.budget_id, %(kind)s, g.cost_fen, %(source)s, g.id, %(now)s
FROM benefits_benefitgrant g JOIN ent_candidates c ON c.grant_key = g.idempotency_key
""",
                    {
                        "kind": BudgetEntryKind.CONSUME,
                        "source": f"entitlement {benefit.code} {key}"[:100],
                        "now": now,
                    },
                )
            cursor.execute("DROP TABLE ent_candidates")
        granted += affordable
        if affordable < wanted:
            skipped += wanted - affordable
            why = f" (budget {closed} is not open today)" if closed else ""
            shortfalls.append(f"{benefit.code}: {wanted - affordable} not granted{why}")
    return {"granted": granted, "not_granted_budget": skipped, "shortfalls": shortfalls}


def _consume_up_to(*, budget: Budget, unit_fen: int, wanted: int, source: str) -> tuple[int, str]:
    """Consume room for as many units (≤ wanted) as the budget chain has; return how many,
    and the code of a budget of the chain that is not open today ("" if all are). Parents
    get one aggregate entry; the caller writes the per-grant entries of the leaf."""
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
        levels = list(
            Budget.objects.filter(pk__in=chain).values("pk", "amount_fen", "consumed_fen")
        )
        room = min((lvl["amount_fen"] - lvl["consumed_fen"]) // unit_fen for lvl in levels)
        count = max(0, min(wanted, room))
        if count == 0:
            return 0, ""
        amount = count * unit_fen
        try:
            with transaction.atomic():
                for position, level_id in enumerate(chain):
                    updated = Budget.objects.filter(
                        pk=level_id, consumed_fen__lte=F("amount_fen") - amount
                    ).update(consumed_fen=F("consumed_fen") + amount)
                    if not updated:
                        raise BudgetExhausted(level_id, amount)
                    if position > 0:
                        BudgetEntry.objects.create(
                            budget_id=level_id,
                            kind=BudgetEntryKind.CONSUME,
                            amount_fen=amount,
                            source=source[:100],
                        )
        except BudgetExhausted:
            continue  # someone consumed concurrently: read again and retry with less
        return count, ""
    return 0, ""


def grants_expire(*, business_date: date) -> dict:
    """GRANTED grants whose expiry date has passed → EXPIRED; their cost is released."""
    expired = released = 0
    candidates = (
        BenefitGrant.objects.filter(status=GrantStatus.GRANTED, expires_on__lt=business_date)
        .values("budget_id")
        .annotate(total=Sum("cost_fen"))
    )
    now = timezone.now()
    for row in candidates:
        with transaction.atomic():
            grants = BenefitGrant.objects.select_for_update().filter(
                status=GrantStatus.GRANTED,
                expires_on__lt=business_date,
                budget_id=row["budget_id"],
            )
            ids = list(grants.values_list("id", "cost_fen"))
            if not ids:
                continue
            total = sum(cost for _id, cost in ids)
            BenefitGrant.objects.filter(pk__in=[i for i, _c in ids]).update(
                status=GrantStatus.EXPIRED, closed_at=now
            )
            chain = _budget_chain(row["budget_id"])
            for position, level_id in enumerate(chain):
                Budget.objects.filter(pk=level_id).update(consumed_fen=F("consumed_fen") - total)
                if position == 0:
                    BudgetEntry.objects.bulk_create(
                        BudgetEntry(
                            budget_id=level_id,
                            kind=BudgetEntryKind.RELEASE,
                            amount_fen=-cost,
                            source="expiry",
                            grant_id=grant_id,
                        )
                        for grant_id, cost in ids
                    )
                else:
                    BudgetEntry.objects.create(
                        budget_id=level_id,
                        kind=BudgetEntryKind.RELEASE,
                        amount_fen=-total,
                        source="expiry of child budget grants",
                    )
            expired += len(ids)
            released += total
    return {"expired": expired, "released_fen": released}


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


# --- manual grants and feedback -------------------------------------------------------------


def manual_grant(*, member, benefit: Benefit, reason: str, actor):
    """An account manager grants a benefit by hand to a customer in their scope. Up to
    BENEFIT_MANUAL_GRANT_LIMIT_FEN it is granted at once; above it a budget approver must
    approve (returns the pending request)."""
    from django.conf import settings

    from members.selectors import member_scope
    from portal.permissions import user_can

    from .models import ManualGrantRequest

    if not user_can(actor, "benefits.grant_manually"):
        raise PermissionError("Your role cannot grant benefits by hand.")
    if not member_scope(user=actor).filter(pk=member.pk).exists():
        raise PermissionError(
            "This customer is not in your scope: only their account manager or a branch "
            "manager of their branch can grant them a benefit."
        )
    if not reason.strip():
        raise ValueError("A reason is required for a manual grant.")
    if benefit.unit_cost_fen > settings.BENEFIT_MANUAL_GRANT_LIMIT_FEN:
        with transaction.atomic():
            request = ManualGrantRequest.objects.create(
                member=member,
                benefit=benefit,
                budget=benefit.budget,
                reason=reason,
                requested_by=actor,
            )
            audit_record(actor=actor, action="manual_grant.request", obj=request, reason=reason)
            approval_request_create(
                kind=ApprovalKind.MANUAL_GRANT,
                obj=request,
                summary=f"{benefit.code} → {member.member_no}: {benefit.unit_cost:.2f} CNY",
                proposal={
                    "member": member.member_no,
                    "benefit": f"{benefit.code} {benefit.name}",
                    "cost": f"{benefit.unit_cost:.2f}",
                    "budget": benefit.budget.code,
                },
                reason=reason,
                branch=member.branch,
                actor=actor,
            )
        return request
    return grant_create(
        member=member,
        benefit=benefit,
        budget=benefit.budget,
        source=GrantSource.MANUAL,
        idempotency_key=f"MAN:{member.pk}:{benefit.pk}:{timezone.now().timestamp()}",
        expires_on=today_in_shanghai() + timedelta(days=benefit.validity_days or 90),
        actor=actor,
    )


def manual_grant_decide(*, request, approve: bool, actor, comment: str = ""):
    """A budget approver (never the requester) approves — the grant is made, charged to the
    budget — or rejects a manual grant request."""
    from portal.permissions import user_can

    from .choices import RequestStatus
    from .models import ManualGrantRequest

    with transaction.atomic():
        request = ManualGrantRequest.objects.select_for_update().get(pk=request.pk)
        if request.status != RequestStatus.PENDING:
            raise ValueError("This request has already been decided.")
        if request.requested_by_id == actor.pk:
            raise PermissionError("You cannot decide your own request.")
        if not user_can(actor, "benefits.approve_manual_grant"):
            raise PermissionError("Only a budget approver can decide manual grants.")
        if approve:
            request.grant = grant_create(
                member=request.member,
                benefit=request.benefit,
                budget=request.budget,
                source=GrantSource.MANUAL,
                idempotency_key=f"MANREQ:{request.pk}",
                expires_on=today_in_shanghai()
                + timedelta(days=request.benefit.validity_days or 90),
                actor=actor,
            )
        request.status = RequestStatus.APPROVED if approve else RequestStatus.REJECTED
        request.decided_by, request.decided_at = actor, timezone.now()
        request.save()
        audit_record(
            actor=actor,
            action="manual_grant.approve" if approve else "manual_grant.reject",
            obj=request,
            reason=comment,
        )
        approval_settle(
            kind=ApprovalKind.MANUAL_GRANT,
            obj=request,
            approved=approve,
            actor=actor,
            comment=comment,
        )
    return request


def benefit_feedback_record(*, member, benefit: Benefit, useful: bool, reason: str, actor):
    """An account manager records whether a benefit suits their customer (one in their
    scope)."""
    from members.selectors import member_scope
    from portal.permissions import user_can

    from .models import BenefitFeedback

    if not user_can(actor, "benefits.leave_feedback"):
        raise PermissionError("Your role cannot leave feedback on benefits.")
    if not member_scope(user=actor).filter(pk=member.pk).exists():
        raise PermissionError(
            "This customer is not in your scope: only their account manager or a branch "
            "manager of their branch can leave feedback for them."
        )
    return BenefitFeedback.objects.create(
        member=member, benefit=benefit, useful=useful, reason=reason, author=actor
    )


# --- budget creation and increase: maker-checker ----------------------------------------------


class BudgetProposalError(ValueError):
    """A proposed budget or budget increase is not valid (the message says what to fix)."""


#: the budget fields a creation request proposes, in the order the checker reads them
BUDGET_PROPOSAL_FIELDS = (
    "code",
    "name",
    "department",
    "parent",
    "period_start",
    "period_end",
    "amount",
    "alert_percents",
)


def _budget_proposal_check(values: dict) -> None:
    from decimal import Decimal, InvalidOperation

    try:
        amount = Decimal(str(values["amount"]))
    except (InvalidOperation, KeyError):
        raise BudgetProposalError("The amount must be a number of yuan, e.g. 150000.00.") from None
    if amount <= 0 or amount != amount.quantize(Decimal("0.01")):
        raise BudgetProposalError("The amount must be positive, to the fen (2 decimals).")
    if date.fromisoformat(str(values["period_end"])) < date.fromisoformat(
        str(values["period_start"])
    ):
        raise BudgetProposalError("The period must end on or after its start.")


def budget_create_request(*, values: dict, actor, reason: str = ""):
    """Propose a new budget (fields as in `BUDGET_PROPOSAL_FIELDS`; department and parent by
    code). Nothing is created until a budget approver other than `actor` approves."""
    from portal.models import Department
    from portal.permissions import user_can

    if not user_can(actor, "benefits.configure_budgets"):
        raise PermissionError("Your role cannot propose budgets.")
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
            kind=ApprovalKind.BUDGET_CREATE,
            summary=f"{values['code']} {values['name']}: {values['amount']} CNY",
            current={},
            proposal=values,
            reason=reason,
            actor=actor,
        )


def budget_create(*, values: dict, actor, approval) -> Budget:
    """Create the budget an approved request proposed (called by the approval, in its
    transaction)."""
    from decimal import Decimal

    from portal.models import Department

    _budget_proposal_check(values)
    if Budget.objects.filter(code=values["code"]).exists():
        raise BudgetProposalError(f"A budget with code {values['code']} already exists.")
    budget = Budget.objects.create(
        code=values["code"],
        name=values["name"],
        department=Department.objects.get(code=values["department"]),
        parent=Budget.objects.get(code=values["parent"]) if values.get("parent") else None,
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
    from decimal import Decimal

    from portal.permissions import user_can

    if not user_can(actor, "benefits.configure_budgets"):
        raise PermissionError("Your role cannot change budgets.")
    amount = Decimal(str(amount))
    _budget_proposal_check(
        {"amount": amount, "period_start": budget.period_start, "period_end": budget.period_end}
    )
    if amount <= budget.amount:
        raise BudgetProposalError(
            f"{amount:.2f} is not above the current amount {budget.amount:.2f}."
        )
    with transaction.atomic():
        return approval_request_create(
            kind=ApprovalKind.BUDGET_INCREASE,
            obj=budget,
            summary=f"{budget.code}: {budget.amount:.2f} → {amount:.2f} CNY",
            current={"amount": f"{budget.amount:.2f}"},
            proposal={"amount": f"{amount:.2f}"},
            reason=reason,
            actor=actor,
        )


def budget_amount_raise(*, budget: Budget, from_amount: str, to_amount: str, actor, approval):
    """Apply an approved increase: the amount becomes `to_amount`, provided it is still
    `from_amount` (a budget changed since the request is not silently overwritten)."""
    from decimal import Decimal

    changed = Budget.objects.filter(
        pk=budget.pk, amount_fen=decimal_to_fen(Decimal(from_amount))
    ).update(amount_fen=decimal_to_fen(Decimal(to_amount)))
    if not changed:
        raise BudgetProposalError(
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
    from decimal import Decimal

    from portal.permissions import user_can

    if not user_can(actor, "benefits.configure_budgets"):
        raise PermissionError("Your role cannot change budgets.")
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
