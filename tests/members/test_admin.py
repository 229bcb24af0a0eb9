"""The members admin: masked personal data, read-only members, who may enter, the audit log
and scoping of the member list.

Entry to the admin follows the permission matrix, not `is_staff`
(tests/portal/test_permissions.py::test_admin_site_is_guarded_by_the_matrix).
"""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group

from members.models import Member
from portal.choices import Role
from portal.models import AuditEntry
from tests.factories import MemberFactory

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
    client.force_login(staff["operator"])

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
