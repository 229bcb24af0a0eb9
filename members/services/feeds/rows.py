"""Reading a feed file: its rows with line numbers and raw text, and the tally of what
happened to each (received = accepted + duplicates + rejected)."""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

from portal.clock import today_in_shanghai
from portal.errors import InvalidInput

from ...feeds import FEED_FORMATS, RowError
from ...models import FeedBatch, FeedRejection

Progress = Callable[[str], None]
PROGRESS_EVERY_ROWS = 100_000
#: how often the rows read so far are written where pages see them (`FeedBatch.rows_read`)
ROWS_READ_EVERY_ROWS = 10_000
MEMBER_CHUNK_ROWS = 2_000
#: Feed imports of one kind are serialised on PostgreSQL with this advisory-lock key base.
_FEED_LOCK_BASE = 7_301_000


class FeedFileError(InvalidInput):
    """The file itself cannot be imported (unreadable, not UTF-8, wrong header). The message
    is the English fact kept in the batch and printed by the command; `code` and `details`
    let a page say it in the reader's language (`members.forms.feed_file_error_text`)."""


@dataclass
class _Tally:
    received: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejections: list[FeedRejection] = field(default_factory=list)
    first_date: object = None
    last_date: object = None
    #: called with the rows read so far, every ROWS_READ_EVERY_ROWS rows and at the end
    rows_read: Callable[[int], None] | None = None

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


def feed_rows(file: BinaryIO, header: tuple[str, ...]) -> Iterator[tuple[int, list[str], str]]:
    """Yield (line number, fields, raw line) for each non-empty data row after the header."""
    text = io.TextIOWrapper(file, encoding="utf-8-sig", errors="strict", newline="")
    try:
        reader = csv.reader(text)
        try:
            got = next(reader)
        except StopIteration:
            raise FeedFileError(
                f"the file is empty; expected the header {','.join(header)}",
                code="empty",
                details={"expected": ",".join(header)},
            ) from None
        if tuple(column.strip() for column in got) != header:
            raise FeedFileError(
                f"wrong header {','.join(got)!r}; expected exactly {','.join(header)!r}",
                code="wrong_header",
                details={"found": ",".join(got)[:200], "expected": ",".join(header)},
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
            "export it again as UTF-8",
            code="not_utf8",
        ) from None
    except csv.Error as exc:
        raise FeedFileError(f"the file is not readable CSV: {exc}", code="not_csv") from None
    finally:
        text.detach()


def _rejoin(fields: list[str]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="").writerow(fields)
    return out.getvalue()


def _parse_all(batch: FeedBatch, file: BinaryIO, tally: _Tally, progress: Progress | None):
    """Parse every row, rejecting malformed ones in `tally`; yield (line_no, raw, parsed)."""
    fmt = FEED_FORMATS[batch.kind]
    width = len(fmt.header)
    today = today_in_shanghai()
    for line_no, fields, raw in feed_rows(file, fmt.header):
        tally.received += 1
        if tally.rows_read and tally.received % ROWS_READ_EVERY_ROWS == 0:
            tally.rows_read(tally.received)
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
    if tally.rows_read:
        tally.rows_read(tally.received)


def _finish(batch: FeedBatch, tally: _Tally) -> None:
    for rejection in tally.rejections:
        rejection.batch = batch
    FeedRejection.objects.bulk_create(tally.rejections, batch_size=5_000)
    batch.received = tally.received
    batch.accepted = tally.accepted
    batch.duplicates = tally.duplicates
    batch.rejected = FeedRejection.objects.filter(batch=batch).count()
    batch.first_date, batch.last_date = tally.first_date, tally.last_date
