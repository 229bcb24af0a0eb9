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

from django.db.models import OuterRef, QuerySet, Subquery
from django.utils.translation import get_language, override
from django.utils.translation import gettext as _

from portal.clock import today_in_shanghai
from portal.csv_export import csv_lines as portal_csv_lines
from portal.csv_export import csv_safe_text
from portal.display import name_of, person_name
from portal.masking import mask_personal_numbers
from portal.money import fen_to_decimal
from portal.periods import days_in
from portal.services import audit_record

from .feeds import rejection_reason_text
from .models import FeedBatch, FeedRejection, Member, MemberMonthlyStat, Segment
from .segments import segment_filter
from .selectors import MemberFilters, last_tier_recompute_date, member_list, member_scope
from .tiers import basis_month_for

#: rows fetched from the database per round trip while streaming
CHUNK_SIZE = 2000

#: the columns of every member export, in order: a file for people (headers, names and
#: labels in the user's language; the API keeps the codes)
COLUMNS = (
    "member_no",
    "name",
    "phone_masked",
    "id_number_masked",
    "branch",
    "account_manager",
    "tier",
    "mada",
    "lifecycle_stage",
    "status",
    "last_active_on",
    "points_balance",
)


def column_headers(*, mada_month: date) -> list[str]:
    """The header line in the user's language; the MADA column names its month."""
    return [
        _("Member no."),
        _("Name"),
        _("Phone (masked)"),
        _("ID number (masked)"),
        _("Branch"),
        _("Account manager"),
        _("Tier"),
        _("Monthly average daily assets %(month)s (CNY)") % {"month": f"{mada_month:%Y-%m}"},
        _("Lifecycle stage"),
        _("Status"),
        _("Last active"),
        _("Points balance"),
    ]


@dataclass(frozen=True)
class CsvExport:
    """An export ready to stream: its file name, row count and the CSV lines."""

    filename: str
    rows: int
    lines: Iterator[str]


def _mada_text(member: Member, mada_month: date) -> str:
    """The member's MADA of the month in yuan with 2 decimals (rounded down, as the tier
    engine grades it); empty without a statistic for the month."""
    day_sum = getattr(member, "mada_day_sum_fen", None)
    if day_sum is None:
        return ""
    return f"{fen_to_decimal(day_sum // days_in(mada_month)):.2f}"


def _row(member: Member, mada_month: date) -> list:
    return [
        csv_safe_text(member.member_no),
        csv_safe_text(member.name),
        member.masked_phone,
        member.masked_id_number,
        csv_safe_text(member.branch.name) if member.branch else "",
        csv_safe_text(person_name(member.account_manager)) if member.account_manager else "",
        csv_safe_text(name_of(member.tier)) if member.tier else "",
        _mada_text(member, mada_month),
        member.get_lifecycle_stage_display(),
        member.get_status_display(),
        member.last_active_on.isoformat() if member.last_active_on else "",
        member.points_balance,
    ]


def mada_month_of_exports() -> date:
    """The month whose MADA an export shows: the basis month of the last tier recompute
    (the last complete month), so the file agrees with the customer page's tier."""
    return basis_month_for(last_tier_recompute_date() or today_in_shanghai())


def csv_lines(members: Iterable[Member], *, mada_month: date | None = None) -> Iterator[str]:
    """The CSV text: a UTF-8 byte order mark (so Excel reads the Chinese names), the header,
    then one line per member, in the language active when it is called."""
    month = mada_month or mada_month_of_exports()
    return portal_csv_lines(
        column_headers(mada_month=month), (_row(member, month) for member in members)
    )


def _stream(members: QuerySet[Member]) -> Iterator[str]:
    """The lines, written in the language of the request that asked for them (the response
    streams after the request's language is no longer active)."""
    month = mada_month_of_exports()
    members = members.select_related("branch", "account_manager", "tier").annotate(
        mada_day_sum_fen=Subquery(
            MemberMonthlyStat.objects.filter(member=OuterRef("pk"), month=month).values(
                "financial_day_sum_fen"
            )[:1]
        )
    )
    language = get_language()

    def lines() -> Iterator[str]:
        with override(language):
            yield from csv_lines(members.iterator(chunk_size=CHUNK_SIZE), mada_month=month)

    return lines()


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
    "column_headers",
    "csv_lines",
    "feed_rejections_export",
    "member_export",
    "segment_export",
]
