"""Member activity (API.md, "Lifecycle stages"): an accepted member event or a consumption feed
row with count > 0 makes its day an active day of the member. One set of services writes it,
for the events batch and the consumption feed alike, as sets of rows."""

from __future__ import annotations

from collections import defaultdict

from django.db import connection

from portal.sql import as_date, execute, rows_source

__all__ = ["ACTIVITY_COLUMNS", "member_activity_record_many", "member_last_active_advance_many"]

#: the columns of the rows `member_activity_record_many` takes: one row per member and active
#: day, with the day's FUND_PURCHASE and PAYROLL amounts (fen) for the tier indicators
ACTIVITY_COLUMNS = {
    "member_id": "bigint",
    "day": "date",
    "month": "date",
    "fund_fen": "bigint",
    "payroll_fen": "bigint",
}

_STAT = "members_membermonthlystat"
_ADD_TO_STAT = (
    f"ON CONFLICT (member_id, month) DO UPDATE SET "
    f"active_days = {_STAT}.active_days + excluded.active_days, "
    f"fund_purchase_fen = {_STAT}.fund_purchase_fen + excluded.fund_purchase_fen, "
    f"payroll_fen = {_STAT}.payroll_fen + excluded.payroll_fen"
)

# PostgreSQL: one statement. The days are inserted first (a day another writer inserted, even
# concurrently, is skipped by the unique index), and only the days inserted now are added to
# the month's active-day count, with the month's amounts; keys in (member, day) order.
_RECORD_PG = f"""
WITH src AS MATERIALIZED (SELECT * FROM {{source}} AS v),
new_days AS (
    INSERT INTO members_memberactivityday (member_id, date, month)
    SELECT member_id, day, month FROM src ORDER BY member_id, day
    ON CONFLICT (member_id, date) DO NOTHING
    RETURNING member_id, month
),
counted AS (SELECT member_id, month, COUNT(*) AS days FROM new_days GROUP BY member_id, month),
amounts AS (
    SELECT member_id, month, SUM(fund_fen) AS fund, SUM(payroll_fen) AS payroll
    FROM src GROUP BY member_id, month
)
INSERT INTO {_STAT} (member_id, month, active_days, fund_purchase_fen, payroll_fen)
SELECT a.member_id, a.month, COALESCE(c.days, 0), a.fund, a.payroll
FROM amounts a LEFT JOIN counted c ON c.member_id = a.member_id AND c.month = a.month
WHERE COALESCE(c.days, 0) > 0 OR a.fund > 0 OR a.payroll > 0
ORDER BY a.member_id, a.month
{_ADD_TO_STAT}
"""


def member_activity_record_many(*, source: tuple[str, list]) -> None:
    """Record active days: `source` is a derived table (SQL, params) with the columns of
    `ACTIVITY_COLUMNS`, one row per member and day. New days are stored and counted in the
    month's `active_days` exactly once, however often or concurrently a day is reported;
    the amounts are added to the month's indicators. Keys are written in (member, day) and
    (member, month) order, so concurrent writers never wait on each other in a cycle."""
    sql, params = source
    if connection.vendor == "postgresql":
        execute(_RECORD_PG.format(source=sql), params)
        return
    # The embedded SQLite demo (one writer at a time): the same steps, one after the other.
    new_days: dict[tuple[int, object], int] = defaultdict(int)
    for member_id, month in execute(
        "INSERT INTO members_memberactivityday (member_id, date, month) "
        f"SELECT v.member_id, v.day, v.month FROM {sql} AS v WHERE true "
        "ORDER BY v.member_id, v.day ON CONFLICT (member_id, date) DO NOTHING "
        "RETURNING member_id, month",
        params,
    ):
        new_days[(member_id, as_date(month))] += 1
    amounts = {
        (member_id, as_date(month)): (int(fund or 0), int(payroll or 0))
        for member_id, month, fund, payroll in execute(
            f"SELECT v.member_id, v.month, SUM(v.fund_fen), SUM(v.payroll_fen) FROM {sql} AS v "
            "GROUP BY v.member_id, v.month",
            params,
        )
    }
    keys = sorted(
        key
        for key in set(new_days) | set(amounts)
        if new_days.get(key) or any(amounts.get(key, (0, 0)))
    )
    if not keys:
        return
    stats, stat_params = rows_source(
        {"member_id": "bigint", "month": "date", "days": "integer", "fund": "bigint",
         "payroll": "bigint"},
        [(*key, new_days.get(key, 0), *amounts.get(key, (0, 0))) for key in keys],
    )  # fmt: skip
    execute(
        f"INSERT INTO {_STAT} (member_id, month, active_days, fund_purchase_fen, payroll_fen) "
        f"SELECT v.member_id, v.month, v.days, v.fund, v.payroll FROM {stats} AS v WHERE true "
        f"ORDER BY v.member_id, v.month {_ADD_TO_STAT}",
        stat_params,
    )


def member_last_active_advance_many(*, source: tuple[str, list]) -> None:
    """Move members' last activity forward to their latest active day in `source` (a derived
    table with `member_id` and `day`). Only members whose last activity moves forward are
    written (the condition is in the UPDATE, so nothing else is locked)."""
    sql, params = source
    execute(
        "UPDATE members_member SET last_active_on = t.day "
        f"FROM (SELECT v.member_id, MAX(v.day) AS day FROM {sql} AS v GROUP BY v.member_id) t "
        "WHERE members_member.id = t.member_id AND (members_member.last_active_on IS NULL "
        "OR members_member.last_active_on < t.day)",
        params,
    )
