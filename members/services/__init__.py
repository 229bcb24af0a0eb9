"""Writes of the members app: feed imports (and, later, tiers and lifecycle stages)."""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from portal.approvals import approval_request_create, approval_settle
from portal.choices import ApprovalKind
from portal.models import Branch, User
from portal.services import audit_context, audit_record

from ..choices import FINANCIAL_CATEGORIES, AssetCategory, FeedKind, FeedStatus
from ..feeds import FEED_FORMATS, FactRow, MemberRow, RowError, today_in_shanghai
from ..models import FeedBatch, FeedRejection, Member
from .notes import NoteError as NoteError
from .notes import followup_note_add as followup_note_add
from .notes import followup_note_done as followup_note_done
from .personal import member_marketing_opt_out_set as member_marketing_opt_out_set
from .personal import member_personal_data_reveal as member_personal_data_reveal

Progress = Callable[[str], None]
PROGRESS_EVERY_ROWS = 100_000
MEMBER_CHUNK_ROWS = 2_000
#: Feed imports of one kind are serialised on PostgreSQL with this advisory-lock key base.
_FEED_LOCK_BASE = 7_301_000


class FeedFileError(Exception):
    """The file itself cannot be imported (unreadable, not UTF-8, wrong header)."""


@dataclass
class _Tally:
    received: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejections: list[FeedRejection] = field(default_factory=list)
    first_date: object = None
    last_date: object = None

    def reject(self, line_no: int, raw: str, field_name: str, reason: str) -> None:
        self.rejections.append(
            FeedRejection(line_no=line_no, field=field_name, reason=reason[:255], raw=raw)
        )

    def see_date(self, day) -> None:
        if self.first_date is None or day < self.first_date:
            self.first_date = day
        if self.last_date is None or day > self.last_date:
            self.last_date = day


def _checksum(file: BinaryIO) -> str:
    digest = hashlib.sha256()
    file.seek(0)
    for block in iter(lambda: file.read(1 << 20), b""):
        digest.update(block)
    file.seek(0)
    return digest.hexdigest()


def _rows(file: BinaryIO, header: tuple[str, ...]) -> Iterator[tuple[int, list[str], str]]:
    """Yield (line number, fields, raw line) for each non-empty data row after the header."""
    text = io.TextIOWrapper(file, encoding="utf-8-sig", errors="strict", newline="")
    try:
        reader = csv.reader(text)
        try:
            got = next(reader)
        except StopIteration:
            raise FeedFileError(
                f"the file is empty; expected the header {','.join(header)}"
            ) from None
        if tuple(column.strip() for column in got) != header:
            raise FeedFileError(
                f"wrong header {','.join(got)!r}; expected exactly {','.join(header)!r}"
            )
        for fields in reader:
            if not fields or fields == [""]:
                continue
            joined = ",".join(fields)
            plain = (
                joined.count(",") == len(fields) - 1 and '"' not in joined and "\n" not in joined
            )
            raw = joined if plain else _rejoin(fields)
            yield reader.line_num, fields, raw
    except UnicodeDecodeError as exc:
        raise FeedFileError(
            f"the file is not valid UTF-8 (byte {exc.start} of a read block); "
            "export it again as UTF-8"
        ) from None
    except csv.Error as exc:
        raise FeedFileError(f"the file is not readable CSV: {exc}") from None
    finally:
        text.detach()


def _rejoin(fields: list[str]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="").writerow(fields)
    return out.getvalue()


def feed_import(
    *,
    kind: str,
    file: BinaryIO,
    file_name: str,
    actor: User | None = None,
    progress: Progress | None = None,
) -> FeedBatch:
    """Import one data-warehouse feed file (API.md, "Feeds") as one `FeedBatch`; what it
    changes in tracked member data is recorded in the audit trail under the feed's name."""
    job = {"job": f"feed {kind} {file_name}"}
    if actor is not None and actor.pk:
        job["user"] = actor.pk
    with audit_context(**job):
        return _feed_import(
            kind=kind, file=file, file_name=file_name, actor=actor, progress=progress
        )


def _feed_import(
    *,
    kind: str,
    file: BinaryIO,
    file_name: str,
    actor: User | None = None,
    progress: Progress | None = None,
) -> FeedBatch:
    """Import one data-warehouse feed file (API.md, "Feeds") as one `FeedBatch`.

    Every row is accepted, counted as a duplicate (already loaded with the same values) or
    rejected with its line number and reason; received = accepted + duplicates + rejected.
    Importing the same file again changes nothing. A file that cannot be read or has the
    wrong header raises `FeedFileError` and is recorded as a FAILED batch.
    """
    if kind not in FEED_FORMATS:
        raise FeedFileError(f"unknown feed kind {kind!r}; use one of {', '.join(FEED_FORMATS)}")
    started_at = timezone.now()
    try:
        checksum = _checksum(file)
    except OSError as exc:
        raise FeedFileError(f"cannot read the file: {exc}") from exc
    try:
        with transaction.atomic():
            if connection.vendor == "postgresql":
                with connection.cursor() as cursor:
                    lock_key = _FEED_LOCK_BASE + list(FEED_FORMATS).index(kind)
                    cursor.execute("SELECT pg_advisory_xact_lock(%s)", [lock_key])
            batch = FeedBatch(
                kind=kind,
                file_name=file_name[:255],
                checksum=checksum,
                status=FeedStatus.LOADED,
                imported_by=actor,
                started_at=started_at,
            )
            earlier = _same_file_loaded_last(kind=kind, checksum=checksum)
            if earlier is not None:
                _count_as_duplicate_file(batch=batch, earlier=earlier, file=file)
            elif kind == FeedKind.MEMBERS:
                _import_members(batch=batch, file=file, progress=progress)
            else:
                _import_facts(batch=batch, file=file, progress=progress)
            batch.finished_at = timezone.now()
            batch.save()
            audit_record(
                actor=actor,
                action="feed.import",
                obj=batch,
                changes={
                    "received": batch.received,
                    "accepted": batch.accepted,
                    "duplicates": batch.duplicates,
                    "rejected": batch.rejected,
                },
            )
    except FeedFileError as exc:
        FeedBatch.objects.create(
            kind=kind,
            file_name=file_name[:255],
            checksum=checksum,
            status=FeedStatus.FAILED,
            error=str(exc),
            imported_by=actor,
            started_at=started_at,
            finished_at=timezone.now(),
        )
        raise
    return batch


def _same_file_loaded_last(*, kind: str, checksum: str) -> FeedBatch | None:
    """The earlier batch of this very file, if no other file of the kind was loaded since.

    Then importing it again changes nothing and every row counts as a duplicate. If other
    files came in between (say a members file that set a flag this one clears), its rows
    are compared with the data as it is now instead, so nothing is silently ignored.
    """
    latest = FeedBatch.objects.filter(kind=kind, status=FeedStatus.LOADED).order_by("-id").first()
    if latest is not None and latest.checksum == checksum:
        return latest
    return None


def _count_as_duplicate_file(*, batch: FeedBatch, earlier: FeedBatch, file: BinaryIO) -> None:
    header = FEED_FORMATS[batch.kind].header
    received = sum(1 for _ in _rows(file, header))
    batch.status = FeedStatus.DUPLICATE_FILE
    batch.duplicate_of = earlier
    batch.received = batch.duplicates = received
    batch.first_date, batch.last_date = earlier.first_date, earlier.last_date


def _parse_all(batch: FeedBatch, file: BinaryIO, tally: _Tally, progress: Progress | None):
    """Parse every row, rejecting malformed ones in `tally`; yield (line_no, raw, parsed)."""
    fmt = FEED_FORMATS[batch.kind]
    width = len(fmt.header)
    today = today_in_shanghai()
    for line_no, fields, raw in _rows(file, fmt.header):
        tally.received += 1
        if progress and tally.received % PROGRESS_EVERY_ROWS == 0:
            progress(f"{batch.kind}: {tally.received:,} rows read")
        if "\x00" in raw:  # PostgreSQL text cannot hold NUL: keep the row with it escaped
            tally.reject(line_no, raw.replace("\x00", "\\x00"), "", "the row contains a NUL byte")
            continue
        if len(fields) != width:
            tally.reject(line_no, raw, "", f"expected {width} columns, found {len(fields)}")
            continue
        try:
            parsed = fmt.parse([value.strip() for value in fields], today)
        except RowError as exc:
            tally.reject(line_no, raw, exc.field, exc.reason)
            continue
        yield line_no, raw, parsed


def _finish(batch: FeedBatch, tally: _Tally) -> None:
    for rejection in tally.rejections:
        rejection.batch = batch
    FeedRejection.objects.bulk_create(tally.rejections, batch_size=5_000)
    batch.received = tally.received
    batch.accepted = tally.accepted
    batch.duplicates = tally.duplicates
    batch.rejected = FeedRejection.objects.filter(batch=batch).count()
    batch.first_date, batch.last_date = tally.first_date, tally.last_date


# --- members feed: validated in Python, upserted in chunks --------------------------------

_MEMBER_FIELDS = (
    "name",
    "phone",
    "id_number",
    "birth_date",
    "registered_at",
    "branch_id",
    "account_manager_id",
    "credit_risk",
)


def _import_members(*, batch: FeedBatch, file: BinaryIO, progress: Progress | None) -> None:
    tally = _Tally()
    branches = dict(Branch.objects.values_list("code", "id"))
    managers: dict[str, int | None] = {}
    seen: dict[str, tuple[int, tuple]] = {}
    pending: list[tuple[int, str, MemberRow, tuple]] = []
    batch.save()  # the rejections below need its id

    def flush() -> None:
        if not pending:
            return
        existing = {
            row[0]: row[1:]
            for row in Member.objects.filter(
                member_no__in=[member_row.member_no for _, _, member_row, _ in pending]
            ).values_list("member_no", *_MEMBER_FIELDS)
        }
        upserts = []
        for _line_no, _raw, member_row, values in pending:
            if existing.get(member_row.member_no) == values:
                tally.duplicates += 1
                continue
            tally.accepted += 1
            upserts.append(
                Member(
                    member_no=member_row.member_no, **dict(zip(_MEMBER_FIELDS, values, strict=True))
                )
            )
        Member.objects.bulk_create(
            upserts,
            update_conflicts=True,
            unique_fields=["member_no"],
            update_fields=[*_MEMBER_FIELDS, "updated_at"],
        )
        pending.clear()
        if progress:
            progress(f"members: {tally.received:,} rows read, {tally.accepted:,} accepted")

    for line_no, raw, member_row in _parse_all(batch, file, tally, progress):
        branch_id = None
        if member_row.branch_code:
            branch_id = branches.get(member_row.branch_code)
            if branch_id is None:
                tally.reject(
                    line_no, raw, "branch_code", f"unknown branch '{member_row.branch_code}'"
                )
                continue
        manager_id = None
        if member_row.manager_username:
            if member_row.manager_username not in managers:
                managers[member_row.manager_username] = (
                    User.objects.filter(username=member_row.manager_username)
                    .values_list("id", flat=True)
                    .first()
                )
            manager_id = managers[member_row.manager_username]
            if manager_id is None:
                tally.reject(
                    line_no,
                    raw,
                    "manager_username",
                    f"unknown manager '{member_row.manager_username}'",
                )
                continue
        values = (
            member_row.name,
            member_row.phone,
            member_row.id_number,
            member_row.birth_date,
            member_row.registered_at,
            branch_id,
            manager_id,
            member_row.credit_risk,
        )
        first = seen.get(member_row.member_no)
        if first is not None:
            if first[1] == values:
                tally.duplicates += 1
            else:
                tally.reject(
                    line_no,
                    raw,
                    "member_no",
                    f"{member_row.member_no} appears already at line {first[0]} with other values",
                )
            continue
        seen[member_row.member_no] = (line_no, values)
        pending.append((line_no, raw, member_row, values))
        if len(pending) >= MEMBER_CHUNK_ROWS:
            flush()
    flush()
    _finish(batch, tally)


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
    # A day with card spending is an active day (API.md, lifecycle).
    """
INSERT INTO members_memberactivityday (member_id, date, month)
SELECT DISTINCT member_id, d, month FROM feed_classified WHERE status = 'A' AND cnt > 0
ON CONFLICT (member_id, date) DO NOTHING
""",
    f"""
UPDATE {_STAT} SET active_days = t.n
FROM (
    SELECT a.member_id, a.month, COUNT(*) AS n
    FROM members_memberactivityday a
    JOIN (SELECT DISTINCT member_id, month FROM feed_classified
          WHERE status = 'A' AND cnt > 0) k
      ON k.member_id = a.member_id AND k.month = a.month
    GROUP BY a.member_id, a.month
) t
WHERE {_STAT}.member_id = t.member_id AND {_STAT}.month = t.month
""",
    """
UPDATE members_member SET last_active_on = t.d
FROM (SELECT member_id, MAX(d) AS d FROM feed_classified
      WHERE status = 'A' AND cnt > 0 GROUP BY member_id) t
WHERE members_member.id = t.member_id
  AND (members_member.last_active_on IS NULL OR members_member.last_active_on < t.d)
""",
]


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


def _import_facts(*, batch: FeedBatch, file: BinaryIO, progress: Progress | None) -> None:
    from django.conf import settings

    tally = _Tally()
    batch.save()
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
        statements = _ASSETS_APPLY if batch.kind == FeedKind.ASSETS else _CONSUMPTION_APPLY
        for statement in statements:
            cursor.execute(statement, {"batch": batch.pk})
        cursor.execute("DROP TABLE feed_stage")
        cursor.execute("DROP TABLE feed_classified")
    _finish(batch, tally)


def asset_feed_missing_days(*, month) -> list:
    """Days of `month` that no loaded assets feed covers (a missing day counts as 0 in MADA,
    so grading on an incomplete month would wrongly push members down)."""
    from datetime import timedelta

    from ..tiers import add_months

    end = add_months(month, 1)
    covered = set()
    for first, last in FeedBatch.objects.filter(
        kind=FeedKind.ASSETS,
        status=FeedStatus.LOADED,
        first_date__lt=end,
        last_date__gte=month,
    ).values_list("first_date", "last_date"):
        day = max(first, month)
        while day <= last and day < end:
            covered.add(day)
            day += timedelta(days=1)
    missing, day = [], month
    while day < end:
        if day not in covered:
            missing.append(day)
        day += timedelta(days=1)
    return missing


def feed_arrival_check(*, business_date) -> dict:
    """Nightly step 1: have the asset and consumption feeds for the day before the business
    date arrived? Counts rows per kind; a missing kind is reported, never fatal, so the
    rest of the chain still runs on the data it has."""
    from datetime import timedelta

    from django.db.models import Q, Sum

    day = business_date - timedelta(days=1)
    counts: dict = {"feed_date": day.isoformat()}
    missing = []
    for kind in (FeedKind.ASSETS, FeedKind.CONSUMPTION):
        batches = FeedBatch.objects.filter(
            Q(status=FeedStatus.LOADED) | Q(status=FeedStatus.DUPLICATE_FILE),
            kind=kind,
            first_date__lte=day,
            last_date__gte=day,
        )
        totals = batches.aggregate(accepted=Sum("accepted"), duplicates=Sum("duplicates"))
        rows = totals["accepted"] or 0
        counts[f"{kind}_batches"] = batches.count()
        counts[f"{kind}_rows"] = rows
        if rows + (totals["duplicates"] or 0) == 0:  # no file, or every row refused
            missing.append(str(kind))
    counts["missing"] = missing
    return counts


# --- tiers -------------------------------------------------------------------------------------


class TierRuleError(Exception):
    """A tier action that the rules do not allow; the message says why and what to do."""


def _temp_drop(cursor, name: str) -> None:
    cursor.execute(f"DROP TABLE IF EXISTS {name}")


def tier_recompute(
    *, business_date, job_run=None, id_range: tuple[int, int] | None = None
) -> dict[str, int]:
    """Grade every member (or an id range) under the active scheme for `business_date`:
    upgrade at the first qualifying basis, downgrade only after the protection months,
    credit risk to the lowest tier, approved overrides in force. A few set-based statements;
    idempotent for the date (a second run finds nothing to change)."""
    from django.utils import timezone

    from ..models import TierOverride
    from ..tiers import COUNT_NAMES, COUNTS_SQL, TierPlan, apply_sql, evaluation_sql

    plan = TierPlan.active(business_date)
    with transaction.atomic(), connection.cursor() as cursor:
        # Past their date, or for a tier of a scheme that is no longer active.
        expired = TierOverride.objects.filter(status="ACTIVE").filter(
            Q(expires_on__lt=business_date) | ~Q(tier__scheme=plan.scheme)
        )
        if id_range is not None:
            expired = expired.filter(member_id__gte=id_range[0], member_id__lte=id_range[1])
        expired.update(status="EXPIRED")
        _temp_drop(cursor, "tier_eval")
        cursor.execute(evaluation_sql(plan, id_range=id_range))
        cursor.execute(COUNTS_SQL)
        counts = dict(zip(COUNT_NAMES, (int(v or 0) for v in cursor.fetchone()), strict=True))
        params = {
            "job_run": job_run.pk if job_run is not None else None,
            "now": connection.ops.adapt_datetimefield_value(timezone.now()),
        }
        for statement in apply_sql(plan):
            cursor.execute(statement, params)
        _temp_drop(cursor, "tier_eval")
    return counts


def tier_simulate(*, scheme, business_date) -> dict:
    """How the population would be graded by `scheme` (usually a draft) for the business
    date, against the tiers members hold now. Changes nothing."""
    from ..tiers import TierPlan, evaluation_sql

    plan = TierPlan.for_scheme(scheme, business_date)
    with transaction.atomic(), connection.cursor() as cursor:
        _temp_drop(cursor, "tier_eval")
        cursor.execute(evaluation_sql(plan))
        cursor.execute(
            "SELECT e.old_tier_id, e.new_computed_id, COUNT(*) FROM tier_eval e "
            "GROUP BY e.old_tier_id, e.new_computed_id"
        )
        rows = cursor.fetchall()
        _temp_drop(cursor, "tier_eval")
        transaction.set_rollback(True)
    from ..models import Tier

    tiers = {tier.pk: tier for tier in Tier.objects.all()}
    names = {pk: tier.code for pk, tier in tiers.items()}
    matrix: dict[str, dict[str, int]] = {}
    distribution = {tier.code: 0 for tier in plan.tiers}
    by_rank = sorted(rows, key=lambda row: tiers[row[0]].rank if row[0] in tiers else -1)
    for old_id, new_id, count in by_rank:
        old = names.get(old_id, "—")
        new = names[new_id]
        matrix.setdefault(old, {})[new] = matrix.get(old, {}).get(new, 0) + count
        distribution[new] += count
    return {"scheme": scheme.code, "distribution": distribution, "matrix": matrix}


def tier_override_request(*, member, tier, reason: str, expires_on, actor):
    """An account manager asks for a manual tier (with reason and expiry); nothing changes
    until a branch manager approves it."""
    from portal.permissions import user_can

    from ..models import TierOverride
    from ..selectors import member_scope
    from ..tiers import TierPlan

    if not user_can(actor, "members.request_tier_override") or not (
        member_scope(user=actor).filter(pk=member.pk).exists()
    ):
        raise TierRuleError("Only the customer's account manager can ask for a manual tier.")
    if not reason.strip():
        raise TierRuleError("A reason is required for a manual tier.")
    if expires_on <= today_in_shanghai():
        raise TierRuleError("The expiry date must be in the future.")
    if tier.scheme_id != TierPlan.active(today_in_shanghai()).scheme.pk:
        raise TierRuleError("The tier must belong to the active tier scheme.")
    with transaction.atomic():
        override = TierOverride.objects.create(
            member=member, tier=tier, reason=reason, expires_on=expires_on, requested_by=actor
        )
        audit_record(
            actor=actor,
            action="tier_override.request",
            obj=override,
            changes={"tier": tier.code, "expires_on": expires_on.isoformat()},
            reason=reason,
        )
        approval_request_create(
            kind=ApprovalKind.TIER_OVERRIDE,
            obj=override,
            summary=f"{member.member_no}: {tier.code} until {expires_on.isoformat()}",
            current={"tier": member.tier.code if member.tier_id else None},
            proposal={"tier": tier.code, "expires_on": expires_on.isoformat()},
            reason=reason,
            branch=member.branch,
            actor=actor,
        )
    return override


def tier_override_decide(*, override, approve: bool, actor, comment: str = ""):
    """A branch manager other than the requester approves (the tier applies at once, with a
    TierChange) or rejects the override."""
    from django.utils import timezone

    from portal.permissions import user_can

    from ..choices import OverrideStatus, TierChangeCause
    from ..models import TierChange, TierOverride
    from ..selectors import member_scope

    with transaction.atomic():
        override = TierOverride.objects.select_for_update().get(pk=override.pk)
        if override.status != OverrideStatus.PENDING:
            raise TierRuleError(f"This request is already {override.get_status_display()}.")
        if override.requested_by_id == actor.pk:
            raise TierRuleError("You cannot approve or reject your own request.")
        if not user_can(actor, "members.approve_tier_override") or not (
            member_scope(user=actor).filter(pk=override.member_id).exists()
        ):
            raise TierRuleError("Only a branch manager of the customer's branch can decide.")
        override.status = OverrideStatus.ACTIVE if approve else OverrideStatus.REJECTED
        override.decided_by, override.decided_at = actor, timezone.now()
        override.decision_comment = comment
        if approve:
            TierOverride.objects.filter(
                member=override.member, status=OverrideStatus.ACTIVE
            ).update(status=OverrideStatus.EXPIRED)
        override.save()
        if approve:
            member = Member.objects.select_for_update().get(pk=override.member_id)
            if member.tier_id != override.tier_id:
                TierChange.objects.create(
                    member=member,
                    from_tier_id=member.tier_id,
                    to_tier=override.tier,
                    cause=TierChangeCause.OVERRIDE,
                    business_date=today_in_shanghai(),
                    basis=member.tier_basis,
                    months_below=member.tier_months_below,
                )
                member.tier = override.tier
                member.tier_since = today_in_shanghai()
                member.save(update_fields=["tier", "tier_since", "updated_at"])
        audit_record(
            actor=actor,
            action="tier_override.approve" if approve else "tier_override.reject",
            obj=override,
            reason=comment,
        )
        approval_settle(
            kind=ApprovalKind.TIER_OVERRIDE,
            obj=override,
            approved=approve,
            actor=actor,
            comment=comment,
        )
    return override


# --- lifecycle stages ----------------------------------------------------------------------------

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
    from datetime import datetime, time, timedelta

    from django.conf import settings

    from ..feeds import SHANGHAI
    from ..tiers import add_months, basis_month_for, days_in

    rules = {**LIFECYCLE_DEFAULTS, **getattr(settings, "LIFECYCLE_RULES", {})}
    day = business_date

    def on_or_before(days: int) -> str:
        """last_active is at least `days` before the business date."""
        return (day - timedelta(days=days)).isoformat()

    def registered_before(days: int):
        start = datetime.combine(day - timedelta(days=days - 1), time.min, tzinfo=SHANGHAI)
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
        _temp_drop(cursor, "stage_eval")
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
        _temp_drop(cursor, "stage_eval")
    counts = {"evaluated": sum(r[1] for r in rows), "changed": sum(int(r[2] or 0) for r in rows)}
    counts.update({str(r[0]).lower(): r[1] for r in rows})
    return counts


def _scheme_terms(scheme) -> dict:
    """A scheme's rules as flat text fields, so the checker sees what activation changes."""
    if scheme is None:
        return {}
    terms = {
        "scheme": f"{scheme.code} {scheme.name}",
        "method": scheme.method,
        "window_months": scheme.window_months,
        "downgrade_after_months": scheme.downgrade_after_months,
        "max_downgrade_steps": scheme.max_downgrade_steps,
    }
    for tier in scheme.tiers.order_by("rank"):
        unit = " CNY MADA" if scheme.method == "MADA" else " points"
        terms[f"tier {tier.rank}"] = f"{tier.code} {tier.name} ≥ {tier.threshold_display}{unit}"
    for indicator in scheme.indicators.order_by("kind", "category"):
        terms[f"indicator {indicator.kind} {indicator.category}".strip()] = (
            f"{indicator.points} per {indicator.per_unit}, cap {indicator.cap}"
        )
    return terms


def tier_scheme_request_activation(*, scheme, actor):
    """A product operator proposes a draft scheme for activation; another user decides."""
    from ..choices import SchemeStatus
    from ..models import TierScheme

    with transaction.atomic():
        scheme = TierScheme.objects.select_for_update().get(pk=scheme.pk)
        if scheme.status != SchemeStatus.DRAFT:
            raise TierRuleError("Only a draft scheme can be proposed for activation.")
        if not scheme.tiers.filter(threshold=0).exists():
            raise TierRuleError("The lowest tier must start at 0 so that every member has one.")
        scheme.status = SchemeStatus.PENDING
        scheme.save(update_fields=["status"])
        audit_record(actor=actor, action="tier_scheme.request_activation", obj=scheme)
        current = TierScheme.objects.filter(status=SchemeStatus.ACTIVE).first()
        approval_request_create(
            kind=ApprovalKind.TIER_SCHEME_ACTIVATION,
            obj=scheme,
            summary=f"{scheme.code} {scheme.name} replaces "
            + (current.code if current else "no active scheme"),
            current=_scheme_terms(current),
            proposal=_scheme_terms(scheme),
            actor=actor,
        )
    return scheme


def tier_scheme_decide_activation(*, scheme, approve: bool, actor, comment: str = ""):
    """Approve (the scheme becomes the one ACTIVE scheme; members are regraded by it at the
    next recompute, as a SCHEME_CHANGE) or reject (back to draft) a proposed activation. The
    proposer can never decide their own proposal."""
    from django.utils import timezone

    from portal.models import AuditEntry

    from ..choices import SchemeStatus
    from ..models import TierScheme

    with transaction.atomic():
        scheme = TierScheme.objects.select_for_update().get(pk=scheme.pk)
        if scheme.status != SchemeStatus.PENDING:
            raise TierRuleError("This scheme is not waiting for a decision.")
        proposal = (
            AuditEntry.objects.filter(
                action="tier_scheme.request_activation", object_id=str(scheme.pk)
            )
            .order_by("-at", "-id")
            .first()
        )
        if proposal is not None and proposal.actor_id == actor.pk:
            raise TierRuleError("You cannot decide your own proposal; ask a colleague.")
        if approve:
            TierScheme.objects.filter(status=SchemeStatus.ACTIVE).update(
                status=SchemeStatus.RETIRED
            )
            scheme.status = SchemeStatus.ACTIVE
            scheme.activated_at = timezone.now()
        else:
            scheme.status = SchemeStatus.DRAFT
        scheme.save(update_fields=["status", "activated_at"])
        audit_record(
            actor=actor,
            action="tier_scheme.approve" if approve else "tier_scheme.reject",
            obj=scheme,
            reason=comment,
        )
        approval_settle(
            kind=ApprovalKind.TIER_SCHEME_ACTIVATION,
            obj=scheme,
            approved=approve,
            actor=actor,
            comment=comment,
        )
    return scheme
