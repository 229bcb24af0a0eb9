"""Personal data on every surface (issue 7): one member with a known phone and ID number,
fetched through the customer pages, the admin, the API and the logs. The raw values never
appear; the masked forms do; an exact ID number finds the member without being shown.

There is no CSV export of members and no reveal endpoint yet; when one is added, its test
belongs here.
"""

from __future__ import annotations

import io
import logging
import sys

import pytest
from django.conf import settings
from django.core import mail
from django.test import RequestFactory

from members.choices import LifecycleStage
from portal.choices import Role
from portal.logging import MaskingExceptionReporter, PersonalDataFilter
from tests.factories import MemberFactory

PHONE = "13812345678"
PHONE_MASKED = "138****5678"
ID_NUMBER = "110101199003071234"
ID_MASKED = "110101**********34"
RAW = (PHONE, ID_NUMBER)
MEMBERS_ADMIN = "/admin/members/member/"


@pytest.fixture
def staff(make_user):
    return {
        "am": make_user(Role.ACCOUNT_MANAGER, username="am_a", branch="B01S1"),
        "operator": make_user(Role.PRODUCT_OPERATOR, username="operator", branch="HO"),
        "auditor": make_user(Role.RISK_AUDITOR, username="auditor", branch="HO"),
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
        lifecycle_stage=LifecycleStage.ACTIVE,
    )


def _assert_masked(body: str, *, shown: tuple[str, ...] = (PHONE_MASKED, ID_MASKED)) -> None:
    for raw in RAW:
        assert raw not in body
    for masked in shown:
        assert masked in body


# --- customer pages (account manager, own customer) ------------------------------------------


@pytest.mark.parametrize("url", ["/members/", "/members/M0000123/"])
def test_customer_pages_show_the_account_manager_only_masked_values(client, staff, member, url):
    client.force_login(staff["am"])

    response = client.get(url)

    assert response.status_code == 200
    _assert_masked(response.content.decode())


def test_customer_list_finds_an_exact_id_number_without_showing_it(client, staff, member):
    client.force_login(staff["am"])

    response = client.get("/members/", {"q": ID_NUMBER})

    assert [m.member_no for m in response.context["page"].object_list] == ["M0000123"]
    _assert_masked(response.content.decode())


# --- admin (account managers do not enter it: head-office roles) ------------------------------


@pytest.mark.parametrize("username", ["operator", "auditor"])
def test_admin_changelist_shows_only_masked_values(client, staff, member, username):
    client.force_login(staff[username])

    response = client.get(MEMBERS_ADMIN)

    assert response.status_code == 200
    _assert_masked(response.content.decode())


@pytest.mark.parametrize("username", ["operator", "auditor"])
def test_admin_change_page_has_no_raw_value_even_in_hidden_inputs(client, staff, member, username):
    client.force_login(staff[username])

    response = client.get(f"{MEMBERS_ADMIN}{member.pk}/change/")
    html = response.content.decode()

    assert response.status_code == 200
    _assert_masked(html)
    assert 'name="phone"' not in html
    assert 'name="id_number"' not in html


def test_admin_search_by_exact_id_number_finds_the_member_without_showing_it(client, staff, member):
    client.force_login(staff["auditor"])

    response = client.get(MEMBERS_ADMIN, {"q": ID_NUMBER})

    assert [m.member_no for m in response.context["cl"].result_list] == ["M0000123"]
    # not in the search box, the sort and filter links, nor the links to the change page
    _assert_masked(response.content.decode())


def test_admin_change_page_reached_from_an_id_search_does_not_carry_the_number(
    client, staff, member
):
    client.force_login(staff["auditor"])

    response = client.get(
        f"{MEMBERS_ADMIN}{member.pk}/change/", {"_changelist_filters": f"q={ID_NUMBER}"}
    )

    assert response.status_code == 200
    _assert_masked(response.content.decode())


# --- API ----------------------------------------------------------------------------------


# Through the browser session, which the API accepts as well as tokens (API.md).


def test_api_member_list_shows_only_masked_values(client, staff, member):
    client.force_login(staff["am"])

    response = client.get("/api/v1/members/")

    assert response.status_code == 200
    (row,) = response.json()["results"]
    assert (row["phone"], row["id_number"]) == (PHONE_MASKED, ID_MASKED)
    _assert_masked(response.content.decode())


def test_api_search_by_exact_id_number_finds_the_member_without_showing_it(client, staff, member):
    client.force_login(staff["am"])

    response = client.get("/api/v1/members/", {"q": ID_NUMBER})

    assert [row["member_no"] for row in response.json()["results"]] == ["M0000123"]
    _assert_masked(response.content.decode())


def test_api_member_centre_carries_no_personal_data(client, staff, member):
    client.force_login(staff["am"])

    response = client.get("/api/v1/members/M0000123/")

    assert response.status_code == 200
    _assert_masked(response.content.decode(), shown=())
    assert "王小明" not in response.content.decode()


# --- logs and error reports ---------------------------------------------------------------


def test_every_handler_in_settings_carries_the_personal_data_filter():
    filters = settings.LOGGING["filters"]
    personal = {
        name
        for name, spec in filters.items()
        if spec.get("()") == "portal.logging.PersonalDataFilter"
    }

    for name, handler in settings.LOGGING["handlers"].items():
        assert personal & set(handler.get("filters", [])), name


def test_django_loggers_use_only_the_handlers_of_settings():
    configured = set(settings.LOGGING["handlers"])

    for name in ("django", "django.request", "django.server"):
        logger = logging.getLogger(name)
        while logger is not None:
            for handler in logger.handlers:
                if type(handler).__module__.startswith("_pytest"):
                    continue  # pytest's own capture
                assert handler.name in configured, (name, handler)
                assert any(isinstance(f, PersonalDataFilter) for f in handler.filters)
            logger = logger.parent if logger.propagate else None


@pytest.fixture
def console_output():
    """What the configured console handler writes (with its filter and formatter)."""
    (handler,) = [h for h in logging.getLogger().handlers if h.name == "console"]
    stream = io.StringIO()
    previous = handler.setStream(stream)
    try:
        yield stream
    finally:
        handler.setStream(previous)


def test_log_message_and_its_arguments_are_masked_by_the_configured_handler(console_output):
    logger = logging.getLogger("members.services")

    logger.warning("member phone %s, ID %s", PHONE, ID_NUMBER)
    logger.warning(f"row rejected: M0000123,王小明,{PHONE},{ID_NUMBER}")

    output = console_output.getvalue()
    for raw in RAW:
        assert raw not in output
    assert output.count(PHONE_MASKED) == 2
    assert output.count(ID_MASKED) == 2


def test_exception_text_in_a_log_is_masked(console_output):
    logger = logging.getLogger("members.services")

    try:
        raise ValueError(f"no member with phone {PHONE} or ID {ID_NUMBER}")
    except ValueError:
        logger.exception("import failed")

    output = console_output.getvalue()
    assert "ValueError" in output
    for raw in RAW:
        assert raw not in output
    assert PHONE_MASKED in output and ID_MASKED in output


def test_amounts_and_member_numbers_in_logs_stay_readable(console_output):
    logging.getLogger("benefits").info("budget 1200000.00 consumed by grant 12345678 for M0000123")

    assert "budget 1200000.00 consumed by grant 12345678 for M0000123" in console_output.getvalue()


def test_request_log_of_a_not_found_id_number_is_masked(client, staff, member, console_output):
    client.force_login(staff["am"])

    client.get(f"/members/{ID_NUMBER}/")

    output = console_output.getvalue()
    assert "Not Found" in output
    assert ID_NUMBER not in output
    assert ID_MASKED in output


def _failing_request():
    """An error while serving a search for an ID number, with a phone in a frame variable."""
    request = RequestFactory().get("/members/", {"q": ID_NUMBER})
    member_phone = PHONE  # noqa: F841 (a frame variable the report would print)
    try:
        raise RuntimeError(f"lookup failed for {ID_NUMBER}")
    except RuntimeError:
        return request, sys.exc_info()


def test_error_email_to_admins_is_masked(settings):
    settings.ADMINS = [("Ops", "ops@example.com")]
    settings.DEBUG = False
    (handler,) = [h for h in logging.getLogger("django").handlers if h.name == "mail_admins"]
    request, exc_info = _failing_request()

    logging.getLogger("django.request").error(
        "Internal Server Error: %s", request.path, exc_info=exc_info, extra={"request": request}
    )

    assert handler.reporter_class is MaskingExceptionReporter
    (email,) = mail.outbox
    html = email.alternatives[0][0] if email.alternatives else ""
    for text in (email.subject, email.body, html):
        for raw in RAW:
            assert raw not in text
    assert ID_MASKED in email.body
