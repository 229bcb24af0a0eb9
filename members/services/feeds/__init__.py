"""The data-warehouse feeds (API.md, "Feeds"): one file in, one `FeedBatch` out, every row
accepted, a duplicate or rejected with its line and reason (`rows`); the members feed is
upserted in chunks (`member_rows`), the daily facts go in set-based (`facts`); the nightly
chain checks that the files arrived."""

from __future__ import annotations

import logging
from datetime import datetime, time, timedelta
from typing import BinaryIO

from django.db import DEFAULT_DB_ALIAS, DatabaseError, connection, connections, transaction
from django.db.models import Q, Sum
from django.utils import timezone

from portal.clock import SHANGHAI
from portal.models import User
from portal.periods import add_months
from portal.services import audit_context, audit_record

from ...choices import FeedKind, FeedStatus
from ...feeds import FEED_FORMATS
from ...models import FeedBatch
from ...selectors import FEED_RUNNING_LOCK_CLASS, FEED_RUNNING_LOCK_IDS, feed_batch_process_alive
from .facts import _import_facts
from .member_rows import _import_members
from .rows import _FEED_LOCK_BASE, FeedFileError, Progress, _checksum, _Tally, feed_rows

logger = logging.getLogger(__name__)

__all__ = [
    "FeedFileError",
    "asset_feed_missing_days",
    "feed_arrival_check",
    "feed_arrival_warning",
    "feed_batches_interrupted_mark",
    "feed_import",
    "feed_rows",
]


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
    A file whose rows were all refused is REJECTED, not LOADED. Importing the same file
    again changes nothing. The batch is committed as LOADING before the first row is read,
    so an import that dies leaves a trace: a file that cannot be read or has the wrong
    header raises `FeedFileError` and an error midway re-raises, both leaving the batch
    FAILED with the rows read so far; a killed process leaves it LOADING, shown and then
    recorded as INTERRUPTED. Nothing of a FAILED or INTERRUPTED batch is kept, so the same
    file can simply be imported again.
    """
    if kind not in FEED_FORMATS:
        raise FeedFileError(f"unknown feed kind {kind!r}; use one of {', '.join(FEED_FORMATS)}")
    started_at = timezone.now()
    try:
        checksum = _checksum(file)
    except OSError as exc:
        raise FeedFileError(f"cannot read the file: {exc}") from exc
    batch = _batch_start(
        kind=kind, file_name=file_name, checksum=checksum, actor=actor, started_at=started_at
    )
    tally = _Tally()
    try:
        with _RowsReadWriter(batch) as rows_read:
            tally.rows_read = rows_read
            _feed_import_rows(batch=batch, file=file, tally=tally, actor=actor, progress=progress)
    except FeedFileError as exc:
        _batch_stop(batch=batch, status=FeedStatus.FAILED, error=str(exc), tally=tally)
        raise
    except Exception as exc:
        error = (
            f"the import stopped after {tally.received:,} rows read: {type(exc).__name__}: {exc}"
        )
        _batch_stop(batch=batch, status=FeedStatus.FAILED, error=error, tally=tally)
        raise
    except BaseException:  # Ctrl-C, SystemExit: the process is going away
        error = f"the import was interrupted after {tally.received:,} rows read"
        _batch_stop(batch=batch, status=FeedStatus.INTERRUPTED, error=error, tally=tally)
        raise
    finally:
        _batch_release(batch)
    return batch


def _feed_import_rows(
    *, batch: FeedBatch, file: BinaryIO, tally: _Tally, actor: User | None, progress
) -> None:
    """The import itself, one transaction: the batch row is written only at its end (the
    rows read so far go in through `_RowsReadWriter`'s own connection meanwhile)."""
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                lock_key = _FEED_LOCK_BASE + list(FEED_FORMATS).index(batch.kind)
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [lock_key])
        earlier = _same_file_loaded_last(kind=batch.kind, checksum=batch.checksum)
        if earlier is not None:
            _count_as_duplicate_file(batch=batch, earlier=earlier, file=file)
        elif batch.kind == FeedKind.MEMBERS:
            _import_members(batch=batch, file=file, tally=tally, progress=progress)
        else:
            _import_facts(batch=batch, file=file, tally=tally, progress=progress)
        if earlier is None:
            batch.status = (
                FeedStatus.REJECTED
                if batch.received and not batch.accepted and not batch.duplicates
                else FeedStatus.LOADED
            )
        batch.rows_read = batch.received
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


def _batch_start(
    *, kind: str, file_name: str, checksum: str, actor: User | None, started_at
) -> FeedBatch:
    """The LOADING batch, committed on its own before the import reads a row (unless the
    caller holds a transaction), after recording as INTERRUPTED the batches whose import
    process is gone. On PostgreSQL the import holds a session lock on its batch from here
    on; the database drops it with a dead process's connection, which is how the pages and
    the next import tell."""
    with transaction.atomic():
        feed_batches_interrupted_mark()
        batch = FeedBatch.objects.create(
            kind=kind,
            file_name=file_name[:255],
            checksum=checksum,
            status=FeedStatus.LOADING,
            imported_by=actor,
            started_at=started_at,
        )
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT pg_advisory_lock(%s, %s)",
                    [FEED_RUNNING_LOCK_CLASS, batch.pk % FEED_RUNNING_LOCK_IDS],
                )
    return batch


def feed_batches_interrupted_mark() -> int:
    """Record as INTERRUPTED every LOADING batch whose import process is gone; returns how
    many. Its rows were never committed, so nothing else needs undoing."""
    stale = FeedBatch.objects.alias(process_alive=feed_batch_process_alive()).filter(
        status=FeedStatus.LOADING, process_alive=False
    )
    return FeedBatch.objects.filter(pk__in=list(stale.values_list("pk", flat=True))).update(
        status=FeedStatus.INTERRUPTED,
        finished_at=timezone.now(),
        error="the import process ended before the file was loaded; nothing was kept",
    )


def _batch_stop(*, batch: FeedBatch, status: str, error: str, tally: _Tally) -> None:
    """The import stopped: its transaction was rolled back, so the batch keeps no counts,
    only how far it read and why it stopped."""
    batch.status = status
    batch.error = error
    batch.received = batch.accepted = batch.duplicates = batch.rejected = 0
    batch.first_date = batch.last_date = None
    batch.rows_read = tally.received
    batch.finished_at = timezone.now()
    try:
        batch.save()
    except DatabaseError:  # the database went away too: the batch stays LOADING and reads
        # INTERRUPTED once its lock is gone; the original error is the one raised
        logger.warning("feed batch #%s: could not record its stop", batch.pk, exc_info=True)


def _batch_release(batch: FeedBatch) -> None:
    if connection.vendor != "postgresql":
        return
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_advisory_unlock(%s, %s)",
                [FEED_RUNNING_LOCK_CLASS, batch.pk % FEED_RUNNING_LOCK_IDS],
            )
    except DatabaseError:  # a lost connection has dropped the lock already
        logger.info("feed batch #%s: lock gone with its connection", batch.pk)


class _RowsReadWriter:
    """Writes the rows read so far into the LOADING batch on a connection of its own, so
    pages see them while the import's transaction is open (PostgreSQL only: on SQLite the
    import holds the one write lock). Never waits: a row lock held elsewhere skips an
    update."""

    def __init__(self, batch: FeedBatch) -> None:
        self.batch_id = batch.pk
        self.side = None
        if connection.vendor == "postgresql" and not connection.in_atomic_block:
            self.side = connections.create_connection(DEFAULT_DB_ALIAS)

    def __enter__(self):
        return self if self.side is not None else None

    def __call__(self, rows_read: int) -> None:
        try:
            with self.side.cursor() as cursor:
                cursor.execute(
                    "UPDATE members_feedbatch SET rows_read = %s WHERE id = ("
                    "SELECT id FROM members_feedbatch WHERE id = %s AND status = %s "
                    "FOR NO KEY UPDATE SKIP LOCKED)",
                    [rows_read, self.batch_id, FeedStatus.LOADING],
                )
        except DatabaseError:  # progress is for the eyes only; the import goes on
            logger.info("feed batch #%s: rows read not recorded", self.batch_id, exc_info=True)

    def __exit__(self, *exc_info) -> None:
        if self.side is not None:
            self.side.close()


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
    received = sum(1 for _ in feed_rows(file, header))
    batch.status = FeedStatus.DUPLICATE_FILE
    batch.duplicate_of = earlier
    batch.received = batch.duplicates = received
    batch.rows_read = received
    batch.first_date, batch.last_date = earlier.first_date, earlier.last_date


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
    rest of the chain still runs on the data it has. A kind whose file came but had every
    row refused (a REJECTED batch) is missing too, and is also listed under `rejected` with
    its batches and their rejected rows, so the check says the file came and was refused."""
    day = business_date - timedelta(days=1)
    counts: dict = {"feed_date": day.isoformat()}
    missing, rejected = [], []
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
            refused = _refused_files_of(kind=kind, day=day, business_date=business_date)
            if refused:
                rejected.append(str(kind))
                counts[f"{kind}_rejected_batches"] = [pk for pk, _rows in refused]
                counts[f"{kind}_rejected_rows"] = sum(rows for _pk, rows in refused)
    counts["missing"] = missing
    counts["rejected"] = rejected
    return counts


def _refused_files_of(*, kind: str, day, business_date) -> list[tuple[int, int]]:
    """REJECTED batches of `kind` (id, rejected rows) for `day`: those whose refused rows
    carry the day, and those with no readable date at all imported from that day until
    the end of the business date."""
    since = datetime.combine(day, time.min, tzinfo=SHANGHAI)
    until = datetime.combine(business_date + timedelta(days=1), time.min, tzinfo=SHANGHAI)
    return list(
        FeedBatch.objects.filter(kind=kind, status=FeedStatus.REJECTED)
        .filter(
            Q(first_date__lte=day, last_date__gte=day)
            | Q(first_date__isnull=True, started_at__gte=since, started_at__lt=until)
        )
        .order_by("id")
        .values_list("id", "rejected")
    )


def feed_arrival_warning(counts: dict) -> str:
    """The feed check's warning in plain words, from `feed_arrival_check`'s counts: which
    feed did not come, and which came with every row refused. "" when both arrived."""
    refused = counts.get("rejected", [])
    absent = [kind for kind in counts["missing"] if kind not in refused]
    parts = []
    if absent:
        parts.append(f"No {' and '.join(absent)} feed for {counts['feed_date']} yet")
    for kind in refused:
        batches = ", ".join(f"#{pk}" for pk in counts[f"{kind}_rejected_batches"])
        parts.append(
            f"The {kind} feed for {counts['feed_date']} arrived but every row was rejected "
            f"({counts[f'{kind}_rejected_rows']} rows, feed batch {batches})"
        )
    if not parts:
        return ""
    remedy = "Import the missing file(s)" if not refused else "Import the corrected file(s)"
    return "; ".join(parts) + (
        f": later steps use the data that has arrived. {remedy}, then re-run this date."
    )
