"""Personal data and customer rights (issue 7): the audited reveal of a customer's full phone
and ID number, and the customer's opt-out of personalised marketing, through the customer
page as account managers, branch managers and auditors use it."""

from __future__ import annotations

import json
import logging

import pytest

from members.models import Member
from members.services import member_marketing_opt_out_set, member_personal_data_reveal
from portal.choices import Role
from portal.errors import NotAllowed
from portal.models import AuditEntry
from tests.factories import MemberFactory

PHONE = "13812345678"
PHONE_MASKED = "138****5678"
ID_NUMBER = "110101199003071234"
ID_MASKED = "110101**********34"
RAW = (PHONE, ID_NUMBER)
IP = "10.1.2.3"


@pytest.fixture
def staff(make_user):
    return {
        "am": make_user(Role.ACCOUNT_MANAGER, username="am_a", branch="B01S1"),
        "am_other": make_user(Role.ACCOUNT_MANAGER, username="am_b", branch="B01S1"),
        "bm": make_user(Role.BRANCH_MANAGER, username="bm_b01", branch="B01"),
        "bm_other": make_user(Role.BRANCH_MANAGER, username="bm_b02", branch="B02"),
        "auditor": make_user(Role.RISK_AUDITOR, username="auditor", branch="HO"),
        "operator": make_user(Role.PRODUCT_OPERATOR, username="operator", branch="HO"),
        "admin": make_user(Role.ADMINISTRATOR, username="admin", branch="HO"),
    }


@pytest.fixture
def member(org, staff):
    return MemberFactory(
        member_no="M0000123",
        name="王小明",
        phone=PHONE,
        id_number=ID_NUMBER,
        branch=org["B01S1"],
        account_manager=staff["am"],
    )


REVEAL = "/members/M0000123/reveal/"
PAGE = "/members/M0000123/"


def _reveal(client, reason="客户来电核实身份", **extra):
    return client.post(REVEAL, {"reason": reason}, REMOTE_ADDR=IP, **extra)


def _audit_text(entry: AuditEntry) -> str:
    return " ".join([entry.reason, entry.object_repr, entry.object_id, json.dumps(entry.changes)])


# --- reveal ---------------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["am", "bm", "auditor"])
def test_allowed_roles_see_the_full_values_once_with_one_audit_entry(client, staff, member, who):
    client.force_login(staff[who])

    response = _reveal(client)

    body = response.content.decode()
    assert response.status_code == 200
    assert PHONE in body and ID_NUMBER in body
    assert "no-store" in response["Cache-Control"]
    entry = AuditEntry.objects.get(action="member.reveal")
    assert entry.actor == staff[who]
    assert (entry.reason, entry.ip) == ("客户来电核实身份", IP)
    assert (entry.object_type, entry.object_id) == ("members.member", str(member.pk))
    for raw in RAW:
        assert raw not in _audit_text(entry)


def test_with_htmx_the_reveal_returns_only_the_fragment(client, staff, member):
    client.force_login(staff["am"])

    response = _reveal(client, HTTP_HX_REQUEST="true")

    body = response.content.decode()
    assert response.status_code == 200
    assert 'id="personal-data"' in body
    assert "<html" not in body and "王小明" not in body  # not the whole page
    assert PHONE in body and ID_NUMBER in body
    assert AuditEntry.objects.filter(action="member.reveal").count() == 1


def test_revealed_values_are_not_kept_in_the_session_nor_shown_again(client, staff, member):
    client.force_login(staff["am"])
    _reveal(client)

    again = client.get(PAGE).content.decode()

    assert PHONE not in again and ID_NUMBER not in again
    assert PHONE_MASKED in again and ID_MASKED in again
    session = json.dumps(dict(client.session.items()), default=str)
    assert PHONE not in session and ID_NUMBER not in session


@pytest.mark.parametrize("reason", ["", "   "])
def test_a_reveal_without_a_reason_is_refused_and_not_audited(client, staff, member, reason):
    client.force_login(staff["am"])

    response = _reveal(client, reason=reason, HTTP_ACCEPT_LANGUAGE="en")

    body = response.content.decode()
    assert response.status_code == 400
    assert "Give a reason to reveal the personal data." in body
    assert PHONE not in body and ID_NUMBER not in body
    assert PHONE_MASKED in body
    assert not AuditEntry.objects.filter(action="member.reveal").exists()


def test_with_htmx_a_missing_reason_comes_back_as_the_fragment_with_the_error(
    client, staff, member
):
    client.force_login(staff["am"])

    response = _reveal(client, reason="", HTTP_HX_REQUEST="true", HTTP_ACCEPT_LANGUAGE="en")

    body = response.content.decode()
    assert "Give a reason to reveal the personal data." in body
    assert PHONE not in body and ID_NUMBER not in body
    assert not AuditEntry.objects.exists()


def test_a_reason_longer_than_255_characters_is_refused(client, staff, member):
    client.force_login(staff["am"])

    response = _reveal(client, reason="x" * 256)

    assert response.status_code == 400
    assert PHONE not in response.content.decode()
    assert not AuditEntry.objects.exists()


@pytest.mark.parametrize("who", ["operator", "admin"])
def test_roles_without_the_right_get_403_and_nothing_is_audited(client, staff, member, who):
    client.force_login(staff[who])

    response = _reveal(client)

    assert response.status_code == 403
    assert PHONE not in response.content.decode()
    assert not AuditEntry.objects.exists()


@pytest.mark.parametrize("who", ["am_other", "bm_other"])
def test_another_managers_or_branchs_customer_is_404(client, staff, member, who):
    client.force_login(staff[who])

    response = _reveal(client)

    assert response.status_code == 404
    assert PHONE not in response.content.decode()
    assert not AuditEntry.objects.exists()


def test_a_get_of_the_reveal_url_reveals_nothing(client, staff, member):
    client.force_login(staff["am"])

    response = client.get(REVEAL, {"reason": "x"})

    assert response.status_code == 405
    assert not AuditEntry.objects.exists()


@pytest.mark.parametrize(
    ("who", "has_button"), [("am", True), ("auditor", True), ("operator", False)]
)
def test_the_customer_page_is_masked_and_offers_reveal_only_to_allowed_roles(
    client, staff, member, who, has_button
):
    client.force_login(staff[who])

    body = client.get(PAGE).content.decode()

    assert PHONE not in body and ID_NUMBER not in body
    assert PHONE_MASKED in body and ID_MASKED in body
    assert (f'action="{REVEAL}"' in body) is has_button


def test_a_reason_quoting_the_number_is_audited_masked(client, staff, member):
    client.force_login(staff["am"])

    _reveal(client, reason=f"customer says {PHONE} is wrong")

    entry = AuditEntry.objects.get(action="member.reveal")
    assert entry.reason == f"customer says {PHONE_MASKED} is wrong"


def test_the_log_records_of_a_reveal_name_the_member_not_the_values(client, staff, member, caplog):
    client.force_login(staff["am"])

    with caplog.at_level(logging.DEBUG):
        _reveal(client)
        _reveal(client, reason="")  # a 400: django.request logs it too

    messages = [record.getMessage() for record in caplog.records]
    assert any("M0000123" in message and "am_a" in message for message in messages)
    for record in caplog.records:
        text = record.getMessage() + repr(record.args) + repr(record.__dict__.get("request", ""))
        for raw in RAW:
            assert raw not in text


def test_the_service_refuses_a_customer_outside_the_scope(staff, member):
    with pytest.raises(NotAllowed, match="不在您的管辖范围内"):
        member_personal_data_reveal(member=member, actor=staff["bm_other"], reason="x", ip=None)

    assert not AuditEntry.objects.exists()


# --- marketing opt-out ------------------------------------------------------------------------

OPT_OUT = "/members/M0000123/opt-out/"


@pytest.mark.parametrize("who", ["am", "bm"])
def test_a_manager_records_the_opt_out_and_the_page_shows_it(client, staff, member, who):
    client.force_login(staff[who])

    response = client.post(OPT_OUT, {"opted_out": "1", "reason": "客户来电要求"}, follow=True)

    assert response.status_code == 200
    member.refresh_from_db()
    assert member.marketing_opt_out is True
    entry = AuditEntry.objects.get(action="member.opt_out")
    assert (entry.actor, entry.object_id, entry.reason) == (
        staff[who],
        str(member.pk),
        "客户来电要求",
    )
    page = client.get(PAGE, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "Opted out of personalised marketing" in page
    assert "Opt back in" in page


def test_opting_back_in_is_recorded_as_opt_in(client, staff, member):
    Member.objects.filter(pk=member.pk).update(marketing_opt_out=True)
    client.force_login(staff["am"])

    client.post(OPT_OUT, {"opted_out": "0"})

    member.refresh_from_db()
    assert member.marketing_opt_out is False
    assert list(AuditEntry.objects.values_list("action", flat=True)) == ["member.opt_in"]


def test_recording_the_flag_it_already_has_changes_and_records_nothing(staff, member):
    member_marketing_opt_out_set(member=member, opted_out=True, actor=staff["am"], reason="")
    member_marketing_opt_out_set(member=member, opted_out=True, actor=staff["am"], reason="")

    assert AuditEntry.objects.filter(action="member.opt_out").count() == 1


@pytest.mark.parametrize("who", ["operator", "auditor"])
def test_roles_without_the_right_cannot_record_an_opt_out(client, staff, member, who):
    client.force_login(staff[who])

    page = client.get(PAGE).content.decode()
    response = client.post(OPT_OUT, {"opted_out": "1"})

    assert f'action="{OPT_OUT}"' not in page
    assert response.status_code == 403
    member.refresh_from_db()
    assert member.marketing_opt_out is False


def test_another_managers_customer_cannot_be_opted_out(client, staff, member):
    client.force_login(staff["am_other"])

    response = client.post(OPT_OUT, {"opted_out": "1"})

    assert response.status_code == 404
    member.refresh_from_db()
    assert member.marketing_opt_out is False
    with pytest.raises(NotAllowed, match="不在您的管辖范围内"):
        member_marketing_opt_out_set(
            member=member, opted_out=True, actor=staff["am_other"], reason=""
        )
