"""System integration accounts (finding 2): the SYSTEM role signs in to the API with its
token only, within the token's scopes. No password opens the portal or the admin, a
session it holds anyway is ended and refused (so it can post no events and redeem no grants
outside the token's scopes), and revoking the token leaves it nothing (portal/accounts.py,
the demo's `mobile_banking`, migration portal.0009)."""

from __future__ import annotations

import importlib
from datetime import timedelta

import pytest
from django.apps import apps
from django.conf import settings
from django.contrib.auth import authenticate
from django.http import HttpRequest
from django.test import Client
from rest_framework.test import APIClient

from benefits.choices import GrantSource, GrantStatus
from benefits.services import grant_create
from campaigns.models import EventBatch
from operations.demo import DEMO_PASSWORD, demo_organisation
from portal.choices import ApiScope, Role
from portal.clock import today_in_shanghai
from portal.models import User
from portal.services import api_token_issue, api_token_revoke
from tests.factories import BenefitFactory, MemberFactory

PASSWORD = "Pass-word-123"  # tests/factories.py UserFactory: a usable password, as before
REFUSAL = "This is a system integration account: it signs in to the API with its token only."
EVENTS = "/api/v1/events/"


@pytest.fixture
def system_user(make_user):
    """mobile_banking as the probe found it: a SYSTEM account that still has a password."""
    return make_user(Role.SYSTEM, username="mobile_banking", branch="HO")


@pytest.fixture
def administrator(make_user):
    return make_user(Role.ADMINISTRATOR, username="admin", branch="HO")


@pytest.fixture
def browser() -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    return client


@pytest.fixture
def grant(org):
    member = MemberFactory(member_no="M0000123", branch=org["B01S1"])
    benefit = BenefitFactory(code="LOUNGE", unit_cost_fen=12_000)
    return grant_create(
        member=member,
        benefit=benefit,
        budget=benefit.budget,
        source=GrantSource.ENTITLEMENT,
        idempotency_key="system-accounts-1",
        expires_on=today_in_shanghai() + timedelta(days=30),
    )


def redeem_url(grant) -> str:
    return f"/api/v1/members/{grant.member.member_no}/grants/{grant.pk}/redeem/"


def session_of(user) -> APIClient:
    """A browser session of `user`, as a password log-in made before the fix left it."""
    client = APIClient(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(user)
    return client


def token_client(key: str) -> APIClient:
    client = APIClient(HTTP_ACCEPT_LANGUAGE="en")
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


# --- no password log-in -------------------------------------------------------------------


@pytest.mark.parametrize("url", ["/login/", "/admin/login/?next=/admin/"])
def test_the_log_in_pages_refuse_a_system_account_with_its_password_and_say_why(
    browser, system_user, url
):
    response = browser.post(url, {"username": "mobile_banking", "password": PASSWORD})

    assert response.status_code == 200  # the form again, not a redirect into the portal
    assert REFUSAL in response.content.decode()
    assert "_auth_user_id" not in browser.session


def test_a_staff_user_still_logs_in(browser, make_user):
    make_user(Role.ACCOUNT_MANAGER, username="am_ok")

    response = browser.post("/login/", {"username": "am_ok", "password": PASSWORD})

    assert response.status_code == 302
    assert "_auth_user_id" in browser.session


def test_authenticate_never_returns_a_system_account(system_user):
    assert authenticate(HttpRequest(), username="mobile_banking", password=PASSWORD) is None
    assert not Client().login(request=HttpRequest(), username="mobile_banking", password=PASSWORD)


def test_a_password_set_on_a_system_account_in_the_admin_opens_nothing(browser, system_user):
    """The admin's user form can still set a password: harmless, the refusal ignores it."""
    system_user.set_password("A-new-password-2026")
    system_user.save()

    response = browser.post(
        "/login/", {"username": "mobile_banking", "password": "A-new-password-2026"}
    )

    assert REFUSAL in response.content.decode()
    assert "_auth_user_id" not in browser.session


# --- a session it holds anyway ------------------------------------------------------------


def test_a_system_session_cannot_post_events(system_user):
    client = session_of(system_user)

    response = client.post(EVENTS, {"events": []}, format="json")

    assert response.status_code == 403
    assert response.json() == {"detail": REFUSAL, "code": "system_account_session"}
    assert EventBatch.objects.count() == 0


def test_a_system_session_cannot_redeem_a_grant(system_user, grant):
    client = session_of(system_user)

    response = client.post(redeem_url(grant))

    assert response.status_code == 403
    grant.refresh_from_db()
    assert grant.status == GrantStatus.GRANTED


def test_a_system_session_is_ended_at_its_first_request(system_user):
    client = session_of(system_user)

    page = client.get("/")
    after = client.post(EVENTS, {"events": []}, format="json")

    assert page.status_code == 403
    assert REFUSAL in page.content.decode()
    assert "_auth_user_id" not in client.session
    assert after.status_code in (401, 403)  # anonymous now
    assert after.json()["code"] != "system_account_session"


def test_a_system_session_is_sent_out_of_the_admin(system_user):
    client = session_of(system_user)

    response = client.get("/admin/")

    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")
    assert "_auth_user_id" not in client.session


# --- the token, within its scopes ---------------------------------------------------------


def test_the_token_posts_events_and_redeems_within_its_scopes(system_user, administrator, grant):
    _token, key = api_token_issue(
        user=system_user,
        name="Mobile banking",
        scopes=[ApiScope.EVENTS_WRITE, ApiScope.GRANTS_REDEEM],
        actor=administrator,
    )
    client = token_client(key)

    posted = client.post(EVENTS, {"events": []}, format="json")
    redeemed = client.post(redeem_url(grant))

    assert posted.status_code == 200, posted.content
    assert redeemed.status_code == 200, redeemed.content


def test_the_token_cannot_redeem_without_the_grants_scope_session_or_not(
    system_user, administrator, grant
):
    _token, key = api_token_issue(
        user=system_user, name="Mobile banking", scopes=[ApiScope.EVENTS_WRITE], actor=administrator
    )
    client = token_client(key)
    client.force_login(system_user)  # a session cookie alongside the token changes nothing

    response = client.post(redeem_url(grant))

    assert response.status_code == 403
    grant.refresh_from_db()
    assert grant.status == GrantStatus.GRANTED


def test_revoking_the_token_leaves_the_system_account_nothing(system_user, administrator, grant):
    token, key = api_token_issue(
        user=system_user,
        name="Mobile banking",
        scopes=[ApiScope.EVENTS_WRITE, ApiScope.GRANTS_REDEEM],
        actor=administrator,
    )
    api_token_revoke(token=token, actor=administrator, reason="retired")
    browser = APIClient(HTTP_ACCEPT_LANGUAGE="en")
    logged_in = browser.login(request=HttpRequest(), username="mobile_banking", password=PASSWORD)

    by_token = token_client(key).post(EVENTS, {"events": []}, format="json")
    by_session = session_of(system_user).post(redeem_url(grant))

    assert by_token.status_code == 401
    assert by_token.json()["code"] == "token_revoked"
    assert not logged_in
    assert by_session.status_code == 403
    grant.refresh_from_db()
    assert grant.status == GrantStatus.GRANTED


# --- no password to begin with ------------------------------------------------------------


def test_the_migration_makes_existing_system_passwords_unusable(system_user, make_user):
    colleague = make_user(Role.ACCOUNT_MANAGER, username="am_keeps")
    migration = importlib.import_module("portal.migrations.0009_system_accounts_unusable_password")

    migration.make_system_passwords_unusable(apps, None)

    assert not User.objects.get(pk=system_user.pk).has_usable_password()
    assert User.objects.get(pk=colleague.pk).check_password(PASSWORD)


def test_the_demo_gives_its_system_account_no_password(db):
    staff = demo_organisation()

    assert not staff["mobile_banking"].has_usable_password()
    assert staff["operator"].check_password(DEMO_PASSWORD)
