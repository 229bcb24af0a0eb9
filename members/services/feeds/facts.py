"""The assets and consumption feeds: staged, then classified and applied in SQL."""

from __future__ import annotations

from typing import BinaryIO

from django.conf import settings
from django.db import connection

from ...choices import FINANCIAL_CATEGORIES, AssetCategory, FeedKind
from ...feeds import FactRow
from ...models import FeedBatch
from ..activity import member_activity_record_many, member_last_active_advance_many
from .rows import Progress, _finish, _parse_all, _Tally

# --- assets and consumption feeds: staged, then classified and applied in SQL --------------
#
# Parsed rows are streamed into a temporary table (COPY on PostgreSQL, executemany on
# SQLite). A handful of set-based statements then resolve members, classify every row as
# accepted / duplicate / rejected, keep the rejections, insert the daily facts and add them
# to the month-to-date sums. The SQL is the same on both databases.

_STAGE_DDL = """
CREATE TEMP TABLE feed_stage (
    line_no integer, member_no varchar(32), d date, month date, category varchar(12),
    amount bigint, cnt integer, raw text
)"""

_FACT_SOURCES = {
    # kind: (fact table, its amount column, its count expression, extra join condition)
    FeedKind.ASSETS: ("members_assetbalance", "balance_fen", "0", "AND f.category = s.category"),
    FeedKind.CONSUMPTION: ("members_consumptionday", "amount_fen", "f.count", ""),
}

_CLASSIFY_SQL = """
CREATE TEMP TABLE feed_classified AS
SELECT q.*,
    CASE WHEN q.member_id IS NULL THEN 'R'
         WHEN q.line_no <> q.first_line AND q.amount = q.first_amount AND q.cnt = q.first_cnt
              THEN 'D'
         WHEN q.line_no <> q.first_line THEN 'R'
         WHEN q.known_batch IS NOT NULL AND q.known_amount = q.amount AND q.known_cnt = q.cnt
              THEN 'D'
         WHEN q.known_batch IS NOT NULL THEN 'R'
         ELSE 'A' END AS status,
    CASE WHEN q.member_id IS NULL THEN 'member_no'
         WHEN q.line_no <> q.first_line AND q.amount = q.first_amount THEN 'count'
         WHEN q.line_no = q.first_line AND q.amount = q.known_amount THEN 'count'
         ELSE '{value_field}' END AS field,
    CASE WHEN q.member_id IS NULL THEN 'unknown member ' || q.member_no
         WHEN q.line_no <> q.first_line
              THEN 'same member and day as line ' || q.first_line || ' with a different value'
         ELSE 'differs from the value already loaded by feed batch #' || q.known_batch
              || '; a correction needs a reversal, not a second row' END AS reason
FROM (
    SELECT s.line_no, s.member_no, s.d, s.month, s.category, s.amount, s.cnt, s.raw,
        m.id AS member_id,
        FIRST_VALUE(s.line_no) OVER w AS first_line,
        FIRST_VALUE(s.amount) OVER w AS first_amount,
        FIRST_VALUE(s.cnt) OVER w AS first_cnt,
        f.{amount_column} AS known_amount, {count_expr} AS known_cnt, f.batch_id AS known_batch
    FROM feed_stage s
    LEFT JOIN members_member m ON m.member_no = s.member_no
    LEFT JOIN {fact_table} f ON f.member_id = m.id AND f.date = s.d {extra_join}
    WINDOW w AS (PARTITION BY s.member_no, s.d, s.category ORDER BY s.line_no)
) q
"""

_ASSET_SUMS = ",\n".join(
    f"    SUM(CASE WHEN c.category = '{category}' THEN c.amount ELSE 0 END)"
    for category in AssetCategory.values
)
_FINANCIAL_IN = ", ".join(f"'{category}'" for category in FINANCIAL_CATEGORIES)
_ASSET_COLUMNS = ", ".join(f"{category.lower()}_day_sum_fen" for category in AssetCategory.values)
_STAT = "members_membermonthlystat"

_ASSETS_APPLY = [
    # Month-to-date sums first: asset_days counts days that had no asset row before.
    f"""
INSERT INTO {_STAT} (member_id, month, {_ASSET_COLUMNS}, financial_day_sum_fen, asset_days)
SELECT c.member_id, c.month,
{_ASSET_SUMS},
    SUM(CASE WHEN c.category IN ({_FINANCIAL_IN}) THEN c.amount ELSE 0 END),
    COUNT(DISTINCT CASE WHEN NOT EXISTS (
        SELECT 1 FROM members_assetbalance x WHERE x.member_id = c.member_id AND x.date = c.d
    ) THEN c.d END)
FROM feed_classified c WHERE c.status = 'A'
GROUP BY c.member_id, c.month
ON CONFLICT (member_id, month) DO UPDATE SET
"""
    + ",\n".join(
        f"    {column} = {_STAT}.{column} + excluded.{column}"
        for column in [*_ASSET_COLUMNS.split(", "), "financial_day_sum_fen", "asset_days"]
    ),
    """
INSERT INTO members_assetbalance (member_id, date, category, balance_fen, batch_id)
SELECT member_id, d, category, amount, %(batch)s FROM feed_classified WHERE status = 'A'
""",
]

_CONSUMPTION_APPLY = [
    f"""
INSERT INTO {_STAT} (member_id, month, consumption_amount_fen, consumption_count)
SELECT member_id, month, SUM(amount), SUM(cnt)
FROM feed_classified WHERE status = 'A'
GROUP BY member_id, month
ON CONFLICT (member_id, month) DO UPDATE SET
    consumption_amount_fen = {_STAT}.consumption_amount_fen + excluded.consumption_amount_fen,
    consumption_count = {_STAT}.consumption_count + excluded.consumption_count
""",
    """
INSERT INTO members_consumptionday (member_id, date, amount_fen, count, batch_id)
SELECT member_id, d, amount, cnt, %(batch)s FROM feed_classified WHERE status = 'A'
""",
]


#: the accepted consumption rows with spending, as the activity services take them
_ACTIVE_DAYS = (
    "(SELECT DISTINCT member_id, d AS day, month, 0 AS fund_fen, 0 AS payroll_fen "
    "FROM feed_classified WHERE status = 'A' AND cnt > 0)"
)


def _stage_rows(cursor, rows: list[tuple]) -> None:
    if not rows:
        return
    if connection.vendor == "postgresql":
        with cursor.copy(
            "COPY feed_stage (line_no, member_no, d, month, category, amount, cnt, raw) FROM STDIN"
        ) as copy:
            for row in rows:
                copy.write_row(row)
    else:
        cursor.executemany("INSERT INTO feed_stage VALUES (%s, %s, %s, %s, %s, %s, %s, %s)", rows)


def _import_facts(
    *, batch: FeedBatch, file: BinaryIO, tally: _Tally, progress: Progress | None
) -> None:
    fact_table, amount_column, count_expr, extra_join = _FACT_SOURCES[batch.kind]
    chunk: list[tuple] = []
    months: dict = {}
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS feed_stage")
        cursor.execute("DROP TABLE IF EXISTS feed_classified")
        cursor.execute(_STAGE_DDL)
        for line_no, raw, row in _parse_all(batch, file, tally, progress):
            row: FactRow
            month = months.get(row.day)
            if month is None:
                month = months[row.day] = row.day.replace(day=1)
                tally.see_date(row.day)
            chunk.append(
                (
                    line_no,
                    row.member_no,
                    row.day.isoformat(),
                    month.isoformat(),
                    row.category,
                    row.amount_fen,
                    row.count,
                    raw,
                )
            )
            if len(chunk) >= settings.FEED_STAGING_CHUNK_ROWS:
                _stage_rows(cursor, chunk)
                chunk.clear()
        _stage_rows(cursor, chunk)
        if progress:
            progress(f"{batch.kind}: {tally.received:,} rows read; classifying")
        if connection.vendor == "postgresql":
            cursor.execute("ANALYZE feed_stage")
        cursor.execute(
            _CLASSIFY_SQL.format(
                value_field="balance" if batch.kind == FeedKind.ASSETS else "amount",
                fact_table=fact_table,
                amount_column=amount_column,
                count_expr=count_expr,
                extra_join=extra_join,
            )
        )
        cursor.execute(
            "INSERT INTO members_feedrejection (batch_id, line_no, field, reason, raw) "
            "SELECT %s, line_no, field, reason, raw FROM feed_classified WHERE status = 'R'",
            [batch.pk],
        )
        cursor.execute("SELECT status, COUNT(*) FROM feed_classified GROUP BY status")
        by_status = dict(cursor.fetchall())
        tally.accepted = by_status.get("A", 0)
        tally.duplicates = by_status.get("D", 0)
        if progress:
            progress(f"{batch.kind}: applying {tally.accepted:,} accepted rows")
        if batch.kind == FeedKind.CONSUMPTION:
            # A day with card spending is an active day (API.md, lifecycle). Activity days
            # and their monthly rows first, as an events batch takes them, then the
            # month's spending; member rows last.
            member_activity_record_many(source=(_ACTIVE_DAYS, []))
        statements = _ASSETS_APPLY if batch.kind == FeedKind.ASSETS else _CONSUMPTION_APPLY
        for statement in statements:
            cursor.execute(statement, {"batch": batch.pk})
        if batch.kind == FeedKind.CONSUMPTION:
            member_last_active_advance_many(source=(_ACTIVE_DAYS, []))
        cursor.execute("DROP TABLE feed_stage")
        cursor.execute("DROP TABLE feed_classified")
    _finish(batch, tally)
