"""The data-warehouse feeds (API.md, "Feeds"): one file in, one `FeedBatch` out, every row
accepted, a duplicate or rejected with its line and reason; the facts go in set-based."""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import BinaryIO

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q, Sum
from django.utils import timezone

from portal.clock import today_in_shanghai
from portal.errors import InvalidInput
from portal.models import Branch, User
from portal.periods import add_months
from portal.services import audit_context, audit_record

from ..choices import FINANCIAL_CATEGORIES, AssetCategory, FeedKind, FeedStatus
from ..feeds import FEED_FORMATS, FactRow, MemberRow, RowError
from ..models import FeedBatch, FeedRejection, Member
from .activity import member_activity_record_many, member_last_active_advance_many

Progress = Callable[[str], None]
PROGRESS_EVERY_ROWS = 100_000
MEMBER_CHUNK_ROWS = 2_000
#: Feed imports of one kind are serialised on PostgreSQL with this advisory-lock key base.
_FEED_LOCK_BASE = 7_301_000


class FeedFileError(InvalidInput):
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


def _import_facts(*, batch: FeedBatch, file: BinaryIO, progress: Progress | None) -> None:
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
        if batch.kind == FeedKind.CONSUMPTION:
            # A day with card spending is an active day (API.md, lifecycle).
            member_activity_record_many(source=(_ACTIVE_DAYS, []))
            member_last_active_advance_many(source=(_ACTIVE_DAYS, []))
        cursor.execute("DROP TABLE feed_stage")
        cursor.execute("DROP TABLE feed_classified")
    _finish(batch, tally)


def asset_feed_missing_days(*, month) -> list:
    """Days of `month` that no loaded assets feed covers (a missing day counts as 0 in MADA,
    so grading on an incomplete month would wrongly push members down)."""
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
