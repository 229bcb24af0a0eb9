"""The nightly lifecycle stages (API.md, "Lifecycle stages"), set-based."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction

from portal.clock import day_start
from portal.periods import add_months, days_in
from portal.sql import temp_table_drop

from ..tiers import basis_month_for

LIFECYCLE_DEFAULTS = {
    "churned_after_days": 365,
    "dormant_after_days": 90,
    "reactivated_activity_days": 30,
    "reactivated_keep_days": 30,
    "at_risk_after_days": 30,
    "at_risk_mada_drop_percent": 50,
    "at_risk_mada_floor_fen": 1_000_000,
    "new_for_days": 30,
}


def lifecycle_recompute(*, business_date, id_range: tuple[int, int] | None = None) -> dict:
    """Set every member's lifecycle stage for `business_date` by the first rule of API.md's
    table that applies (CHURNED, DORMANT, REACTIVATED, AT_RISK, NEW, ACTIVE). One UPDATE over
    the population, writing only members whose stage changes; idempotent for the date."""
    rules = {**LIFECYCLE_DEFAULTS, **getattr(settings, "LIFECYCLE_RULES", {})}
    day = business_date

    def on_or_before(days: int) -> str:
        """last_active is at least `days` before the business date."""
        return (day - timedelta(days=days)).isoformat()

    def registered_before(days: int):
        start = day_start(day - timedelta(days=days - 1))
        return connection.ops.adapt_datetimefield_value(start)

    def inactive_for(days: int) -> str:
        # last_active = last activity date, or the registration date when there is none
        return (
            f"((m.last_active_on IS NOT NULL AND m.last_active_on <= '{on_or_before(days)}') "
            f"OR (m.last_active_on IS NULL AND m.registered_at < %(reg_{days})s))"
        )

    latest, previous = basis_month_for(day), add_months(basis_month_for(day), -1)
    mada_latest = f"(s1.financial_day_sum_fen / {days_in(latest)})"
    mada_previous = f"(s0.financial_day_sum_fen / {days_in(previous)})"
    drop = rules["at_risk_mada_drop_percent"]
    mada_fell = (
        f"(s0.member_id IS NOT NULL AND {mada_previous} >= {rules['at_risk_mada_floor_fen']} "
        f"AND 100 * COALESCE({mada_latest}, 0) <= {100 - drop} * {mada_previous})"
    )
    recent = rules["reactivated_activity_days"]
    active_recently = (
        f"(m.last_active_on IS NOT NULL AND m.last_active_on > '{on_or_before(recent)}')"
    )
    keep_until = on_or_before(rules["reactivated_keep_days"])
    stage = f"""CASE
        WHEN m.status = 'CLOSED' OR {inactive_for(rules["churned_after_days"])} THEN 'CHURNED'
        WHEN {inactive_for(rules["dormant_after_days"])} THEN 'DORMANT'
        WHEN m.lifecycle_stage IN ('DORMANT', 'CHURNED') AND {active_recently} THEN 'REACTIVATED'
        WHEN m.lifecycle_stage = 'REACTIVATED' AND m.stage_since > '{keep_until}' THEN 'REACTIVATED'
        WHEN {inactive_for(rules["at_risk_after_days"])} OR {mada_fell} THEN 'AT_RISK'
        WHEN m.registered_at >= %(reg_new)s THEN 'NEW'
        ELSE 'ACTIVE' END"""
    params = {
        f"reg_{days}": registered_before(days)
        for days in (
            rules["churned_after_days"],
            rules["dormant_after_days"],
            rules["at_risk_after_days"],
        )
    }
    params["reg_new"] = registered_before(rules["new_for_days"])
    range_filter = ""
    if id_range is not None:
        range_filter = f"AND m.id BETWEEN {int(id_range[0])} AND {int(id_range[1])}"
    with transaction.atomic(), connection.cursor() as cursor:
        temp_table_drop(cursor, "stage_eval")
        cursor.execute(
            f"""
CREATE TEMP TABLE stage_eval AS
SELECT m.id AS member_id, m.lifecycle_stage AS old_stage, {stage} AS new_stage
FROM members_member m
LEFT JOIN members_membermonthlystat s1 ON s1.member_id = m.id AND s1.month = '{latest}'
LEFT JOIN members_membermonthlystat s0 ON s0.member_id = m.id AND s0.month = '{previous}'
WHERE 1 = 1 {range_filter}
""",
            params,
        )
        cursor.execute(
            "SELECT new_stage, COUNT(*), SUM(CASE WHEN new_stage <> old_stage THEN 1 ELSE 0 END) "
            "FROM stage_eval GROUP BY new_stage"
        )
        rows = cursor.fetchall()
        cursor.execute(
            f"""
UPDATE members_member SET lifecycle_stage = e.new_stage, stage_since = '{day.isoformat()}'
FROM stage_eval e
WHERE members_member.id = e.member_id AND e.new_stage <> e.old_stage
"""
        )
        temp_table_drop(cursor, "stage_eval")
    counts = {"evaluated": sum(r[1] for r in rows), "changed": sum(int(r[2] or 0) for r in rows)}
    counts.update({str(r[0]).lower(): r[1] for r in rows})
    return counts
