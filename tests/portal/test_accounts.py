"""Accounts and sessions: login throttling (django-axes) on the portal and admin log-in pages,
the inactivity timeout of sessions, the bank's password policy, CSRF on the log-in form, and
`manage.py check --deploy` clean with production settings (config/settings.py)."""

from __future__ import annotations

import base64
import os
import secrets
import subprocess
import sys
from datetime import timedelta

import pytest
from axes.exceptions import AxesBackendRequestParameterRequired
from axes.models import AccessAttempt
from django.conf import settings
from django.contrib.auth import authenticate
from django.contrib.auth.password_validation import (
    MinimumLengthValidator,
    get_default_password_validators,
    validate_password,
)
from django.contrib.sessions.models import Session
from django.core.exceptions import ValidationError
from django.http import HttpRequest
from django.test import Client
from django.utils import timezone

from operations.demo import DEMO_PASSWORD, STAFF
from portal.choices import Role
from portal.models import User

PASSWORD = "Pass-word-123"  # tests/factories.py UserFactory
WRONG = "not-the-password"
OFFICE_IP = "10.1.2.3"
PORTAL_LOGIN = "/login/"
ADMIN_LOGIN = "/admin/login/?next=/admin/"


@pytest.fixture
def browser() -> Client:
    """A browser at one office address that reads the pages in English."""
    return Client(REMOTE_ADDR=OFFICE_IP, HTTP_ACCEPT_LANGUAGE="en")


@pytest.fixture
def staff_user(make_user):
    return make_user(Role.ACCOUNT_MANAGER, username="am_throttle")


def _log_in(client: Client, username: str, password: str, url: str = PORTAL_LOGIN):
    return client.post(url, {"username": username, "password": password})


def _fail(client: Client, username: str, times: int, url: str = PORTAL_LOGIN) -> list[int]:
    return [_log_in(client, username, WRONG, url).status_code for _ in range(times)]


def _logged_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


# --- login throttling -------------------------------------------------------------------


def test_throttling_settings_are_the_bank_policy():
    assert settings.AUTHENTICATION_BACKENDS[0] == "axes.backends.AxesStandaloneBackend"
    assert settings.MIDDLEWARE[-1] == "axes.middleware.AxesMiddleware"
    assert settings.AXES_ENABLED is True
    assert settings.AXES_FAILURE_LIMIT == 5
    assert settings.AXES_LOCKOUT_PARAMETERS == [["username", "ip_address"]]
    assert settings.AXES_COOLOFF_TIME.total_seconds() == 15 * 60
    assert settings.AXES_RESET_ON_SUCCESS is True


def test_five_wrong_passwords_lock_the_account_even_against_the_right_password(browser, staff_user):
    statuses = _fail(browser, staff_user.username, times=5)

    response = _log_in(browser, staff_user.username, PASSWORD)

    assert statuses == [200, 200, 200, 200, 429]  # the fifth failure already locks
    assert response.status_code == 429
    assert not _logged_in(browser)
    page = response.content.decode()
    assert "this account is locked for 15 minutes" in page
    assert "contact the administrator" in page
    assert browser.get("/").status_code == 302  # still a stranger to the portal


def test_lockout_page_follows_the_page_language(browser, staff_user):
    _fail(browser, staff_user.username, times=5)

    response = browser.post(
        PORTAL_LOGIN,
        {"username": staff_user.username, "password": PASSWORD},
        HTTP_ACCEPT_LANGUAGE="zh-hans",
    )

    assert response.status_code == 429
    assert '<html lang="zh-hans">' in response.content.decode()


def test_four_wrong_passwords_do_not_lock(browser, staff_user):
    _fail(browser, staff_user.username, times=4)

    response = _log_in(browser, staff_user.username, PASSWORD)

    assert response.status_code == 302
    assert _logged_in(browser)


def test_lockout_of_one_user_leaves_a_colleague_at_the_same_address_alone(
    browser, staff_user, make_user
):
    colleague = make_user(Role.ACCOUNT_MANAGER, username="am_colleague")
    _fail(browser, staff_user.username, times=5)

    response = _log_in(browser, colleague.username, PASSWORD)

    assert response.status_code == 302
    assert _logged_in(browser)


def test_lockout_counts_username_and_address_together(browser, staff_user):
    _fail(browser, staff_user.username, times=5)
    elsewhere = Client(REMOTE_ADDR="10.9.9.9", HTTP_ACCEPT_LANGUAGE="en")

    response = _log_in(elsewhere, staff_user.username, PASSWORD)

    assert response.status_code == 302
    assert _logged_in(elsewhere)


def test_successful_login_resets_the_failure_count(browser, staff_user):
    _fail(browser, staff_user.username, times=4)
    assert _log_in(browser, staff_user.username, PASSWORD).status_code == 302
    assert not AccessAttempt.objects.filter(username=staff_user.username).exists()
    browser.post("/logout/")

    statuses = _fail(browser, staff_user.username, times=4)
    response = _log_in(browser, staff_user.username, PASSWORD)

    assert statuses == [200] * 4
    assert response.status_code == 302
    assert _logged_in(browser)


def test_lock_lifts_after_the_cool_off(browser, staff_user):
    _fail(browser, staff_user.username, times=5)
    AccessAttempt.objects.filter(username=staff_user.username).update(
        attempt_time=timezone.now() - timedelta(minutes=16)
    )

    response = _log_in(browser, staff_user.username, PASSWORD)

    assert response.status_code == 302
    assert _logged_in(browser)


def test_admin_login_is_throttled_too(browser, make_user):
    administrator = make_user(Role.ADMINISTRATOR, username="ad_throttle")

    statuses = _fail(browser, administrator.username, times=5, url=ADMIN_LOGIN)
    response = _log_in(browser, administrator.username, PASSWORD, url=ADMIN_LOGIN)

    assert statuses == [200, 200, 200, 200, 429]
    assert response.status_code == 429
    assert "this account is locked for 15 minutes" in response.content.decode()
    assert not _logged_in(browser)


def test_lockout_on_the_portal_login_also_closes_the_admin_login(browser, make_user):
    administrator = make_user(Role.ADMINISTRATOR, username="ad_both_doors")
    _fail(browser, administrator.username, times=5)

    response = _log_in(browser, administrator.username, PASSWORD, url=ADMIN_LOGIN)

    assert response.status_code == 429
    assert not _logged_in(browser)


def test_without_cool_off_the_lockout_page_sends_the_user_to_the_administrator(
    browser, staff_user, settings
):
    settings.AXES_COOLOFF_TIME = None
    _fail(browser, staff_user.username, times=5)

    response = _log_in(browser, staff_user.username, PASSWORD)

    assert response.status_code == 429
    page = response.content.decode()
    assert "locked until an administrator unlocks it" in page
    assert "Contact the administrator" in page


def test_authenticate_without_a_request_is_refused_so_nothing_escapes_throttling(staff_user):
    with pytest.raises(AxesBackendRequestParameterRequired):
        authenticate(username=staff_user.username, password=PASSWORD)

    # What tests that need a password check do instead (or client.force_login):
    assert authenticate(HttpRequest(), username=staff_user.username, password=PASSWORD)
    assert Client().login(request=HttpRequest(), username=staff_user.username, password=PASSWORD)


# --- sessions -----------------------------------------------------------------------------


@pytest.fixture
def signed_in(browser, staff_user) -> Client:
    assert _log_in(browser, staff_user.username, PASSWORD).status_code == 302
    return browser


def _session(client: Client) -> Session:
    return Session.objects.get(session_key=client.session.session_key)


def test_session_times_out_after_thirty_minutes_of_inactivity_by_default():
    assert settings.SESSION_COOKIE_AGE == 30 * 60
    assert settings.SESSION_SAVE_EVERY_REQUEST is True
    assert settings.SESSION_EXPIRE_AT_BROWSER_CLOSE is True


def test_every_request_pushes_the_session_expiry_forward(signed_in, settings):
    settings.SESSION_COOKIE_AGE = 120
    Session.objects.filter(pk=signed_in.session.session_key).update(
        expire_date=timezone.now() + timedelta(seconds=5)
    )

    before = timezone.now()
    assert signed_in.get("/").status_code == 200

    expires_in = _session(signed_in).expire_date - before
    assert timedelta(seconds=110) < expires_in <= timedelta(seconds=125)


def test_an_idle_session_expires_and_the_next_page_asks_to_log_in(signed_in):
    assert signed_in.get("/").status_code == 200
    Session.objects.filter(pk=signed_in.session.session_key).update(
        expire_date=timezone.now() - timedelta(seconds=1)
    )

    response = signed_in.get("/")

    assert response.status_code == 302
    assert response.url.startswith("/login/")


def test_session_cookie_lives_only_as_long_as_the_browser(browser, staff_user):
    response = _log_in(browser, staff_user.username, PASSWORD)

    cookie = response.cookies[settings.SESSION_COOKIE_NAME]
    assert cookie["max-age"] == ""
    assert cookie["expires"] == ""
    assert cookie["httponly"] is True


# --- CSRF ---------------------------------------------------------------------------------


def test_login_form_refuses_a_post_without_the_csrf_token(staff_user):
    client = Client(enforce_csrf_checks=True, REMOTE_ADDR=OFFICE_IP)

    response = _log_in(client, staff_user.username, PASSWORD)

    assert response.status_code == 403
    assert not _logged_in(client)


# --- passwords ----------------------------------------------------------------------------


def test_password_policy_uses_the_four_django_validators_with_ten_characters_minimum():
    validators = get_default_password_validators()

    assert [type(v).__name__ for v in validators] == [
        "UserAttributeSimilarityValidator",
        "MinimumLengthValidator",
        "CommonPasswordValidator",
        "NumericPasswordValidator",
    ]
    minimum = next(v for v in validators if isinstance(v, MinimumLengthValidator))
    assert minimum.min_length >= 10


@pytest.mark.parametrize(
    "password",
    [
        pytest.param("short1", id="short"),
        pytest.param("Xk7#qL2m!", id="nine-characters"),
        pytest.param("4829175036142", id="numeric-only"),
        pytest.param("password1234", id="common"),
        pytest.param("am_throttle01", id="like-the-username"),
    ],
)
def test_password_policy_refuses(password):
    user = User(username="am_throttle", first_name="Li", last_name="Zhang")

    with pytest.raises(ValidationError):
        validate_password(password, user=user)


def test_factory_and_demo_passwords_meet_the_policy():
    for username, *_ in STAFF:
        validate_password(DEMO_PASSWORD, user=User(username=username))
    validate_password(PASSWORD, user=User(username="am_throttle"))


# --- check --deploy with production settings ------------------------------------------------


@pytest.mark.integration
def test_deploy_checks_pass_with_production_settings():
    """The same command as .ci/run's "deploy checks" step; it needs no database access."""
    env = {key: value for key, value in os.environ.items() if key != "DEBUG"}
    env.update(
        DJANGO_ENV="production",
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="portal.example.bank",
        DATABASE_URL=os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/portal"),
        PERSONAL_DATA_KEYS="deploy:" + base64.b64encode(secrets.token_bytes(32)).decode(),
    )

    result = subprocess.run(  # noqa: S603 - fixed argument list, no shell
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout
