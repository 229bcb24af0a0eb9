"""Personal data at rest: every stored phone, ID number and refused feed row under the
current key.

`personal_data_reencrypt` walks the member table and its history table in id order, a batch
at a time, and rewrites the rows whose values are clear (written before encryption) or
under an older key, with their keyed hashes; one UPDATE per batch, each batch committed on
its own, so a stopped run loses nothing and the next run goes on where it is needed.
The clear values exist only in this process's memory: the database never sees them.
Used by the migration that introduced encryption and by `manage.py personal_data_key`.

History rows are append-only (a trigger refuses UPDATE); re-encrypting them changes no
value, only its ciphertext, so that trigger, and the member table's history trigger, are
set aside for these statements alone. The run is one audit entry (the command writes it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pgtrigger
from django.db import connection, transaction

from portal.crypto import key_id_of, personal_decrypt, personal_digest, personal_keys
from portal.crypto import personal_encrypt as _encrypt
from portal.sql import execute, rows_source

__all__ = ["PersonalDataReport", "personal_data_reencrypt", "personal_data_status"]


@dataclass(frozen=True)
class _Table:
    name: str
    id_column: str
    #: encrypted column → the purpose bound to its ciphertext
    columns: dict[str, str]
    #: encrypted column → the column of its keyed hash
    digests: dict[str, str] = field(default_factory=dict)


_TABLES = (
    _Table(
        "members_member",
        "id",
        {"phone": "phone", "id_number": "id_number"},
        {"phone": "phone_digest", "id_number": "id_number_digest"},
    ),
    _Table("members_memberhistory", "pgh_id", {"phone": "phone", "id_number": "id_number"}),
    _Table("members_feedrejection", "id", {"raw": "feed row"}),
)
#: triggers set aside while values are re-encrypted (their meaning does not change)
_TRIGGERS = ("members.Member:update_update", "members.MemberHistory:append_only")


@dataclass
class PersonalDataReport:
    """Rows read and rows rewritten, per table."""

    scanned: dict[str, int] = field(default_factory=dict)
    rewritten: dict[str, int] = field(default_factory=dict)

    def line(self) -> str:
        return " ".join(
            f"{table}: scanned={self.scanned.get(table, 0):,} "
            f"rewritten={self.rewritten.get(table, 0):,}"
            for table in (t.name for t in _TABLES)
        )


def _like_escaped(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def personal_data_status() -> dict[str, dict[str, int]]:
    """Per table: how many non-empty values are clear, under each configured key, or under
    a key no longer configured (those do not decrypt: put the key back)."""
    status: dict[str, dict[str, int]] = {}
    key_ids = [key.key_id for key in personal_keys()]
    for table in _TABLES:
        parts, params = [], []
        for column in table.columns:
            parts.append(
                f"SUM(CASE WHEN {column} <> '' AND {column} NOT LIKE 'enc1:%%' THEN 1 ELSE 0 END)"
            )
            parts.append(f"SUM(CASE WHEN {column} <> '' THEN 1 ELSE 0 END)")
            for key_id in key_ids:
                parts.append(f"SUM(CASE WHEN {column} LIKE %s ESCAPE '\\' THEN 1 ELSE 0 END)")
                params.append(f"enc1:{_like_escaped(key_id)}:%")
        row = execute(f"SELECT {', '.join(parts)} FROM {table.name}", params)[0]
        counts = {"clear": 0, "other key": 0, **{f"key {key_id}": 0 for key_id in key_ids}}
        values = iter(int(v or 0) for v in row)
        for _column in table.columns:
            clear, filled = next(values), next(values)
            under = [next(values) for _ in key_ids]
            counts["clear"] += clear
            for key_id, count in zip(key_ids, under, strict=True):
                counts[f"key {key_id}"] += count
            counts["other key"] += filled - clear - sum(under)
        status[table.name] = counts
    return status


def _stored(value: str, purpose: str, current: str, *, clear: bool) -> str:
    """The stored form `value` should have."""
    value = value or ""
    if clear:
        return personal_decrypt(value, purpose=purpose)
    if value and key_id_of(value) != current:
        return _encrypt(personal_decrypt(value, purpose=purpose), purpose=purpose)
    return value


def personal_data_reencrypt(
    *,
    batch_size: int = 5_000,
    clear: bool = False,
    progress: Callable[[str], None] | None = None,
) -> PersonalDataReport:
    """Rewrite every stored phone, ID number and refused feed row that is not under the
    current key (and every keyed hash that is not the current key's). `clear=True` does
    the opposite, for the migration's reverse only: clear values back, hashes emptied."""
    current = personal_keys()[0].key_id
    report = PersonalDataReport()
    for table in _TABLES:
        columns = list(table.columns)
        read = [table.id_column, *columns, *table.digests.values()]
        select = (
            f"SELECT {', '.join(read)} FROM {table.name} WHERE {table.id_column} > %s "
            f"ORDER BY {table.id_column} LIMIT %s"
        )
        total = execute(f"SELECT COUNT(*) FROM {table.name}", [])[0][0]
        last_id, scanned, rewritten = 0, 0, 0
        while True:
            rows = execute(select, [last_id, batch_size])
            if not rows:
                break
            last_id = rows[-1][0]
            scanned += len(rows)
            changes = []
            for row in rows:
                old = tuple(value or "" for value in row[1:])
                new = [
                    _stored(value, table.columns[column], current, clear=clear)
                    for column, value in zip(columns, old, strict=False)
                ]
                for column in table.digests:
                    value = old[columns.index(column)]
                    purpose = table.columns[column]
                    new.append(
                        ""
                        if clear
                        else personal_digest(
                            personal_decrypt(value, purpose=purpose), purpose=purpose
                        )
                    )
                if tuple(new) != old:
                    changes.append((row[0], *new))
            if changes:
                _write(table, changes)
                rewritten += len(changes)
            if progress:
                progress(
                    f"{table.name}: {scanned:,} of {total:,} rows read, {rewritten:,} rewritten"
                )
        report.scanned[table.name] = scanned
        report.rewritten[table.name] = rewritten
    return report


def _write(table: _Table, changes: list[tuple]) -> None:
    columns = {"row_id": "bigint"} | {
        name: "text" for name in [*table.columns, *table.digests.values()]
    }
    source, params = rows_source(columns, changes)
    assignments = ", ".join(f"{name} = u.{name}" for name in list(columns)[1:])
    sql = (
        f"UPDATE {table.name} SET {assignments} FROM {source} AS u "
        f"WHERE {table.name}.{table.id_column} = u.row_id"
    )
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with pgtrigger.ignore(*_TRIGGERS):
                execute(sql, params)
        else:
            execute(sql, params)
