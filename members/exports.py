"""CSV exports of members (issue 7): the member list as filtered on the list page, and a
segment as a marketing list. Rows come from the scoped selectors, so an export holds exactly
what its user may see on the pages; phone and ID number are masked like everywhere else.

Every export is audited before its first row is sent ("member.export", "segment.export"),
with what was asked for and how many rows it holds (counted up front: one COUNT, then the
rows streamed from one query in chunks, so memory stays flat however large the list).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from datetime import date

from django.db.models import QuerySet

from portal.clock import today_in_shanghai
from portal.csv_export import csv_lines as portal_csv_lines
from portal.csv_export import csv_safe_text
from portal.masking import mask_personal_numbers
from portal.services import audit_record

from .feeds import rejection_reason_text
from .models import FeedBatch, FeedRejection, Member, Segment
from .segments import segment_filter
from .selectors import MemberFilters, member_list, member_scope

#: rows fetched from the database per round trip while streaming
CHUNK_SIZE = 2000

#: the columns of every member export, in order
COLUMNS = (
    "member_no",
    "name",
    "phone_masked",
    "id_number_masked",
    "branch_code",
    "account_manager",
    "tier",
    "lifecycle_stage",
    "status",
    "last_active_on",
    "points_balance",
)


@dataclass(frozen=True)
class CsvExport:
    """An export ready to stream: its file name, row count and the CSV lines."""

    filename: str
    rows: int
    lines: Iterator[str]


def _row(member: Member) -> list:
    return [
        csv_safe_text(member.member_no),
        csv_safe_text(member.name),
        member.masked_phone,
        member.masked_id_number,
        member.branch.code if member.branch else "",
        member.account_manager.username if member.account_manager else "",
        member.tier.code if member.tier else "",
        member.lifecycle_stage,
        member.status,
        member.last_active_on.isoformat() if member.last_active_on else "",
        member.points_balance,
    ]


def csv_lines(members: Iterable[Member]) -> Iterator[str]:
    """The CSV text: a UTF-8 byte order mark (so Excel reads the Chinese names), the header,
    then one line per member."""
    return portal_csv_lines(COLUMNS, (_row(member) for member in members))


def _stream(members: QuerySet[Member]) -> Iterator[str]:
    members = members.select_related("branch", "account_manager", "tier")
    return csv_lines(members.iterator(chunk_size=CHUNK_SIZE))


def _filters_for_audit(filters: MemberFilters) -> dict[str, str]:
    """The filters asked for, as the audit trail keeps them: a search for an exact phone or
    ID number is recorded masked (the number is matched, never stored in clear)."""
    described = {name: value for name, value in asdict(filters).items() if value}
    if "q" in described:
        described["q"] = mask_personal_numbers(described["q"])
    return described


def member_export(
    *, user, filters: MemberFilters | None = None, ip: str | None = None, on: date | None = None
) -> CsvExport:
    """The member list the user sees on the list page with these filters, as CSV with phone
    and ID number masked; recorded as "member.export" with the filters and the row count."""
    filters = filters or MemberFilters()
    members = member_list(user=user, filters=filters)
    if filters.segment:
        # filtered by a segment, the export is a marketing list: opted-out customers stay out
        members = members.exclude(marketing_opt_out=True)
    count = members.count()
    audit_record(
        actor=user,
        action="member.export",
        changes={"filters": _filters_for_audit(filters), "rows": count},
        ip=ip,
    )
    day = on or today_in_shanghai()
    return CsvExport(f"members-{day:%Y%m%d}.csv", count, _stream(members))


def segment_export_members(*, user, segment: Segment, on: date | None = None) -> QuerySet[Member]:
    """The segment's members in the user's scope, without those who opted out of marketing:
    a segment export is a marketing list."""
    return (
        member_scope(user=user)
        .filter(segment_filter(segment, on=on))
        .exclude(marketing_opt_out=True)
        .order_by("member_no")
    )


def segment_export(
    *, user, segment: Segment, ip: str | None = None, on: date | None = None
) -> CsvExport:
    """A segment's members (in the user's scope, opted-out customers left out) as CSV with
    phone and ID number masked; recorded as "segment.export" with the row count."""
    day = on or today_in_shanghai()
    members = segment_export_members(user=user, segment=segment, on=day)
    count = members.count()
    audit_record(
        actor=user,
        action="segment.export",
        obj=segment,
        changes={"segment": segment.code, "rows": count, "excludes": "marketing_opt_out"},
        ip=ip,
    )
    code = "".join(c if c.isalnum() or c in "-_" else "_" for c in segment.code)
    return CsvExport(f"segment-{code}-{day:%Y%m%d}.csv", count, _stream(members))


#: the columns of a feed batch's rejected rows
REJECTION_COLUMNS = ("line", "field", "reason", "row_masked")


def _rejection_row(rejection: FeedRejection) -> list:
    return [
        rejection.line_no,
        csv_safe_text(rejection.field),
        csv_safe_text(rejection_reason_text(rejection.reason)),
        csv_safe_text(rejection.masked_raw()),
    ]


def feed_rejections_export(*, user, batch: FeedBatch, ip: str | None = None) -> CsvExport:
    """A feed batch's rejected rows as CSV: line number, field, the reason in the reader's
    language and the row as received with anything shaped like a phone or ID number masked,
    as the feed page shows it; recorded as "feed.rejections_export" with the row count."""
    rejections = batch.rejections.order_by("line_no")
    count = rejections.count()
    audit_record(
        actor=user, action="feed.rejections_export", obj=batch, changes={"rows": count}, ip=ip
    )
    lines = portal_csv_lines(
        REJECTION_COLUMNS,
        (
            _rejection_row(rejection)
            for rejection in rejections.select_related("batch").iterator(chunk_size=CHUNK_SIZE)
        ),
    )
    return CsvExport(f"feed-{batch.pk}-rejected.csv", count, lines)


__all__ = [
    "COLUMNS",
    "REJECTION_COLUMNS",
    "CsvExport",
    "csv_lines",
    "feed_rejections_export",
    "member_export",
    "segment_export",
]
