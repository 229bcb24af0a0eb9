"""Feed statuses a bank can trust (issue "Nights a bank can trust"): a file whose every row
was refused is REJECTED and the feed check says so; an import that dies midway leaves a
FAILED or INTERRUPTED batch with the rows it had read, and the same file then loads."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connection
from django.utils import translation

from members.choices import FeedStatus
from members.feeds import REJECTION_REASONS, rejection_reason_known, rejection_reason_text
from members.models import AssetBalance, FeedBatch, FeedRejection, Member
from members.selectors import feed_batch_list
from members.services import (
    feed_arrival_check,
    feed_arrival_warning,
    feed_batches_interrupted_mark,
    feed_import,
)
from operations import nightly
from portal.clock import today_in_shanghai
from tests.factories import FeedBatchFactory, MemberFactory

pytestmark = pytest.mark.django_db

ASSETS_HEADER = "member_no,date,category,balance"
MEMBERS_HEADER = (
    "member_no,name,phone,id_number,birth_date,registered_at,branch_code,manager_username,"
    "credit_risk"
)
FEED_DAY = date(2026, 11, 25)
BUSINESS_DATE = FEED_DAY + timedelta(days=1)


def assets(*rows: str) -> str:
    return "\n".join([ASSETS_HEADER, *rows]) + "\n"


def run_command(kind: str, path: Path) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("import_feed", kind, str(path), stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


@pytest.fixture
def members(db):
    return [MemberFactory(member_no=no) for no in ("M1", "M2")]


# --- every row refused ------------------------------------------------------------------------


def test_a_file_whose_every_row_is_refused_is_rejected_not_loaded(import_csv, members):
    batch = import_csv(
        "assets", assets(f"M9,{FEED_DAY},DEMAND,1.00", f"M8,{FEED_DAY},CASH,1.00"), name="a.csv"
    )

    assert batch.status == FeedStatus.REJECTED
    assert (batch.received, batch.accepted, batch.duplicates, batch.rejected) == (2, 0, 0, 2)
    assert batch.reconciles
    assert batch.finished_at is not None
    assert not AssetBalance.objects.exists()


def test_a_header_only_file_stays_loaded_and_a_partly_refused_file_too(import_csv, members):
    empty = import_csv("assets", assets(), name="empty.csv")
    partly = import_csv(
        "assets", assets(f"M1,{FEED_DAY},DEMAND,1.00", f"M9,{FEED_DAY},DEMAND,1.00"), name="p.csv"
    )

    assert empty.status == FeedStatus.LOADED
    assert (partly.status, partly.accepted, partly.rejected) == (FeedStatus.LOADED, 1, 1)


def test_the_command_still_prints_only_the_summary_line_and_exits_zero(members, tmp_path):
    path = tmp_path / "assets.csv"
    path.write_text(assets(f"M9,{FEED_DAY},DEMAND,1.00"), encoding="utf-8")

    out, err = run_command("assets", path)

    batch = FeedBatch.objects.get()
    assert out == "received=1 accepted=0 duplicates=0 rejected=1\n"
    assert "Every row was rejected" in err
    assert f"#{batch.pk} is REJECTED" in err


def test_the_feed_check_says_the_file_came_and_every_row_was_rejected(import_csv, members):
    refused = import_csv("assets", assets(f"M9,{FEED_DAY},DEMAND,1.00"), name="assets.csv")
    import_csv("consumption", f"member_no,date,amount,count\nM1,{FEED_DAY},1.00,1\n")

    counts, warning = nightly._feed_check(BUSINESS_DATE, None)

    assert counts["missing"] == ["assets"]
    assert counts["rejected"] == ["assets"]
    assert counts["assets_rejected_batches"] == [refused.pk]
    assert counts["assets_rejected_rows"] == 1
    assert warning  # the step is a WARNING, not a quiet success
    message = feed_arrival_warning(counts)
    assert "assets feed for 2026-11-25 arrived but every row was rejected" in message
    assert f"#{refused.pk}" in message
    assert "No assets" not in message
    assert "re-run this date" in message


def test_a_refused_file_with_no_readable_date_is_counted_on_the_night_it_came(import_csv, members):
    batch = import_csv("assets", assets("M1,not-a-date,DEMAND,1.00"))
    assert batch.status == FeedStatus.REJECTED and batch.first_date is None
    today = today_in_shanghai()

    counts = feed_arrival_check(business_date=today + timedelta(days=1))

    assert counts["rejected"] == ["assets"]
    assert "consumption" in counts["missing"] and "consumption" not in counts["rejected"]


def test_the_feed_check_wording_for_a_missing_file_is_unchanged(db):
    counts = feed_arrival_check(business_date=BUSINESS_DATE)

    assert counts["rejected"] == []
    assert feed_arrival_warning(counts) == (
        "No assets and consumption feed for 2026-11-25 yet: later steps use the data that has "
        "arrived. Import the missing file(s), then re-run this date."
    )


def test_a_refused_file_does_not_make_its_rerun_a_duplicate(import_csv, members):
    text = assets(f"M3,{FEED_DAY},DEMAND,1.00")
    first = import_csv("assets", text)
    MemberFactory(member_no="M3")  # the member arrives, the same file is sent again

    again = import_csv("assets", text)

    assert first.status == FeedStatus.REJECTED
    assert (again.status, again.accepted) == (FeedStatus.LOADED, 1)


# --- an import that dies midway ----------------------------------------------------------------


class BreaksWhileReading(io.BytesIO):
    """A file that reads whole once (the checksum), then fails partway on the second pass,
    as a network share or a disk might."""

    def __init__(self, data: bytes, *, fail_after: int) -> None:
        super().__init__(data)
        self.passes = 0
        self.fail_after = fail_after

    def seek(self, *args):
        if args and args[0] == 0:
            self.passes += 1
        return super().seek(*args)

    def read(self, size=-1):
        if self.passes >= 2 and self.tell() >= self.fail_after:
            raise OSError("connection to the file share lost")
        return super().read(size if size is None or size < 0 else min(size, 4096))

    def read1(self, size=-1):
        return self.read(size)

    def readinto(self, buffer):
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


CATEGORIES = ("DEMAND", "TIME", "WEALTH", "FUND", "INSURANCE", "BOND", "MORTGAGE", "LOAN")


def _rows(n: int) -> list[str]:
    """n distinct asset rows of M1 and M2, 16 a day from 2026-01-01."""
    start = date(2026, 1, 1)
    return [
        f"M{1 + i % 2},{start + timedelta(days=i // 16)},{CATEGORIES[i // 2 % 8]},1.00"
        for i in range(n)
    ]


def test_an_import_that_breaks_midway_is_failed_with_the_rows_read_and_loads_again(members):
    data = assets(*_rows(4_000)).encode("utf-8")

    with pytest.raises(OSError, match="file share"):
        feed_import(
            kind="assets", file=BreaksWhileReading(data, fail_after=60_000), file_name="a.csv"
        )

    failed = FeedBatch.objects.get()
    assert failed.status == FeedStatus.FAILED
    assert 0 < failed.rows_read < 4_000
    assert f"after {failed.rows_read:,} rows read" in failed.error
    assert "OSError" in failed.error
    assert (failed.received, failed.accepted, failed.rejected) == (0, 0, 0)  # nothing kept
    assert failed.reconciles
    assert not AssetBalance.objects.exists()
    assert not FeedRejection.objects.exists()

    again = feed_import(kind="assets", file=io.BytesIO(data), file_name="a.csv")

    assert again.status == FeedStatus.LOADED  # not "same file loaded before"
    assert (again.received, again.accepted, again.rejected) == (4_000, 4_000, 0)
    assert again.reconciles and again.rows_read == 4_000
    assert AssetBalance.objects.count() == 4_000


def test_a_command_whose_process_is_stopped_leaves_the_batch_interrupted(members, tmp_path):
    def stop(*args, **kwargs):
        raise KeyboardInterrupt

    path = tmp_path / "assets.csv"
    path.write_text(assets(f"M1,{FEED_DAY},DEMAND,1.00"), encoding="utf-8")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("members.services.feeds._same_file_loaded_last", stop)
        with pytest.raises(KeyboardInterrupt):
            run_command("assets", path)

    batch = FeedBatch.objects.get()
    assert batch.status == FeedStatus.INTERRUPTED
    out, _ = run_command("assets", path)
    assert out == "received=1 accepted=1 duplicates=0 rejected=0\n"


def test_a_loading_batch_whose_process_is_gone_shows_and_is_then_recorded_interrupted(db):
    stale = FeedBatchFactory(status=FeedStatus.LOADING, rows_read=30_000)
    if connection.vendor != "postgresql":  # SQLite: only staleness tells
        FeedBatch.objects.filter(pk=stale.pk).update(
            started_at=stale.started_at - timedelta(days=1)
        )

    shown = feed_batch_list().get(pk=stale.pk)
    assert shown.status == FeedStatus.LOADING
    assert shown.status_shown == FeedStatus.INTERRUPTED and shown.stopped

    assert feed_batches_interrupted_mark() == 1
    stale.refresh_from_db()
    assert (stale.status, stale.rows_read) == (FeedStatus.INTERRUPTED, 30_000)
    assert "nothing was kept" in stale.error


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_an_import_killed_with_sigkill_is_interrupted_and_the_same_file_then_loads(tmp_path):
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: the process's session lock tells a dead import")
    for n in range(100):
        MemberFactory(member_no=f"K{n:03d}")
    categories = ("DEMAND", "TIME", "WEALTH", "FUND", "INSURANCE", "BOND", "MORTGAGE", "LOAN")
    start = date(2026, 1, 1)
    rows = [
        f"K{n:03d},{start + timedelta(days=d)},{category},1.00"
        for d in range(300)
        for n in range(100)
        for category in categories
    ]  # 240,000 rows: seconds to read, so there is time to kill it midway
    path = tmp_path / "assets_big.csv"
    path.write_text(assets(*rows), encoding="utf-8")
    db = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
    }
    process = subprocess.Popen(  # noqa: S603 - our own interpreter and manage.py
        [sys.executable, "manage.py", "import_feed", "assets", str(path)],
        cwd=settings.BASE_DIR,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            running = FeedBatch.objects.filter(status=FeedStatus.LOADING, rows_read__gt=0).first()
            if running is not None or process.poll() is not None:
                break
            time.sleep(0.05)
        assert running is not None, process.communicate()
        assert feed_batch_list().get(pk=running.pk).status_shown == FeedStatus.LOADING  # alive
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    read_so_far = running.rows_read

    deadline = time.monotonic() + 30  # the server drops the dead session and its lock
    while feed_batch_list().get(pk=running.pk).status_shown != FeedStatus.INTERRUPTED:
        assert time.monotonic() < deadline, "the killed import still looks alive"
        time.sleep(0.1)
    shown = feed_batch_list().get(pk=running.pk)
    assert shown.status == FeedStatus.LOADING and 0 < shown.rows_read < len(rows)
    assert shown.rows_read >= read_so_far
    assert not AssetBalance.objects.exists()  # nothing of the killed import was kept

    with path.open("rb") as handle:
        again = feed_import(kind="assets", file=handle, file_name=path.name)

    running.refresh_from_db()
    assert running.status == FeedStatus.INTERRUPTED  # recorded by the next import
    assert again.status == FeedStatus.LOADED
    assert (again.received, again.accepted, again.rejected) == (len(rows), len(rows), 0)
    assert again.reconciles
    assert AssetBalance.objects.count() == len(rows)
    assert Member.objects.count() == 100


# --- reasons in the reader's language ------------------------------------------------------------


def test_every_reason_the_feeds_write_has_a_translatable_template(import_csv, members):
    """If this fails, a reason was reworded in the feed code: update REJECTION_REASONS."""
    MemberFactory(member_no="M5")
    import_csv("assets", assets(f"M5,{FEED_DAY},DEMAND,1.00"))  # loaded, to conflict with below
    batches = [
        import_csv(
            "members",
            "\n".join(
                [
                    MEMBERS_HEADER,
                    ",王五,13812345678,110101199003071234,,2026-10-01,,,0",
                    "M 1,王五,13812345678,110101199003071234,,2026-10-01,,,0",
                    "M3,,13812345678,110101199003071234,,2026-10-01,,,0",
                    f"M3,{'王' * 101},13812345678,110101199003071234,,2026-10-01,,,0",
                    "M3,王五,12,110101199003071234,,2026-10-01,,,0",
                    "M3,王五,13812345678,1234,,2026-10-01,,,0",
                    "M3,王五,13812345678,110101199003071234,1990-13-01,2026-10-01,,,0",
                    "M3,王五,13812345678,110101199003071234,2999-01-01,2026-10-01,,,0",
                    "M3,王五,13812345678,110101199003071234,,,,,0",
                    "M3,王五,13812345678,110101199003071234,,yesterday,,,0",
                    "M3,王五,13812345678,110101199003071234,,2026-10-01T25:00,,,0",
                    "M3,王五,13812345678,110101199003071234,,2026-10-01T10:00,,,0",
                    "M3,王五,13812345678,110101199003071234,,2999-01-01,,,0",
                    "M3,王五,13812345678,110101199003071234,,2026-10-01,,,2",
                    "M3,王五,13812345678,110101199003071234,,2026-10-01,ZZZ,,0",
                    "M3,王五,13812345678,110101199003071234,,2026-10-01,,nobody,0",
                    "M4,王五,13812345678,110101199003071234,,2026-10-01,,,0",
                    "M4,王六,13812345678,110101199003071234,,2026-10-01,,,0",
                    "M4,王\x00六,13812345678,110101199003071234,,2026-10-01,,,0",
                    "M4,王六",
                ]
            )
            + "\n",
        ),
        import_csv(
            "assets",
            assets(
                "M1,2026-10-32,DEMAND,1.00",
                "M1,2999-01-01,DEMAND,1.00",
                "M1,2026-10-01,DEMAND,-1.00",
                "M1,2026-10-01,DEMAND,1.001",
                "M1,2026-10-01,CASH,1.00",
                "M9,2026-10-01,DEMAND,1.00",
                "M2,2026-10-01,DEMAND,1.00",
                "M2,2026-10-01,DEMAND,2.00",
                f"M5,{FEED_DAY},DEMAND,9.00",
            ),
        ),
        import_csv("consumption", "member_no,date,amount,count\nM1,2026-10-01,1.00,x\n"),
    ]

    reasons = set(FeedRejection.objects.filter(batch__in=batches).values_list("reason", flat=True))

    assert len(reasons) >= 24
    assert [reason for reason in reasons if not rejection_reason_known(reason)] == []
    assert len(REJECTION_REASONS) == 27


def test_a_reason_is_shown_through_its_translation_with_its_values():
    reason = "unknown branch 'ZZZ'"

    with translation.override("en"):
        assert rejection_reason_text(reason) == "unknown branch 'ZZZ'"
    with translation.override("zh-hans"):
        assert rejection_reason_text(reason) == "未知网点“ZZZ”"
        assert rejection_reason_text("something new") == "something new"
