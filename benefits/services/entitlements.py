"""The nightly grant of tier entitlements: every member gets their tier's benefits once per
period, set-based, for as many as the budget has room for."""

from __future__ import annotations

from datetime import date, timedelta

from django.db import DatabaseError, connection, transaction
from django.utils import timezone, translation

from portal.errors import DomainError
from portal.money import fen_to_decimal
from portal.periods import PERIODS, Period

from ..choices import BudgetEntryKind, EntitlementPeriod, GrantSource, GrantStatus
from ..models import TierEntitlement
from ..rules import BENEFIT_UNIT_COST, ENTITLEMENT_QUANTITY
from .budgets import budget_consume_up_to

__all__ = ["ENTITLEMENT_PERIODS", "entitlement_grants_run", "period_of"]

#: an entitlement's period → its calendar period kind (portal.periods)
ENTITLEMENT_PERIODS = {
    EntitlementPeriod.MONTH: PERIODS["MONTH"],
    EntitlementPeriod.QUARTER: PERIODS["QUARTER"],
    EntitlementPeriod.YEAR: PERIODS["YEAR"],
}


def period_of(kind: str, day: date) -> Period:
    """(period key, first day, last day) of the entitlement period containing `day`."""
    return ENTITLEMENT_PERIODS[kind].period(day)


def entitlement_grants_run(*, business_date: date) -> dict:
    """Grant every member the entitlements of their current tier for the period containing
    the business date, once per member, benefit, period and unit (idempotency key). Per
    entitlement, candidates are found with one statement, the budget is consumed for as many
    as it has room for (one conditional UPDATE per budget level) and the grants inserted in
    one statement; a shortfall is reported, never overspent. The budget charged is the one of
    the benefit's budget line whose period contains the business date."""
    granted = skipped = 0
    shortfalls = []
    refused = []
    entitlements = TierEntitlement.objects.select_related("benefit__budget", "tier").filter(
        benefit__active=True, quantity__gt=0
    )
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    for entitlement in entitlements:
        problem = _entitlement_problem(entitlement)
        if problem:  # a row that reached the table around the checks: reported, skipped
            refused.append(problem)
            continue
        try:
            done, wanted, closed = _entitlement_grant(entitlement, business_date, now)
        except (DatabaseError, DomainError) as exc:
            refused.append(
                f"{entitlement.benefit.code}/{entitlement.tier.code}: {type(exc).__name__}: {exc}"
            )
            continue
        granted += done
        if done < wanted:
            skipped += wanted - done
            why = f" (budget {closed} is not open on {business_date})" if closed else ""
            shortfalls.append(f"{entitlement.benefit.code}: {wanted - done} not granted{why}")
    return {
        "granted": granted,
        "not_granted_budget": skipped,
        "entitlements_refused": len(refused),
        "shortfalls": shortfalls,
        "refused": refused,
    }


def _entitlement_problem(entitlement: TierEntitlement) -> str:
    """Why a stored entitlement cannot be granted ("" when it can): the bounds every door
    checks (`benefits.rules`), read again by the night."""
    where = f"{entitlement.benefit.code}/{entitlement.tier.code}"
    with translation.override("en"):  # the night's report reads in one language
        problems = _problems(entitlement)
    if entitlement.period not in ENTITLEMENT_PERIODS:
        problems.append(f"unknown period {entitlement.period!r}")
    return f"{where}: " + " ".join(problems).rstrip(".") if problems else ""


def _problems(entitlement: TierEntitlement) -> list[str]:
    return [
        problem
        for problem in (
            ENTITLEMENT_QUANTITY.problem(entitlement.quantity),
            BENEFIT_UNIT_COST.problem(fen_to_decimal(entitlement.benefit.unit_cost_fen)),
        )
        if problem
    ]


def _entitlement_grant(entitlement: TierEntitlement, business_date: date, now) -> tuple:
    """Grant one entitlement to every member of its tier who lacks it this period, for as
    many as the budget has room for, in a transaction of its own (a failure leaves nothing
    of this entitlement and the others go on). (granted, wanted, closed budget or None)."""
    benefit = entitlement.benefit
    key, _start, end = period_of(entitlement.period, business_date)
    expires = end
    if benefit.validity_days:
        expires = min(end, business_date + timedelta(days=benefit.validity_days))
    prefix = f"ENT:{benefit.code}:{key}:"
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS ent_candidates")
        cursor.execute(
            """
CREATE TEMP TABLE ent_candidates AS
WITH RECURSIVE units (unit) AS (
SELECT 1 UNION ALL SELECT unit + 1 FROM units WHERE unit < %(quantity)s
)
SELECT m.id AS member_id,
CAST(%(prefix)s AS varchar(60)) || m.id || ':' || u.unit AS grant_key
FROM members_member m CROSS JOIN units u
WHERE m.tier_id = %(tier)s AND m.status = 'ACTIVE'
  AND NOT EXISTS (SELECT 1 FROM benefits_benefitgrant g
              WHERE g.idempotency_key
                  = CAST(%(prefix)s AS varchar(60)) || m.id || ':' || u.unit)
""",
            {"prefix": prefix, "tier": entitlement.tier_id, "quantity": entitlement.quantity},
        )
        cursor.execute("SELECT COUNT(*) FROM ent_candidates")
        wanted = cursor.fetchone()[0]
        affordable, closed, budget_id = budget_consume_up_to(
            budget=benefit.budget,
            unit_fen=benefit.unit_cost_fen,
            wanted=wanted,
            source=f"entitlement {benefit.code} {key}",
            on=business_date,
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
                    "budget": budget_id,
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
    return affordable, wanted, closed
