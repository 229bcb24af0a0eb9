"""The members feed: rows validated in Python, upserted in chunks by member_no."""

from __future__ import annotations

from typing import BinaryIO

from portal.models import Branch, User

from ...feeds import MemberRow
from ...models import FeedBatch, Member
from .rows import MEMBER_CHUNK_ROWS, Progress, _finish, _parse_all, _Tally

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


def _import_members(
    *, batch: FeedBatch, file: BinaryIO, tally: _Tally, progress: Progress | None
) -> None:
    branches = dict(Branch.objects.values_list("code", "id"))
    managers: dict[str, int | None] = {}
    seen: dict[str, tuple[int, tuple]] = {}
    pending: list[tuple[int, str, MemberRow, tuple]] = []

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
            # the keyed hashes of phone and ID number are filled by their fields on insert
            update_fields=[*_MEMBER_FIELDS, "phone_digest", "id_number_digest", "updated_at"],
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
