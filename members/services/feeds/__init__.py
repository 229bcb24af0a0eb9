"""The data-warehouse feeds (API.md, "Feeds"): one file in, one `FeedBatch` out, every row
accepted, a duplicate or rejected with its line and reason (`rows`); the members feed is
upserted in chunks (`member_rows`), the daily facts go in set-based (`facts`); the nightly
chain checks that the files arrived."""

from __future__ import annotations

from datetime import timedelta
from typing import BinaryIO

from django.db import connection, transaction
from django.db.models import Q, Sum
from django.utils import timezone

from portal.models import User
from portal.periods import add_months
from portal.services import audit_context, audit_record

from ...choices import FeedKind, FeedStatus
from ...feeds import FEED_FORMATS
from ...models import FeedBatch
from .facts import _import_facts
from .member_rows import _import_members
from .rows import _FEED_LOCK_BASE, FeedFileError, Progress, _checksum, feed_rows

__all__ = [
    "FeedFileError",
    "asset_feed_missing_days",
    "feed_arrival_check",
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
    received = sum(1 for _ in feed_rows(file, header))
    batch.status = FeedStatus.DUPLICATE_FILE
    batch.duplicate_of = earlier
    batch.received = batch.duplicates = received
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
