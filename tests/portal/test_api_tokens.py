"""API tokens per client system (issue 7): scoped, revocable, audited, stored as digests
(portal.models.ApiToken, portal.api.authentication, portal.permissions.TOKEN_SCOPE_FOR_ACTION,
the API token admin and `manage.py api_token_issue`). From the client's and the
administrator's side."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone
from rest_framework.test import APIClient

from members.models import Tier
from portal.choices import ApiScope, Role
from portal.models import ApiToken, AuditEntry, api_key_digest
from portal.permissions import PERMISSION_MATRIX, TOKEN_SCOPE_FOR_ACTION
from portal.services import ApiTokenError, api_token_issue, api_token_revoke
from tests.factories import MemberFactory

EVENTS = "/api/v1/events/"
CENTRE = "/api/v1/members/M0000123/"
ADD_URL = "/admin/portal/apitoken/add/"


@pytest.fixture
def system_user(make_user):
    return make_user(Role.SYSTEM, username="mobile_banking", branch="HO")


@pytest.fixture
def administrator(make_user):
    return make_user(Role.ADMINISTRATOR, username="admin", branch="HO")


@pytest.fixture
def member(org):
    return MemberFactory(
        member_no="M0000123",
        branch=org["B01S1"],
        tier=Tier.objects.get(scheme__code="DEFAULT_MADA", code="STANDARD"),
    )


@pytest.fixture
def issue(system_user, administrator):
    """Issue a token of mobile banking with these scopes; returns (token, key)."""

    def run(*scopes: str, **kwargs) -> tuple[ApiToken, str]:
        return api_token_issue(
            user=kwargs.pop("user", system_user),
            name=kwargs.pop("name", "Mobile banking"),
            scopes=list(scopes),
            actor=administrator,
            **kwargs,
        )

    return run


def client_with(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


def post_no_events(client: APIClient):
    return client.post(EVENTS, {"events": []}, format="json")


# --- what a client system sees ------------------------------------------------------------


def test_a_token_with_its_scopes_posts_events_and_reads_the_member_centre(issue, member):
    _token, key = issue(ApiScope.EVENTS_WRITE, ApiScope.MEMBERS_READ)
    client = client_with(key)

    posted = post_no_events(client)
    centre = client.get(CENTRE)

    assert posted.status_code == 200, posted.content
    assert posted.json() == {"accepted": 0, "duplicates": 0, "rejected": []}
    assert centre.status_code == 200, centre.content
    assert centre.json()["member_no"] == "M0000123"


def test_a_token_without_events_write_is_refused_events_with_the_missing_scope_named(issue, member):
    _token, key = issue(ApiScope.MEMBERS_READ)
    client = client_with(key)

    response = post_no_events(client)

    assert response.status_code == 403
    assert response.json()["code"] == "missing_scope"
    assert "events-write" in response.json()["detail"]
    assert client.get(CENTRE).status_code == 200  # what it holds still works


def test_a_token_without_members_read_is_refused_the_member_centre(issue, member):
    _token, key = issue(ApiScope.EVENTS_WRITE)

    response = client_with(key).get(CENTRE)

    assert response.status_code == 403
    assert "members-read" in response.json()["detail"]


def test_the_matrix_still_applies_to_a_token_whatever_its_scopes(issue, make_user):
    manager = make_user(Role.ACCOUNT_MANAGER, username="am")
    _token, key = issue(*ApiScope.values, user=manager, name="CRM")

    response = post_no_events(client_with(key))  # only system integrations post events

    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"


def test_a_revoked_token_is_401_saying_it_was_revoked(issue, administrator, member):
    token, key = issue(ApiScope.EVENTS_WRITE, ApiScope.MEMBERS_READ)
    client = client_with(key)
    assert client.get(CENTRE).status_code == 200

    api_token_revoke(token=token, actor=administrator, reason="key leaked")
    response = client.get(CENTRE, HTTP_ACCEPT_LANGUAGE="en")

    assert response.status_code == 401
    assert response.json()["code"] == "token_revoked"
    assert "revoked" in response.json()["detail"]
    assert post_no_events(client).status_code == 401


def test_an_expired_token_is_401_saying_it_expired(issue, member):
    token, key = issue(ApiScope.MEMBERS_READ, expires_at=timezone.now() + timedelta(seconds=30))
    ApiToken.objects.filter(pk=token.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )  # time passes

    response = client_with(key).get(CENTRE, HTTP_ACCEPT_LANGUAGE="en")

    assert response.status_code == 401
    assert response.json()["code"] == "token_expired"
    assert "expired" in response.json()["detail"]


def test_a_token_that_has_not_expired_yet_works(issue, member):
    _token, key = issue(ApiScope.MEMBERS_READ, expires_at=timezone.now() + timedelta(days=1))

    assert client_with(key).get(CENTRE).status_code == 200


def test_an_unknown_key_is_401_and_a_session_is_not_scoped(client, member, make_user):
    unknown = client_with("mop_" + "x" * 40).get(CENTRE)
    client.force_login(make_user(Role.PRODUCT_OPERATOR, username="operator"))

    assert unknown.status_code == 401
    assert unknown.json()["code"] == "authentication_failed"
    assert client.get(CENTRE).status_code == 200


def test_last_used_is_written_at_most_once_a_minute(issue, member):
    token, key = issue(ApiScope.MEMBERS_READ)
    client = client_with(key)

    client.get(CENTRE)
    first = ApiToken.objects.get(pk=token.pk).last_used_at
    client.get(CENTRE)
    again = ApiToken.objects.get(pk=token.pk).last_used_at
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=first - timedelta(minutes=2))
    client.get(CENTRE)
    later = ApiToken.objects.get(pk=token.pk).last_used_at

    assert first is not None
    assert again == first
    assert later > first - timedelta(minutes=2)


# --- storage and audit ------------------------------------------------------------------------


def test_the_key_is_not_stored_in_clear(issue):
    token, key = issue(ApiScope.EVENTS_WRITE)

    stored = ApiToken.objects.filter(pk=token.pk).values().get()
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {ApiToken._meta.db_table}")  # noqa: S608
        rows = cursor.fetchall()

    assert stored["key_digest"] == api_key_digest(key)
    assert key.startswith(stored["prefix"]) and len(stored["prefix"]) < len(key) // 2
    assert not any(key in str(value) for row in rows for value in row)
    assert not any(key in str(entry.changes) for entry in AuditEntry.objects.all())


def test_issue_and_revoke_are_audited_with_the_actor(issue, administrator):
    token, _key = issue(ApiScope.EVENTS_WRITE, ApiScope.MEMBERS_READ)
    api_token_revoke(token=token, actor=administrator, reason="system retired")
    again = api_token_revoke(token=token, actor=administrator)

    entries = list(
        AuditEntry.objects.filter(object_type="portal.apitoken", object_id=str(token.pk))
        .order_by("id")
        .values_list("action", "actor__username", "reason")
    )
    issued = AuditEntry.objects.get(action="api_token.issue", object_id=str(token.pk))

    assert again is False  # revoking twice records nothing more
    assert entries == [
        ("api_token.issue", "admin", ""),
        ("api_token.revoke", "admin", "system retired"),
    ]
    assert issued.changes["scopes"] == ["events-write", "members-read"]
    assert issued.changes["user"] == "mobile_banking"
    token.refresh_from_db()
    assert token.revoked_by == administrator and token.revoked_at is not None


@pytest.mark.parametrize(
    ("scopes", "message"),
    [([], "至少选择一个权限范围"), (["events-write", "everything"], "未知的权限范围")],
)
def test_a_token_needs_known_scopes(issue, scopes, message):
    with pytest.raises(ApiTokenError, match=message):
        issue(*scopes)

    assert not ApiToken.objects.exists()


def test_a_token_cannot_be_issued_already_expired(issue):
    with pytest.raises(ApiTokenError, match="晚于现在"):
        issue(ApiScope.EVENTS_WRITE, expires_at=timezone.now() - timedelta(minutes=1))


# --- the scope table covers the API ---------------------------------------------------------


def _api_actions():
    """Every matrix action an API view names (its read, write and per-route write actions)."""

    def walk(patterns):
        for entry in patterns:
            if isinstance(entry, URLResolver):
                yield from walk(entry.url_patterns)
            elif isinstance(entry, URLPattern):
                yield entry

    found = set()
    for pattern in walk(get_resolver().url_patterns):
        cls = getattr(pattern.callback, "cls", None)
        if cls is None or not hasattr(cls, "action_required"):
            continue
        found.add(cls.action_required)
        if getattr(cls, "write_action_required", None):
            found.add(cls.write_action_required)
        for extra in getattr(cls, "get_extra_actions", list)():
            if extra.kwargs.get("write_action_required"):
                found.add(extra.kwargs["write_action_required"])
    return found


def test_every_api_action_has_a_token_scope_and_the_table_names_only_known_actions():
    api_actions = _api_actions()

    assert {"campaigns.post_events", "members.view_member_centre"} <= api_actions
    assert api_actions <= set(TOKEN_SCOPE_FOR_ACTION), api_actions - set(TOKEN_SCOPE_FOR_ACTION)
    assert set(TOKEN_SCOPE_FOR_ACTION) <= set(PERMISSION_MATRIX)
    assert set(TOKEN_SCOPE_FOR_ACTION.values()) == set(ApiScope)


# --- the management command ------------------------------------------------------------------


def test_command_issues_a_token_and_prints_the_key_once(system_user, member):
    out, err = io.StringIO(), io.StringIO()

    call_command(
        "api_token_issue",
        "--user",
        "mobile_banking",
        "--name",
        "Mobile banking",
        "--scopes",
        "events-write,members-read",
        stdout=out,
        stderr=err,
    )
    key = out.getvalue().strip()
    token = ApiToken.objects.get()

    assert token.key_digest == api_key_digest(key)
    assert token.scopes == ["events-write", "members-read"] and token.name == "Mobile banking"
    assert key not in err.getvalue()
    assert AuditEntry.objects.filter(action="api_token.issue", object_id=str(token.pk)).exists()
    assert client_with(key).get(CENTRE).status_code == 200


def test_command_refuses_an_unknown_scope_or_user(system_user):
    with pytest.raises(CommandError, match="未知的权限范围"):
        call_command(
            "api_token_issue", "--user", "mobile_banking", "--name", "X", "--scopes", "all"
        )
    with pytest.raises(CommandError, match="No user"):
        call_command("api_token_issue", "--user", "nobody", "--name", "X", "--scopes", "x")
    assert not ApiToken.objects.exists()


# --- the admin pages -------------------------------------------------------------------------


def test_administrator_issues_a_token_in_the_admin_and_sees_the_key_once(
    client, administrator, system_user
):
    client.force_login(administrator)

    form = client.get(ADD_URL)
    response = client.post(
        ADD_URL,
        {
            "name": "Mobile banking",
            "user": system_user.pk,
            "scopes": ["events-write", "members-read"],
            "valid_until": "",
        },
    )

    assert form.status_code == 200
    assert response.status_code == 200, response.content[:500]
    token = ApiToken.objects.get()
    key = response.context["key"]
    assert token.key_digest == api_key_digest(key)
    assert key in response.content.decode()
    assert "no-store" in response["Cache-Control"]  # admin_view: never cached
    assert AuditEntry.objects.get(action="api_token.issue").actor == administrator
    listing = client.get("/admin/portal/apitoken/")
    detail = client.get(f"/admin/portal/apitoken/{token.pk}/change/")
    assert listing.status_code == 200 and detail.status_code == 200
    assert key not in listing.content.decode() + detail.content.decode()


def test_administrator_revokes_a_token_in_the_admin(client, administrator, issue):
    token, key = issue(ApiScope.MEMBERS_READ)
    client.force_login(administrator)

    response = client.post(
        f"/admin/portal/apitoken/{token.pk}/revoke/",
        {"_form_submitted": "on", "reason": "system retired"},
    )

    assert response.status_code == 302
    token.refresh_from_db()
    assert token.revoked_by == administrator
    entry = AuditEntry.objects.get(action="api_token.revoke")
    assert (entry.actor, entry.reason) == (administrator, "system retired")
    assert client_with(key).get(CENTRE).status_code == 401


@pytest.mark.parametrize(
    "role", [role for role in Role if role not in PERMISSION_MATRIX["portal.manage_api_tokens"]]
)
def test_api_token_admin_pages_are_refused_to_non_administrators(client, make_user, issue, role):
    token, _key = issue(ApiScope.MEMBERS_READ)
    client.force_login(make_user(role, username=f"user-{role.name.lower()}", branch="HO"))
    may_enter_admin = role in PERMISSION_MATRIX["portal.access_admin"]
    refused = {403} if may_enter_admin else {302}  # others go to the admin login

    pages = [
        client.get("/admin/portal/apitoken/"),
        client.get(ADD_URL),
        client.post(ADD_URL, {"name": "X", "user": token.user_id, "scopes": ["events-write"]}),
        client.get(f"/admin/portal/apitoken/{token.pk}/change/"),
        client.post(
            f"/admin/portal/apitoken/{token.pk}/revoke/", {"_form_submitted": "on", "reason": "x"}
        ),
    ]

    assert [page.status_code in refused for page in pages] == [True] * len(pages), [
        page.status_code for page in pages
    ]
    assert ApiToken.objects.count() == 1
    token.refresh_from_db()
    assert token.revoked_at is None
