"""The members admin: masked personal data, read-only members, who may enter, the audit log,
scoping of the member list, and segments written through the configuration services.

Entry to the admin follows the permission matrix, not `is_staff`
(tests/portal/test_permissions.py::test_admin_site_is_guarded_by_the_matrix).
"""

from __future__ import annotations

import pytest
from django.contrib.admin.models import DELETION, LogEntry
from django.contrib.auth.models import Group
from django.contrib.messages import get_messages

from members import admin as members_admin
from members.models import Member, Segment
from portal.choices import Role
from portal.models import AuditEntry
from tests.factories import CampaignFactory, DepartmentFactory, MemberFactory, SegmentFactory

PHONE = "13812345678"
PHONE_MASKED = "138****5678"
ID_NUMBER = "110101199003071234"
ID_MASKED = "110101**********34"
OTHER_PHONE = "13900001111"
OTHER_ID = "31010119851212567X"

MEMBERS_URL = "/admin/members/member/"
MEMBERS_HEADER = (
    "member_no,name,phone,id_number,birth_date,registered_at,branch_code,manager_username,"
    "credit_risk\n"
)


@pytest.fixture
def staff(make_user):
    branch_and_approver = make_user(
        Role.BUDGET_APPROVER, username="bm_approver", branch="B01", is_staff=True
    )
    branch_and_approver.groups.add(Group.objects.get(name=str(Role.BRANCH_MANAGER)))
    return {
        "am_a": make_user(Role.ACCOUNT_MANAGER, username="am_a", branch="B01S1"),
        "am_b": make_user(Role.ACCOUNT_MANAGER, username="am_b", branch="B02S1"),
        "operator": make_user(Role.PRODUCT_OPERATOR, username="operator", is_staff=True),
        "approver": make_user(Role.BUDGET_APPROVER, username="approver", is_staff=True),
        "auditor": make_user(Role.RISK_AUDITOR, username="auditor", is_staff=True),
        "bm_approver": branch_and_approver,
    }


@pytest.fixture
def members(org, staff):
    return {
        "a": MemberFactory(
            member_no="M0000123",
            name="王小明",
            phone=PHONE,
            id_number=ID_NUMBER,
            branch=org["B01S1"],
            account_manager=staff["am_a"],
        ),
        "b01": MemberFactory(member_no="M0000200", name="李四", branch=org["B01"]),
        "b": MemberFactory(
            member_no="M0000300",
            name="张三",
            phone=OTHER_PHONE,
            id_number=OTHER_ID,
            branch=org["B02S1"],
            account_manager=staff["am_b"],
        ),
    }


def _listed(response) -> set[str]:
    return {member.member_no for member in response.context["cl"].result_list}


def _change_url(member: Member) -> str:
    return f"{MEMBERS_URL}{member.pk}/change/"


# --- masked personal data -------------------------------------------------------------------


def test_member_changelist_shows_phone_and_id_masked_never_raw(client, staff, members):
    client.force_login(staff["operator"])

    response = client.get(MEMBERS_URL)
    html = response.content.decode()

    assert response.status_code == 200
    assert _listed(response) == {"M0000123", "M0000200", "M0000300"}
    assert PHONE_MASKED in html
    assert ID_MASKED in html
    assert "139****1111" in html
    assert "310101**********7X" in html
    for raw in (PHONE, ID_NUMBER, OTHER_PHONE, OTHER_ID):
        assert raw not in html


def test_member_change_page_shows_phone_and_id_masked_never_raw(client, staff, members):
    client.force_login(staff["operator"])

    response = client.get(_change_url(members["a"]))
    html = response.content.decode()

    assert response.status_code == 200
    assert PHONE_MASKED in html
    assert ID_MASKED in html
    assert PHONE not in html
    assert ID_NUMBER not in html


def test_member_history_page_shows_no_raw_personal_data(client, staff, members):
    client.force_login(staff["auditor"])

    response = client.get(f"{MEMBERS_URL}{members['a'].pk}/history/")

    assert response.status_code == 200
    assert PHONE not in response.content.decode()
    assert ID_NUMBER not in response.content.decode()


def test_admin_search_by_exact_id_number_finds_the_member_masked(client, staff, members):
    client.force_login(staff["auditor"])  # may reveal, so may search by ID number

    exact = client.get(MEMBERS_URL, {"q": ID_NUMBER})
    partial = client.get(MEMBERS_URL, {"q": ID_NUMBER[:10]})

    assert _listed(exact) == {"M0000123"}
    assert ID_MASKED in exact.content.decode()
    assert _listed(partial) == set()


@pytest.mark.parametrize(
    ("field", "right", "wrong"),
    [("phone", PHONE[:7], "1399"), ("id_number", ID_NUMBER[:10], "1101012000")],
)
def test_admin_member_list_cannot_be_filtered_on_raw_personal_data(
    client, staff, members, field, right, wrong
):
    client.force_login(staff["operator"])

    with_right = client.get(MEMBERS_URL, {f"{field}__startswith": right})
    with_wrong = client.get(MEMBERS_URL, {f"{field}__startswith": wrong})

    refused = with_right.status_code == 400 and with_wrong.status_code == 400
    assert refused or _listed(with_right) == _listed(with_wrong)


def test_rejected_members_feed_rows_are_masked_in_the_admin(client, import_csv, staff):
    import_csv(
        "members",
        MEMBERS_HEADER + f"M1000003,孙三,{PHONE},{ID_NUMBER},,2024-01-02,ZZZ,,0\n",
        actor=staff["operator"],
    )
    client.force_login(staff["auditor"])

    response = client.get("/admin/members/feedrejection/")
    html = response.content.decode()

    assert response.status_code == 200
    assert f"M1000003,孙三,{PHONE_MASKED},{ID_MASKED}" in html
    assert PHONE not in html
    assert ID_NUMBER not in html


# --- members are read-only -----------------------------------------------------------------


def test_product_operator_change_page_has_no_save_button(client, staff, members):
    client.force_login(staff["operator"])

    response = client.get(_change_url(members["a"]))
    html = response.content.decode()

    assert response.status_code == 200
    assert response.context["has_change_permission"] is False
    assert 'name="_save"' not in html
    assert 'name="_continue"' not in html
    assert 'name="_addanother"' not in html


def test_product_operator_cannot_change_a_member_by_post(client, staff, members):
    client.force_login(staff["operator"])

    response = client.post(
        _change_url(members["a"]),
        {"name": "改名", "status": "CLOSED", "points_balance": "99999", "_save": "Save"},
    )

    assert response.status_code == 403
    members["a"].refresh_from_db()
    assert members["a"].name == "王小明"
    assert members["a"].points_balance == 0


def test_nobody_adds_or_deletes_members_in_the_admin(client, staff, members):
    client.force_login(staff["operator"])

    assert client.get(f"{MEMBERS_URL}add/").status_code == 403
    assert client.get(f"{MEMBERS_URL}{members['a'].pk}/delete/").status_code == 403
    assert client.post(f"{MEMBERS_URL}{members['a'].pk}/delete/", {"post": "yes"}).status_code == (
        403
    )
    assert Member.objects.filter(pk=members["a"].pk).exists()


def test_bulk_delete_is_not_offered(client, staff, members):
    client.force_login(staff["operator"])

    response = client.post(
        MEMBERS_URL,
        {"action": "delete_selected", "_selected_action": [members["a"].pk], "post": "yes"},
    )

    assert response.status_code in (200, 302, 403)
    assert Member.objects.filter(pk=members["a"].pk).exists()


# --- who may enter ----------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["/admin/", MEMBERS_URL])
def test_account_manager_cannot_enter_the_admin(client, staff, members, url):
    client.force_login(staff["am_a"])

    response = client.get(url)

    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


@pytest.mark.parametrize("url", ["/admin/", MEMBERS_URL])
def test_account_manager_with_staff_flag_still_cannot_enter_the_admin(
    client, make_user, members, url
):
    client.force_login(make_user(Role.ACCOUNT_MANAGER, username="am_staff", is_staff=True))

    response = client.get(url)

    assert response.status_code in (302, 403)


def test_role_without_member_access_does_not_see_the_member_admin(client, staff, members):
    client.force_login(staff["approver"])  # in the admin for budgets, not members

    assert client.get("/admin/").status_code == 200
    assert client.get(MEMBERS_URL).status_code == 403
    assert client.get(_change_url(members["a"])).status_code == 403


# --- the audit log -------------------------------------------------------------------------


@pytest.fixture
def audit_entry(staff, members):
    return AuditEntry.objects.create(
        actor=staff["auditor"],
        action="member.reveal",
        object_type="members.Member",
        object_id=str(members["a"].pk),
        object_repr="M0000123",
        reason="complaint 2026-118",
    )


def test_risk_auditor_sees_the_audit_log(client, staff, audit_entry):
    client.force_login(staff["auditor"])

    listing = client.get("/admin/portal/auditentry/")
    detail = client.get(f"/admin/portal/auditentry/{audit_entry.pk}/change/")

    assert listing.status_code == 200
    assert audit_entry in listing.context["cl"].result_list
    assert "member.reveal" in listing.content.decode()
    assert detail.status_code == 200
    assert 'name="_save"' not in detail.content.decode()


def test_risk_auditor_cannot_change_or_delete_audit_entries(client, staff, audit_entry):
    client.force_login(staff["auditor"])

    changed = client.post(
        f"/admin/portal/auditentry/{audit_entry.pk}/change/", {"action": "x", "reason": "x"}
    )
    deleted = client.post(f"/admin/portal/auditentry/{audit_entry.pk}/delete/", {"post": "yes"})

    assert changed.status_code == 403
    assert deleted.status_code == 403
    audit_entry.refresh_from_db()
    assert audit_entry.action == "member.reveal"


def test_product_operator_does_not_see_the_audit_log(client, staff, audit_entry):
    client.force_login(staff["operator"])

    assert client.get("/admin/portal/auditentry/").status_code == 403


# --- scoping of the member list --------------------------------------------------------------


@pytest.mark.parametrize("username", ["operator", "auditor"])
def test_head_office_roles_see_every_member_in_the_admin(client, staff, members, username):
    client.force_login(staff[username])

    assert _listed(client.get(MEMBERS_URL)) == {"M0000123", "M0000200", "M0000300"}


def test_admin_member_list_is_scoped_like_the_portal(client, staff, members):
    """A branch manager who is also a budget approver (so may enter the admin) sees only
    their branch and its sub-branches."""
    client.force_login(staff["bm_approver"])

    response = client.get(MEMBERS_URL)

    assert response.status_code == 200
    assert _listed(response) == {"M0000123", "M0000200"}
    assert "M0000300" not in response.content.decode()


def test_admin_member_outside_the_scope_cannot_be_opened(client, staff, members):
    client.force_login(staff["bm_approver"])

    inside = client.get(_change_url(members["a"]))
    outside = client.get(_change_url(members["b"]))

    assert inside.status_code == 200
    assert outside.status_code == 302  # the admin's "does not exist" redirect
    assert outside["Location"] == "/admin/"
    followed = client.get(_change_url(members["b"]), follow=True).content.decode()
    assert "张三" not in followed
    assert OTHER_ID not in followed


def test_admin_search_stays_inside_the_scope(client, staff, members):
    client.force_login(staff["bm_approver"])

    assert _listed(client.get(MEMBERS_URL, {"q": OTHER_ID})) == set()
    assert _listed(client.get(MEMBERS_URL, {"q": "M0000300"})) == set()


# --- segments: written by the configuration services ----------------------------------------

SEGMENTS_URL = "/admin/members/segment/"
DORMANT = [{"field": "lifecycle_stage", "op": "in", "value": ["DORMANT"]}]
DORMANT_JSON = '[{"field": "lifecycle_stage", "op": "in", "value": ["DORMANT"]}]'


def _segment_form(department, **kw) -> dict:
    return {
        "code": "SEG-NEW",
        "name": "沉睡客户",
        "description": "",
        "department": str(department.pk),
        "rules": DORMANT_JSON,
        **kw,
    }


def _messages(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def _form_errors(response) -> str:
    return str(response.context["adminform"].form.errors)


@pytest.fixture
def department(db):
    return DepartmentFactory(code="RETAIL")


@pytest.fixture
def used_segment(db):
    """A segment an active campaign targets."""
    segment = SegmentFactory(code="SEG-USED", rules=DORMANT)
    CampaignFactory(code="C-USES", status="ACTIVE").segments.add(segment)
    return segment


def test_segment_added_in_the_admin_is_written_and_audited_by_the_service(
    client, staff, department
):
    client.force_login(staff["operator"])

    response = client.post(f"{SEGMENTS_URL}add/", _segment_form(department))

    assert response.status_code == 302
    segment = Segment.objects.get(code="SEG-NEW")
    assert segment.created_by == staff["operator"]
    assert segment.rules == DORMANT
    entry = AuditEntry.objects.get(action="segment.create")
    assert entry.actor == staff["operator"]
    assert entry.object_id == str(segment.pk)
    # the service's field-level diff in business codes (the admin used to record strings)
    assert entry.changes["rules"] == [None, DORMANT]
    assert entry.changes["department"] == [None, "RETAIL"]


def test_segment_changed_in_the_admin_audits_only_what_changed(client, staff, department):
    segment = SegmentFactory(code="SEG-A", name="旧名", department=department, rules=DORMANT)
    client.force_login(staff["operator"])

    response = client.post(
        f"{SEGMENTS_URL}{segment.pk}/change/", _segment_form(department, code="SEG-A", name="新名")
    )

    assert response.status_code == 302
    segment.refresh_from_db()
    assert segment.name == "新名"
    entry = AuditEntry.objects.get(action="segment.change")
    assert entry.actor == staff["operator"]
    assert entry.changes == {"name": ["旧名", "新名"]}


def test_an_invalid_rule_is_a_form_error_and_nothing_is_written(client, staff, department):
    segment = SegmentFactory(code="SEG-A", department=department, rules=DORMANT)
    client.force_login(staff["operator"])
    sleepy = '[{"field": "lifecycle_stage", "op": "in", "value": ["SLEEPY"]}]'

    added = client.post(f"{SEGMENTS_URL}add/", _segment_form(department, rules=sleepy))
    changed = client.post(
        f"{SEGMENTS_URL}{segment.pk}/change/",
        _segment_form(department, code="SEG-A", rules=sleepy),
    )

    assert added.status_code == 200
    assert "SLEEPY" in str(added.context["adminform"].form.errors["rules"])
    assert changed.status_code == 200
    assert "SLEEPY" in str(changed.context["adminform"].form.errors["rules"])
    assert list(Segment.objects.values_list("code", flat=True)) == ["SEG-A"]
    segment.refresh_from_db()
    assert segment.rules == DORMANT
    assert not AuditEntry.objects.exists()


def test_the_rules_of_a_segment_a_launched_campaign_uses_are_read_only(client, staff, used_segment):
    client.force_login(staff["operator"])

    page = client.get(f"{SEGMENTS_URL}{used_segment.pk}/change/")

    assert page.status_code == 200
    assert "rules" not in page.context["adminform"].form.fields


def test_a_refusal_of_the_service_is_shown_as_a_form_error_not_an_error_page(
    client, staff, used_segment, monkeypatch
):
    """The campaign was submitted after the page was opened: the page still offered the
    rules, the service refuses them; the form says why and nothing is written."""
    monkeypatch.setattr(members_admin, "segment_frozen_by", lambda segment: [])
    client.force_login(staff["operator"])

    response = client.post(
        f"{SEGMENTS_URL}{used_segment.pk}/change/",
        _segment_form(used_segment.department, code="SEG-USED", name="改名", rules="[]"),
    )

    assert response.status_code == 200
    assert "C-USES" in str(response.context["adminform"].form.errors["rules"])
    assert "C-USES" in response.content.decode()
    used_segment.refresh_from_db()
    assert used_segment.rules == DORMANT
    assert used_segment.name != "改名"
    assert not AuditEntry.objects.exists()
    assert not LogEntry.objects.exists()


def test_an_unused_segment_is_deleted_by_the_service(client, staff):
    segment = SegmentFactory(code="SEG-X", rules=DORMANT)
    client.force_login(staff["operator"])

    response = client.post(f"{SEGMENTS_URL}{segment.pk}/delete/", {"post": "yes"})

    assert response.status_code == 302
    assert not Segment.objects.exists()
    entry = AuditEntry.objects.get(action="segment.delete")
    assert entry.actor == staff["operator"]
    assert entry.changes["rules"] == [DORMANT, None]


def test_deleting_a_segment_a_campaign_targets_is_refused_with_a_message(
    client, staff, used_segment
):
    client.force_login(staff["operator"])
    url = f"{SEGMENTS_URL}{used_segment.pk}/delete/"

    asked = client.get(url)
    confirmed = client.post(url, {"post": "yes"})

    change_page = f"{SEGMENTS_URL}{used_segment.pk}/change/"
    assert (asked.status_code, asked["Location"]) == (302, change_page)
    assert (confirmed.status_code, confirmed["Location"]) == (302, change_page)
    for response in (asked, confirmed):
        said = _messages(response)
        assert said
        assert all("SEG-USED" in message and "C-USES" in message for message in said)
    assert Segment.objects.filter(pk=used_segment.pk).exists()
    assert not AuditEntry.objects.filter(action="segment.delete").exists()
    assert not LogEntry.objects.filter(action_flag=DELETION).exists()


def test_a_campaign_taking_up_the_segment_meanwhile_still_keeps_it(
    client, staff, used_segment, monkeypatch
):
    """The admin's check passed; the service, with the row locked, refuses."""
    monkeypatch.setattr(members_admin, "segment_targeted_by", lambda segments: {})
    client.force_login(staff["operator"])

    response = client.post(f"{SEGMENTS_URL}{used_segment.pk}/delete/", {"post": "yes"})

    assert response.status_code == 302
    assert "C-USES" in " ".join(_messages(response))
    assert Segment.objects.filter(pk=used_segment.pk).exists()
    assert not LogEntry.objects.filter(action_flag=DELETION).exists()


def _bulk_delete(client, *segments, confirmed: bool = True):
    data = {"action": "delete_selected", "_selected_action": [s.pk for s in segments]}
    if confirmed:
        data["post"] = "yes"
    return client.post(SEGMENTS_URL, data)


def test_bulk_delete_asks_then_deletes_unused_segments_through_the_service(client, staff):
    first, second = SegmentFactory(), SegmentFactory()
    client.force_login(staff["operator"])

    asked = _bulk_delete(client, first, second, confirmed=False)
    assert asked.status_code == 200  # the confirmation page
    assert Segment.objects.count() == 2

    deleted = _bulk_delete(client, first, second)

    assert deleted.status_code == 302
    assert not Segment.objects.exists()
    assert AuditEntry.objects.filter(action="segment.delete").count() == 2


@pytest.mark.parametrize("confirmed", [False, True])
def test_bulk_delete_with_a_segment_in_use_deletes_nothing_and_says_why(
    client, staff, used_segment, confirmed
):
    unused = SegmentFactory(code="SEG-FREE")
    client.force_login(staff["operator"])

    response = _bulk_delete(client, used_segment, unused, confirmed=confirmed)

    assert response.status_code == 302
    said = " ".join(_messages(response))
    assert "SEG-USED" in said
    assert "C-USES" in said
    assert "SEG-FREE" not in said
    assert Segment.objects.count() == 2
    assert not AuditEntry.objects.exists()
    assert not LogEntry.objects.filter(action_flag=DELETION).exists()


def test_bulk_delete_refused_by_the_service_meanwhile_deletes_nothing(
    client, staff, used_segment, monkeypatch
):
    monkeypatch.setattr(members_admin, "segment_targeted_by", lambda segments: {})
    unused = SegmentFactory(code="SEG-AAA")  # deleted first, then rolled back
    client.force_login(staff["operator"])

    response = _bulk_delete(client, unused, used_segment)

    assert response.status_code == 302
    assert "C-USES" in " ".join(_messages(response))
    assert Segment.objects.count() == 2
    assert not AuditEntry.objects.exists()
    assert not LogEntry.objects.filter(action_flag=DELETION).exists()


def test_risk_auditor_reads_segments_but_cannot_write_them(client, staff, department):
    segment = SegmentFactory(code="SEG-A", name="原名", department=department)
    client.force_login(staff["auditor"])

    page = client.get(f"{SEGMENTS_URL}{segment.pk}/change/")
    added = client.post(f"{SEGMENTS_URL}add/", _segment_form(department))
    changed = client.post(
        f"{SEGMENTS_URL}{segment.pk}/change/", _segment_form(department, code="SEG-A", name="改")
    )
    deleted = client.post(f"{SEGMENTS_URL}{segment.pk}/delete/", {"post": "yes"})
    bulk = _bulk_delete(client, segment)

    assert page.status_code == 200
    assert page.context["has_change_permission"] is False
    assert (added.status_code, changed.status_code, deleted.status_code) == (403, 403, 403)
    assert bulk.status_code in (200, 302, 403)
    assert list(Segment.objects.values_list("code", "name")) == [("SEG-A", "原名")]
    assert not AuditEntry.objects.exists()


def test_account_manager_is_sent_to_the_login_page_for_segments(client, staff, department):
    client.force_login(staff["am_a"])

    response = client.post(f"{SEGMENTS_URL}add/", _segment_form(department))

    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")
    assert not Segment.objects.exists()
