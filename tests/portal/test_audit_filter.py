"""The audit page's object filter takes a member number (portal/audit.py `named_objects`):
an auditor who types MX000001 sees that member's history — the member row's own changes and
those of rows that belong to the member (notes, tier requests, grants…), and the actions
recorded about them — never another member's; junk is an empty result with a message, never
the 500 (`FieldError`) the probe found."""

from __future__ import annotations

import pghistory
import pytest

from members.models import Member
from members.services import followup_note_add
from portal import audit
from portal.choices import Role
from portal.models import AuditEntry
from portal.services import audit_context, audit_record
from tests.factories import MemberFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(make_user):
    return {
        "auditor": make_user(Role.RISK_AUDITOR, username="auditor", branch="HO"),
        "am": make_user(Role.ACCOUNT_MANAGER, username="am", branch="B01S1"),
    }


@pytest.fixture
def members(org, staff):
    """MX000001 with a changed name, a follow-up note and a reveal; M0000123 beside it."""
    # the request context of the history rows (a no-op on SQLite, which records none)
    with audit_context(user=staff["am"].pk, url="/members/MX000001/"):
        ours = MemberFactory(member_no="MX000001", branch=org["B01S1"], account_manager=staff["am"])
        theirs = MemberFactory(
            member_no="M0000123", branch=org["B01S1"], account_manager=staff["am"]
        )
        Member.objects.filter(pk=ours.pk).update(name="新名字")
        Member.objects.filter(pk=theirs.pk).update(name="别人")
        note = followup_note_add(member=ours, actor=staff["am"], text="call back", due_on=None)
        followup_note_add(member=theirs, actor=staff["am"], text="not ours", due_on=None)
        audit_record(actor=staff["am"], action="member.reveal", obj=ours, reason="KYC")
        audit_record(actor=staff["am"], action="member.reveal", obj=theirs, reason="KYC")
    return {"ours": ours, "theirs": theirs, "note": note}


def audit_page(client, user, **params):
    client.force_login(user)
    client.raise_request_exception = False
    return client.get("/audit/", params, HTTP_ACCEPT_LANGUAGE="en")


def changes_shown(response) -> set[tuple[str, str, str]]:
    return {
        (change.model_label, change.object_id, change.kind)
        for change in response.context["page"].object_list
    }


def actions_shown(response) -> set[tuple[str, str, str]]:
    return {
        (entry.action, entry.object_type, entry.object_id)
        for entry, _changes in response.context["page"].object_list
    }


@pytest.mark.postgres
def test_a_member_number_shows_the_members_changes_and_those_of_its_rows(client, staff, members):
    ours, theirs, note = members["ours"], members["theirs"], members["note"]

    response = audit_page(client, staff["auditor"], object_id="MX000001")

    assert response.status_code == 200
    shown = changes_shown(response)
    assert ("members.member", str(ours.pk), "insert") in shown
    assert ("members.member", str(ours.pk), "update") in shown
    assert ("members.followupnote", str(note.pk), "insert") in shown
    assert all(
        object_id != str(theirs.pk) for label, object_id, _kind in shown if "member" in label
    )
    assert {label for label, _id, _kind in shown} == {"members.member", "members.followupnote"}
    assert "新名字" in response.content.decode()
    assert "别人" not in response.content.decode()


@pytest.mark.postgres
def test_a_member_number_finds_a_member_that_was_deleted(client, staff, members):
    ours = members["ours"]
    pk = ours.pk
    with pghistory.context(user=staff["am"].pk):
        members["note"].delete()
        Member.objects.filter(pk=pk).delete()

    response = audit_page(client, staff["auditor"], object_id="MX000001")

    assert ("members.member", str(pk), "delete") in changes_shown(response)


def test_a_member_number_shows_the_actions_recorded_about_the_member_and_its_rows(
    client, staff, members
):
    ours, theirs, note = members["ours"], members["theirs"], members["note"]

    response = audit_page(client, staff["auditor"], tab="actions", object_id="MX000001")

    assert response.status_code == 200
    shown = actions_shown(response)
    assert ("member.reveal", "members.member", str(ours.pk)) in shown
    assert ("note.add", "members.followupnote", str(note.pk)) in shown
    assert ("member.reveal", "members.member", str(theirs.pk)) not in shown
    about_theirs = AuditEntry.objects.exclude(object_id__in=[str(ours.pk), str(note.pk)])
    assert about_theirs.exists()
    assert not shown & {(e.action, e.object_type, e.object_id) for e in about_theirs}


@pytest.mark.postgres
def test_a_row_id_still_finds_that_row(client, staff, members):
    ours = members["ours"]

    response = audit_page(client, staff["auditor"], object_id=str(ours.pk), model="members.member")

    assert changes_shown(response) == {
        ("members.member", str(ours.pk), "insert"),
        ("members.member", str(ours.pk), "update"),
    }


JUNK = ["-1", "abc", "MX999999", "M 1", "M.1", "'; drop table", "9" * 40, "X" * 65, "测试"]


@pytest.mark.postgres
@pytest.mark.parametrize("tab", ["changes", "actions"])
def test_junk_in_the_object_filter_is_an_empty_result_with_a_message(client, staff, members, tab):
    pages = {junk: audit_page(client, staff["auditor"], tab=tab, object_id=junk) for junk in JUNK}

    assert {junk: page.status_code for junk, page in pages.items()} == dict.fromkeys(JUNK, 200)
    for junk, page in pages.items():
        assert list(page.context["page"].object_list) == [], junk
        assert page.context["form"].errors.get("object_id"), junk


@pytest.mark.postgres
def test_the_probes_object_ids_are_never_a_500(client, staff):
    for object_id in ["MX000001", "-1", "abc"]:
        response = audit_page(client, staff["auditor"], object_id=object_id)

        assert response.status_code == 200, object_id
        assert changes_shown(response) == set()


def test_an_unknown_member_number_says_so(client, staff, members):
    response = audit_page(client, staff["auditor"], tab="actions", object_id="MX999999")

    assert "No member has the number MX999999" in response.content.decode()


def test_a_malformed_object_id_says_what_the_filter_takes(client, staff, members):
    response = audit_page(client, staff["auditor"], tab="actions", object_id="M 1")

    assert "Enter a row id (digits) or a member number" in response.content.decode()


def test_nul_in_the_object_filter_is_400(client, staff):
    response = audit_page(client, staff["auditor"], object_id="M\x00")

    assert response.status_code == 400


@pytest.mark.parametrize(
    "text, valid, row_id",
    [
        ("MX000001", True, None),
        ("M0000123", True, None),
        (" MX000001 ", True, None),
        ("123", True, 123),
        ("9" * 18, True, 10**18 - 1),
        ("9" * 19, True, None),  # too long for a row id: a member number
        ("-1", True, None),
        ("abc", True, None),
        ("", False, None),
        ("M\x00", False, None),
        ("M 1", False, None),
        ("A" * 33, False, None),
    ],
)
def test_what_the_object_filter_names(text, valid, row_id):
    named = audit.named_objects(text)

    assert (named.valid, named.row_id) == (valid, row_id)
    assert audit.object_id_valid(text) is valid
