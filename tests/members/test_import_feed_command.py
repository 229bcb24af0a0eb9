"""`python manage.py import_feed KIND FILE` from the outside (API.md, "Feeds"): one summary
line on stdout, exit 0 whenever the file was read, a CommandError (non-zero exit) that says
what to do when the file is missing, unreadable or has the wrong header."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from members.choices import FeedStatus
from members.models import AssetBalance, ConsumptionDay, FeedBatch, Member
from tests.factories import MemberFactory

pytestmark = pytest.mark.django_db

MEMBERS_HEADER = (
    "member_no,name,phone,id_number,birth_date,registered_at,branch_code,manager_username,"
    "credit_risk"
)
ASSETS_HEADER = "member_no,date,category,balance"
CONSUMPTION_HEADER = "member_no,date,amount,count"


@pytest.fixture
def members(db):
    return [MemberFactory(member_no=no) for no in ("M1", "M2")]


@pytest.fixture
def write(tmp_path):
    """Write a feed file into tmp_path (UTF-8 unless bytes are given); returns its path."""

    def write_file(name: str, content: str | bytes) -> Path:
        path = tmp_path / name
        path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
        return path

    return write_file


def run(kind: str, path: Path | str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("import_feed", kind, str(path), stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_an_assets_file_prints_the_exact_summary_line(members, write):
    path = write("assets_20261001.csv", f"{ASSETS_HEADER}\nM1,2026-10-01,DEMAND,100.00\n")

    out, _ = run("assets", path)

    assert out == "received=1 accepted=1 duplicates=0 rejected=0\n"
    assert AssetBalance.objects.get().balance_fen == 10000
    assert FeedBatch.objects.get().file_name == "assets_20261001.csv"


def test_rejected_rows_still_exit_zero_and_are_counted_in_the_summary(members, write):
    path = write(
        "assets.csv",
        "\n".join(
            [
                ASSETS_HEADER,
                "M1,2026-10-01,DEMAND,100.00",
                "M1,2026-10-01,DEMAND,100.00",
                "M9,2026-10-01,DEMAND,1.00",
                "M2,2026-10-01,CASH,1.00",
                "M2,2026-10-02,FUND,1.00",
            ]
        )
        + "\n",
    )

    out, err = run("assets", path)

    batch = FeedBatch.objects.get()
    assert out == "received=5 accepted=2 duplicates=1 rejected=2\n"
    assert f"feed batch #{batch.pk}" in err
    assert list(batch.rejections.values_list("line_no", "field")) == [
        (4, "member_no"),
        (5, "category"),
    ]


def test_a_members_file_prints_its_summary(db, write):
    path = write(
        "members.csv",
        f"{MEMBERS_HEADER}\n"
        "M1,张三,13812345678,110101199003071234,1990-03-07,2026-10-01,,,0\n"
        "M2,李四,not-a-phone,110101199003071234,,2026-10-01,,,0\n",
    )

    out, _ = run("members", path)

    assert out == "received=2 accepted=1 duplicates=0 rejected=1\n"
    assert Member.objects.get().member_no == "M1"


def test_a_consumption_file_prints_its_summary(members, write):
    path = write(
        "consumption.csv",
        f"{CONSUMPTION_HEADER}\nM1,2026-10-01,35.80,2\nM2,2026-10-01,0,0\n",
    )

    out, _ = run("consumption", path)

    assert out == "received=2 accepted=2 duplicates=0 rejected=0\n"
    assert ConsumptionDay.objects.count() == 2


def test_importing_the_same_file_twice_reports_every_row_as_a_duplicate(members, write):
    path = write(
        "assets.csv",
        f"{ASSETS_HEADER}\nM1,2026-10-01,DEMAND,1.00\nM2,2026-10-01,DEMAND,2.00\n",
    )
    run("assets", path)

    out, _ = run("assets", path)

    assert out == "received=2 accepted=0 duplicates=2 rejected=0\n"
    assert AssetBalance.objects.count() == 2
    assert FeedBatch.objects.filter(status=FeedStatus.DUPLICATE_FILE).count() == 1


def test_a_wrong_header_fails_with_a_message_saying_what_to_do(members, write):
    path = write("assets.csv", "member_no,day,category,balance\nM1,2026-10-01,DEMAND,1.00\n")

    with pytest.raises(CommandError) as failure:
        run("assets", path)

    message = str(failure.value)
    assert failure.value.returncode != 0
    assert str(path) in message
    assert "wrong header" in message
    assert ASSETS_HEADER in message
    assert "Nothing was imported; fix the file and run again." in message
    assert FeedBatch.objects.get().status == FeedStatus.FAILED
    assert not AssetBalance.objects.exists()


def test_a_missing_file_fails_with_a_message_saying_what_to_do(db, tmp_path):
    missing = tmp_path / "no_such_feed.csv"

    with pytest.raises(CommandError) as failure:
        run("assets", missing)

    assert failure.value.returncode != 0
    assert str(failure.value) == f"{missing}: no such file. Check the path and run again."
    assert not FeedBatch.objects.exists()


def test_an_empty_file_fails_naming_the_header_it_needs(db, write):
    path = write("consumption.csv", "")

    with pytest.raises(CommandError) as failure:
        run("consumption", path)

    assert "empty" in str(failure.value)
    assert CONSUMPTION_HEADER in str(failure.value)
    assert "fix the file and run again" in str(failure.value)


def test_a_file_that_is_not_utf8_fails_asking_for_a_utf8_export(members, write):
    path = write("assets.csv", f"{ASSETS_HEADER}\nM1,2026-10-01,DEMAND,1.00,备注\n".encode("gbk"))

    with pytest.raises(CommandError) as failure:
        run("assets", path)

    assert "UTF-8" in str(failure.value)
    assert "Nothing was imported" in str(failure.value)
    assert FeedBatch.objects.get().status == FeedStatus.FAILED


def test_a_directory_instead_of_a_file_fails_cleanly(db, tmp_path):
    with pytest.raises(CommandError) as failure:
        run("assets", tmp_path)

    assert str(tmp_path) in str(failure.value)
    assert "run again" in str(failure.value)


def test_an_unknown_kind_is_refused(db, write):
    path = write("assets.csv", f"{ASSETS_HEADER}\n")

    with pytest.raises(CommandError, match="invalid choice"):
        run("balances", path)

    assert not FeedBatch.objects.exists()
