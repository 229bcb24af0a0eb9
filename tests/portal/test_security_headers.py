"""Browser security headers and the client address behind the reverse proxy (finding 6):
the Content-Security-Policy (django-csp, with a nonce where a page has an inline block and
the admin's allowances on the admin only), Permissions-Policy, `Cache-Control: no-store` on
everything that carries customer data, and one client address — `TRUSTED_PROXIES` —
for the audit trail and django-axes' lockouts (portal/security_headers.py,
portal/middleware.py `client_ip`). The browser side is tests/browser/test_csp.py."""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys

import pytest
from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.http import HttpResponse
from django.test import Client, RequestFactory

from portal.choices import Role
from portal.middleware import client_ip
from portal.models import AuditEntry
from portal.security_headers import SecurityHeadersMiddleware
from tests.factories import MemberFactory

PASSWORD = "Pass-word-123"  # tests/factories.py UserFactory
PROXY = "10.20.0.5"
CLIENT_A = "203.0.113.7"
CLIENT_B = "198.51.100.23"


@pytest.fixture
def manager(make_user):
    return make_user(Role.ACCOUNT_MANAGER, username="am_headers", branch="B01S1")


@pytest.fixture
def member(org, manager):
    return MemberFactory(member_no="M0000123", branch=org["B01S1"], account_manager=manager)


@pytest.fixture
def logged_in(client, manager) -> Client:
    client.force_login(manager)
    return client


def directives(response) -> dict[str, list[str]]:
    policy = response["Content-Security-Policy"]
    return {
        name: values
        for name, *values in (part.split() for part in policy.split(";") if part.strip())
    }


# --- Content-Security-Policy ----------------------------------------------------------------


def test_portal_pages_carry_a_csp_without_inline_scripts_eval_plugins_or_framing(logged_in, member):
    for url in ("/", "/members/", "/members/M0000123/", "/approvals/"):
        response = logged_in.get(url)
        assert response.status_code == 200, url
        policy = directives(response)
        assert policy["default-src"] == ["'self'"]
        assert policy["script-src"][0] == "'self'"
        assert "'unsafe-inline'" not in policy["script-src"]
        assert "'unsafe-eval'" not in policy["script-src"]
        assert policy["object-src"] == ["'none'"]
        assert policy["base-uri"] == ["'self'"]
        assert policy["frame-ancestors"] == ["'none'"]
        assert policy["form-action"] == ["'self'"]
        assert policy["img-src"] == ["'self'", "data:"]
        assert "'unsafe-inline'" not in policy["style-src-elem"]


def test_portal_pages_have_no_inline_event_handlers(logged_in, member):
    """The policy would block them: the language and status selectors use portal.js."""
    for url in ("/", "/approvals/"):
        html = logged_in.get(url).content.decode()
        assert not re.search(r"\son[a-z]+=", html), url
        assert "data-submit-on-change" in html


def test_swagger_ui_runs_its_inline_script_with_the_nonce_of_its_policy(logged_in):
    response = logged_in.get("/api/docs/")

    assert response.status_code == 200
    nonces = [v for v in directives(response)["script-src"] if v.startswith("'nonce-")]
    assert len(nonces) == 1
    nonce = nonces[0][len("'nonce-") : -1]
    html = response.content.decode()
    assert f'<script nonce="{nonce}">' in html
    assert f'<style nonce="{nonce}">' in html
    assert "'unsafe-eval'" not in directives(response)["script-src"]


def test_each_response_gets_a_fresh_nonce(logged_in):
    first = directives(logged_in.get("/api/docs/"))["script-src"]
    second = directives(logged_in.get("/api/docs/"))["script-src"]

    assert first != second


def test_the_admin_alone_gets_the_allowances_of_its_theme(client, make_user):
    client.force_login(make_user(Role.ADMINISTRATOR, username="admin_h", branch="HO"))

    admin = directives(client.get("/admin/"))
    portal = directives(client.get("/"))

    assert "'unsafe-eval'" in admin["script-src"]  # Alpine.js (django-unfold)
    assert "'unsafe-inline'" not in admin["script-src"]
    assert "'unsafe-inline'" in admin["style-src-elem"]
    assert admin["object-src"] == ["'none'"] and admin["frame-ancestors"] == ["'none'"]
    assert "'unsafe-eval'" not in portal["script-src"]


def test_the_login_page_carries_the_policy_too(client):
    assert directives(client.get("/login/"))["script-src"][0] == "'self'"


# --- Permissions-Policy ---------------------------------------------------------------------


@pytest.mark.parametrize("url", ["/login/", "/api/v1/events/"])
def test_every_response_denies_the_browser_features_the_portal_never_uses(client, url):
    policy = client.get(url)["Permissions-Policy"]

    for feature in ("camera", "microphone", "geolocation", "payment", "usb"):
        assert f"{feature}=()" in policy


# --- no-store -------------------------------------------------------------------------------


def _never_stored(response) -> bool:
    return "no-store" in response.get("Cache-Control", "") and response.get("Pragma") == "no-cache"


def test_pages_of_a_logged_in_user_are_never_stored(logged_in, member):
    for url in ("/", "/members/", "/members/M0000123/", "/approvals/", "/admin/login/"):
        response = logged_in.get(url)
        assert _never_stored(response), (url, response.get("Cache-Control"))


def test_every_api_answer_is_never_stored(client, api_client_for, make_user, member):
    system = make_user(Role.SYSTEM, username="mobile_banking", branch="HO")
    token_client = api_client_for(system)

    centre = token_client.get("/api/v1/members/M0000123/")
    refused = client.get("/api/v1/members/M0000123/")  # no token: 401/403
    schema = token_client.get("/api/schema/")

    assert centre.status_code == 200
    assert "M0000123" in centre.content.decode()
    for response in (centre, refused, schema):
        assert _never_stored(response), response.status_code


def test_the_login_page_is_not_cached_either(client):
    """Decided: the log-in page holds the CSRF token; Django's never_cache says no-store."""
    assert "no-store" in client.get("/login/")["Cache-Control"]


def test_static_files_stay_cacheable_even_for_a_logged_in_user(manager):
    request = RequestFactory().get("/static/portal/portal.css")
    request.user = manager
    response = SecurityHeadersMiddleware(lambda _request: HttpResponse("body{}"))(request)

    assert "Cache-Control" not in response
    assert "Pragma" not in response


def test_anonymous_pages_without_customer_data_are_left_to_their_views(db):
    request = RequestFactory().get("/no-such-page/")
    request.user = AnonymousUser()
    response = SecurityHeadersMiddleware(lambda _request: HttpResponse(status=404))(request)

    assert "Cache-Control" not in response
    assert response["Permissions-Policy"]


# --- the client address ---------------------------------------------------------------------


def _request(remote_addr: str, forwarded: str | None = None):
    extra = {"HTTP_X_FORWARDED_FOR": forwarded} if forwarded is not None else {}
    return RequestFactory().get("/", REMOTE_ADDR=remote_addr, **extra)


def test_without_trusted_proxies_a_forwarded_for_header_is_ignored(settings):
    settings.TRUSTED_PROXIES = []

    assert client_ip(_request(CLIENT_A, forwarded="1.2.3.4")) == CLIENT_A
    assert client_ip(_request(PROXY, forwarded=CLIENT_A)) == PROXY


def test_from_a_trusted_proxy_the_rightmost_untrusted_address_is_the_client(settings):
    settings.TRUSTED_PROXIES = ["10.20.0.0/24", "10.30.0.1"]

    assert client_ip(_request(PROXY, forwarded=CLIENT_A)) == CLIENT_A
    # the client wrote an address of its own in front: the proxy appended the real one
    assert client_ip(_request(PROXY, forwarded=f"1.2.3.4, {CLIENT_A}")) == CLIENT_A
    # two of our proxies in a row
    assert client_ip(_request(PROXY, forwarded=f"1.2.3.4, {CLIENT_B}, 10.30.0.1")) == CLIENT_B
    # no header: the proxy itself; a malformed entry ends the reading
    assert client_ip(_request(PROXY)) == PROXY
    assert client_ip(_request(PROXY, forwarded=f"{CLIENT_A}, not-an-ip")) == PROXY


def test_a_forwarded_for_header_from_a_peer_that_is_not_our_proxy_is_ignored(settings):
    settings.TRUSTED_PROXIES = ["10.20.0.0/24"]

    assert client_ip(_request(CLIENT_B, forwarded=f"{CLIENT_A}, 10.20.0.5")) == CLIENT_B


def test_axes_counts_by_the_same_client_address():
    assert settings.AXES_CLIENT_IP_CALLABLE == "portal.middleware.client_ip"


def test_five_bad_passwords_through_the_proxy_lock_that_client_only(settings, manager):
    settings.TRUSTED_PROXIES = ["10.20.0.0/24"]
    attacker = Client(REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR=CLIENT_A)
    colleague = Client(REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR=CLIENT_B)
    credentials = {"username": manager.username}

    failures = [
        attacker.post("/login/", {**credentials, "password": "wrong"}).status_code for _ in range(5)
    ]
    attacker_again = attacker.post("/login/", {**credentials, "password": PASSWORD})
    colleague_logs_in = colleague.post("/login/", {**credentials, "password": PASSWORD})

    assert failures[-1] == 429  # the fifth locks
    assert attacker_again.status_code == 429
    assert colleague_logs_in.status_code == 302
    assert "_auth_user_id" in colleague.session


def test_the_audit_trail_records_the_client_behind_the_proxy(settings, manager, member):
    settings.TRUSTED_PROXIES = ["10.20.0.0/24"]
    client = Client(REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR=f"6.6.6.6, {CLIENT_A}")
    client.force_login(manager)

    response = client.post("/members/M0000123/reveal/", {"reason": "客户来电核实身份"})

    assert response.status_code == 200
    assert AuditEntry.objects.get(action="member.reveal").ip == CLIENT_A


# --- check --deploy -------------------------------------------------------------------------


@pytest.mark.integration
def test_deploy_checks_pass_with_production_settings_and_a_trusted_proxy():
    env = {key: value for key, value in os.environ.items() if key != "DEBUG"}
    env.update(
        DJANGO_ENV="production",
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="portal.example.bank",
        DATABASE_URL=os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/portal"),
        PERSONAL_DATA_KEYS="k1:" + "A" * 43 + "=",
        TRUSTED_PROXIES="10.20.0.0/24",
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
    assert "no issues" in result.stdout


def test_a_misspelt_trusted_proxy_stops_the_start():
    env = {**os.environ, "TRUSTED_PROXIES": "10.20.0.0/24,10.20.0.300"}

    result = subprocess.run(  # noqa: S603 - fixed argument list, no shell
        [sys.executable, "manage.py", "check"],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )

    assert result.returncode != 0
    assert "TRUSTED_PROXIES" in result.stderr
