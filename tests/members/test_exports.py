"""CSV exports of members (issue 7): the filtered member list and a segment, as a branch
manager, a product operator or an auditor downloads them. Masked, scoped, audited; a
segment export leaves out customers who opted out of marketing."""

from __future__ import annotations

import csv
import io
from datetime import date

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from members.choices import LifecycleStage
from members.exports import COLUMNS
from members.models import Tier
from portal.choices import Role
from portal.clock import today_in_shanghai
from portal.models import AuditEntry
from tests.factories import MemberFactory, SegmentFactory

PHONE = "13812345678"
PHONE_MASKED = "138****5678"
ID_NUMBER = "110101199003071234"
ID_MASKED = "110101**********34"
EXPORT = "/members/export.csv"


@pytest.fixture
def staff(make_user):
    return {
        "am1": make_user(Role.ACCOUNT_MANAGER, username="am1", branch="B01S1"),
        "am2": make_user(Role.ACCOUNT_MANAGER, username="am2", branch="B02S1"),
        "bm1": make_user(Role.BRANCH_MANAGER, username="bm1", branch="B01"),
        "bm2": make_user(Role.BRANCH_MANAGER, username="bm2", branch="B02"),
        "operator": make_user(Role.PRODUCT_OPERATOR, username="operator", branch="HO"),
        "auditor": make_user(Role.RISK_AUDITOR, username="auditor", branch="HO"),
    }


@pytest.fixture
def members(org, staff):
    """Two customers in branch 1 (one of am1's), two in branch 2 (one of am2's)."""
    gold = Tier.objects.filter(scheme__status="ACTIVE").order_by("-rank").first()
    return {
        "wang": MemberFactory(
            member_no="M1000001",
            name="王小明",
            phone=PHONE,
            id_number=ID_NUMBER,
            branch=org["B01S1"],
            account_manager=staff["am1"],
            tier=gold,
            lifecycle_stage=LifecycleStage.ACTIVE,
            last_active_on=date(2026, 11, 20),
            points_balance=1234,
        ),
        "li": MemberFactory(
            member_no="M1000002",
            name="李四",
            branch=org["B01"],
            lifecycle_stage=LifecycleStage.DORMANT,
        ),
        "zhao": MemberFactory(
            member_no="M2000001",
            name="赵六",
            branch=org["B02S1"],
            account_manager=staff["am2"],
            lifecycle_stage=LifecycleStage.DORMANT,
        ),
        "qian": MemberFactory(
            member_no="M2000002",
            name="钱七",
            branch=org["B02"],
            lifecycle_stage=LifecycleStage.ACTIVE,
        ),
    }


def _download(client, url, params=None, **extra):
    response = client.get(url, params or {}, REMOTE_ADDR="10.9.8.7", **extra)
    body = b"".join(response.streaming_content) if response.streaming else response.content
    return response, body


def _lines(body: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))


def _rows(body: bytes) -> list[dict]:
    """The rows by column (the header line is in the user's language)."""
    return [dict(zip(COLUMNS, line, strict=True)) for line in _lines(body)[1:]]


# --- the file ---------------------------------------------------------------------------------


def test_export_columns_are_masked_and_the_raw_values_never_sent(client, staff, members):
    client.force_login(staff["operator"])

    response, body = _download(client, EXPORT, {"q": "M1000001"})

    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert PHONE.encode() not in body and ID_NUMBER.encode() not in body
    header = _lines(body)[0]
    # a file for people: headers, names and labels in the user's language (简体中文 here)
    assert header[:7] == [
        "客户号",
        "姓名",
        "手机号（脱敏）",
        "证件号（脱敏）",
        "机构",
        "客户经理",
        "等级",
    ]
    assert header[8:] == ["生命周期阶段", "状态", "最近活跃", "积分余额"]
    (row,) = _rows(body)
    wang = members["wang"]
    assert row == {
        "member_no": "M1000001",
        "name": "王小明",
        "phone_masked": PHONE_MASKED,
        "id_number_masked": ID_MASKED,
        "branch": wang.branch.name,
        "account_manager": staff["am1"].get_full_name() or "am1",
        "tier": wang.tier.name,
        "mada": "",  # no figures for the month
        "lifecycle_stage": "活跃",
        "status": "正常",
        "last_active_on": "2026-11-20",
        "points_balance": "1234",
    }


def test_the_file_is_utf8_with_a_bom_and_named_with_the_date(client, staff, members):
    client.force_login(staff["operator"])

    response, body = _download(client, EXPORT)

    assert body.startswith(b"\xef\xbb\xbf")  # Excel then reads the Chinese names
    assert "王小明".encode() in body
    assert response["Content-Disposition"] == (
        f'attachment; filename="members-{today_in_shanghai():%Y%m%d}.csv"'
    )
    assert "no-store" in response["Cache-Control"]


def test_a_name_that_excel_would_run_as_a_formula_is_quoted(client, staff, org):
    MemberFactory(member_no="M3000001", name="=HYPERLINK(1)", branch=org["B01"])
    client.force_login(staff["operator"])

    _response, body = _download(client, EXPORT)

    (row,) = _rows(body)
    assert row["name"] == "'=HYPERLINK(1)"


# --- who exports what ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("who", "expected"),
    [
        ("bm1", {"M1000001", "M1000002"}),
        ("bm2", {"M2000001", "M2000002"}),
        ("operator", {"M1000001", "M1000002", "M2000001", "M2000002"}),
        ("auditor", {"M1000001", "M1000002", "M2000001", "M2000002"}),
    ],
)
def test_each_exports_exactly_the_customers_they_see(client, staff, members, who, expected):
    client.force_login(staff[who])

    _response, body = _download(client, EXPORT)

    assert {row["member_no"] for row in _rows(body)} == expected


def test_a_branch_filter_cannot_reach_another_branch(client, staff, members):
    client.force_login(staff["bm1"])

    _response, body = _download(client, EXPORT, {"branch": "B02"})

    assert _rows(body) == []
    assert "赵六".encode() not in body


@pytest.mark.parametrize("who", ["am1", "am2"])
def test_account_managers_have_no_export_right(client, staff, members, who):
    client.force_login(staff[who])

    response = client.get(EXPORT)

    assert response.status_code == 403
    assert not AuditEntry.objects.exists()


def test_the_list_page_offers_the_export_only_to_roles_allowed(client, staff, members):
    client.force_login(staff["bm1"])
    allowed = client.get("/members/", {"stage": "DORMANT"}).content.decode()
    client.force_login(staff["am1"])
    refused = client.get("/members/").content.decode()

    assert 'href="/members/export.csv?stage=DORMANT"' in allowed
    assert "/members/export.csv" not in refused


# --- filters and audit ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"stage": "DORMANT"}, {"M1000002", "M2000001"}),
        ({"branch": "B02"}, {"M2000001", "M2000002"}),
        ({"stage": "ACTIVE", "branch": "B01"}, {"M1000001"}),
        ({"q": "李四"}, {"M1000002"}),
    ],
)
def test_the_list_pages_filters_are_respected(client, staff, members, params, expected):
    client.force_login(staff["operator"])

    _response, body = _download(client, EXPORT, params)

    assert {row["member_no"] for row in _rows(body)} == expected


def test_an_export_is_audited_with_its_filters_count_and_ip(client, staff, members):
    client.force_login(staff["bm1"])

    _download(client, EXPORT, {"stage": "DORMANT"})

    entry = AuditEntry.objects.get(action="member.export")
    assert entry.actor == staff["bm1"]
    assert entry.changes == {"filters": {"stage": "DORMANT"}, "rows": 1}
    assert entry.ip == "10.9.8.7"


@pytest.mark.parametrize("username", ["operator", "auditor"])
def test_an_id_number_search_exports_no_one_and_is_audited_without_the_number(
    client, staff, members, username
):
    # a search by ID number is the audited, throttled personal search of the list page,
    # never carried into an export (tests/members/test_personal_search.py)
    client.force_login(staff[username])

    _response, body = _download(client, EXPORT, {"q": ID_NUMBER})

    assert _rows(body) == []
    entry = AuditEntry.objects.get(action="member.export")
    assert ID_NUMBER not in str(entry.changes)
    assert entry.changes["filters"]["q"] == ID_MASKED and entry.changes["rows"] == 0


def test_an_unknown_filter_value_is_refused_not_exported_unfiltered(client, staff, members):
    client.force_login(staff["operator"])

    response = client.get(EXPORT, {"stage": "SLEEPY"})

    assert response.status_code == 400
    assert not AuditEntry.objects.exists()


def test_the_export_query_count_does_not_grow_with_the_rows(client, staff, members, org):
    client.force_login(staff["operator"])
    _download(client, EXPORT)  # warm up (session, content types)
    with CaptureQueriesContext(connection) as few:
        _download(client, EXPORT)
    for _ in range(30):
        MemberFactory(branch=org["B02S1"], account_manager=staff["am2"], lifecycle_stage="NEW")
    with CaptureQueriesContext(connection) as many:
        _response, body = _download(client, EXPORT)

    assert len(_rows(body)) == 34
    # one COUNT, one audit INSERT, one streamed SELECT: no query per row or per chunk
    assert len(many) == len(few) <= 15


# --- segment export -------------------------------------------------------------------------------


@pytest.fixture
def dormant_segment(db):
    return SegmentFactory(
        code="SEG-DORMANT",
        rules=[{"field": "lifecycle_stage", "op": "in", "value": ["DORMANT"]}],
    )


def test_a_segment_export_leaves_out_customers_who_opted_out(
    client, staff, members, dormant_segment
):
    members["zhao"].marketing_opt_out = True
    members["zhao"].save()
    client.force_login(staff["operator"])

    response, body = _download(client, f"/members/segments/{dormant_segment.pk}/export.csv")

    assert response.status_code == 200
    assert [row["member_no"] for row in _rows(body)] == ["M1000002"]
    assert response["Content-Disposition"] == (
        f'attachment; filename="segment-SEG-DORMANT-{today_in_shanghai():%Y%m%d}.csv"'
    )
    entry = AuditEntry.objects.get(action="segment.export")
    assert (entry.object_type, entry.object_id) == ("members.segment", str(dormant_segment.pk))
    assert entry.changes["rows"] == 1 and entry.ip == "10.9.8.7"


@pytest.mark.parametrize(("who", "expected"), [("bm1", ["M1000002"]), ("bm2", ["M2000001"])])
def test_a_segment_export_is_scoped_to_the_user(
    client, staff, members, dormant_segment, who, expected
):
    client.force_login(staff[who])

    _response, body = _download(client, f"/members/segments/{dormant_segment.pk}/export.csv")

    assert [row["member_no"] for row in _rows(body)] == expected
    assert PHONE.encode() not in body


def test_a_segment_export_needs_the_export_right_and_an_existing_segment(
    client, staff, members, dormant_segment
):
    client.force_login(staff["am1"])
    refused = client.get(f"/members/segments/{dormant_segment.pk}/export.csv")
    client.force_login(staff["operator"])
    missing = client.get("/members/segments/999999/export.csv")

    assert refused.status_code == 403
    assert missing.status_code == 404
    assert not AuditEntry.objects.exists()


def test_a_member_export_filtered_by_segment_leaves_out_opted_out_customers(client, make_user, org):
    from tests.factories import SegmentFactory

    operator = make_user(Role.PRODUCT_OPERATOR, username="po_seg", branch="HO")
    dormant = [{"field": "lifecycle_stage", "op": "in", "value": ["DORMANT"]}]
    SegmentFactory(code="SLEEPERS", rules=dormant)
    keep = MemberFactory(lifecycle_stage="DORMANT", branch=org["B01S1"])
    away = MemberFactory(lifecycle_stage="DORMANT", branch=org["B01S1"], marketing_opt_out=True)
    awake = MemberFactory(lifecycle_stage="ACTIVE", branch=org["B01S1"])
    client.force_login(operator)

    body = b"".join(client.get("/members/export.csv?segment=SLEEPERS").streaming_content).decode()
    everyone = b"".join(client.get("/members/export.csv").streaming_content).decode()

    assert keep.member_no in body
    assert away.member_no not in body and awake.member_no not in body
    assert away.member_no in everyone  # not a marketing list: the customer is still listed
