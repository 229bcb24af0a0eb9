"""The nightly tier recompute and the simulation of a draft scheme (the engine is
`members.tiers`: one plan gives the SQL and the explanation)."""

from __future__ import annotations

from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from portal.errors import InvalidInput
from portal.sql import batch_statement_settings, temp_table_drop

from ..models import Tier, TierOverride
from ..tiers import COUNT_NAMES, COUNTS_SQL, TierPlan, apply_sql, evaluation_sql


class TierRuleError(InvalidInput):
    """A tier action that the rules do not allow; the message says why and what to do."""


def tier_recompute(
    *, business_date, job_run=None, id_range: tuple[int, int] | None = None
) -> dict[str, int]:
    """Grade every member (or an id range) under the active scheme for `business_date`:
    upgrade at the first qualifying basis, downgrade only after the protection months,
    credit risk to the lowest tier, approved overrides in force. A few set-based statements;
    idempotent for the date (a second run finds nothing to change)."""
    plan = TierPlan.active(business_date)
    with transaction.atomic(), connection.cursor() as cursor:
        batch_statement_settings(cursor)
        # Past their date, or for a tier of a scheme that is no longer active.
        expired = TierOverride.objects.filter(status="ACTIVE").filter(
            Q(expires_on__lt=business_date) | ~Q(tier__scheme=plan.scheme)
        )
        if id_range is not None:
            expired = expired.filter(member_id__gte=id_range[0], member_id__lte=id_range[1])
        expired.update(status="EXPIRED")
        temp_table_drop(cursor, "tier_eval")
        cursor.execute(evaluation_sql(plan, id_range=id_range))
        cursor.execute(COUNTS_SQL)
        counts = dict(zip(COUNT_NAMES, (int(v or 0) for v in cursor.fetchone()), strict=True))
        params = {
            "job_run": job_run.pk if job_run is not None else None,
            "now": connection.ops.adapt_datetimefield_value(timezone.now()),
        }
        for statement in apply_sql(plan):
            cursor.execute(statement, params)
        temp_table_drop(cursor, "tier_eval")
    return counts


def tier_simulate(*, scheme, business_date) -> dict:
    """How the population would be graded by `scheme` (usually a draft) for the business
    date, against the tiers members hold now. Changes nothing."""
    plan = TierPlan.for_scheme(scheme, business_date)
    with transaction.atomic(), connection.cursor() as cursor:
        temp_table_drop(cursor, "tier_eval")
        cursor.execute(evaluation_sql(plan))
        cursor.execute(
            "SELECT e.old_tier_id, e.new_computed_id, "
            "SUM(CASE WHEN m.status = 'ACTIVE' THEN 1 ELSE 0 END), COUNT(*) "
            "FROM tier_eval e JOIN members_member m ON m.id = e.member_id "
            "GROUP BY e.old_tier_id, e.new_computed_id"
        )
        rows = cursor.fetchall()
        temp_table_drop(cursor, "tier_eval")
        transaction.set_rollback(True)
    tiers = {tier.pk: tier for tier in Tier.objects.all()}
    names = {pk: tier.code for pk, tier in tiers.items()}
    matrix: dict[str, dict[str, int]] = {}
    distribution = {tier.code: 0 for tier in plan.tiers}
    by_tier = {tier.pk: 0 for tier in plan.tiers}
    active_by_tier = {tier.pk: 0 for tier in plan.tiers}
    moves = {"up": 0, "down": 0, "unchanged": 0, "first": 0}
    by_rank = sorted(rows, key=lambda row: tiers[row[0]].rank if row[0] in tiers else -1)
    for old_id, new_id, active, count in by_rank:
        old = names.get(old_id, "—")
        new = names[new_id]
        matrix.setdefault(old, {})[new] = matrix.get(old, {}).get(new, 0) + count
        distribution[new] += count
        by_tier[new_id] += count
        active_by_tier[new_id] += int(active or 0)
        moves[_move(tiers.get(old_id), tiers[new_id], tiers)] += count
    return {
        "scheme": scheme.code,
        "distribution": distribution,
        "matrix": matrix,
        "by_tier": by_tier,
        "active_by_tier": active_by_tier,
        "moves": moves,
    }


def _move(old: Tier | None, new: Tier, tiers: dict[int, Tier]) -> str:
    """Up, down or unchanged between two tiers, by their place in their own ladders (the
    bottom as 0, the top as 1), so ladders of different lengths compare; same scheme: rank."""
    if old is None:
        return "first"
    if old.scheme_id == new.scheme_id:
        return "up" if new.rank > old.rank else "down" if new.rank < old.rank else "unchanged"

    def place(tier: Tier) -> tuple[int, int]:
        ladder = sorted(t.rank for t in tiers.values() if t.scheme_id == tier.scheme_id)
        return ladder.index(tier.rank), len(ladder)

    (i, n), (j, m) = place(old), place(new)
    a, b = i * max(m - 1, 1), j * max(n - 1, 1)
    return "up" if b > a else "down" if b < a else "unchanged"
