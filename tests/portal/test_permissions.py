"""The permission matrix, cell by cell, and every URL of the portal guarded by one of its
actions (portal/permissions.py, portal/decorators.py, portal/urls.py)."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.contrib.auth.models import AnonymousUser, Group
from django.contrib.auth.views import LoginView, LogoutView
from django.urls import URLPattern, URLResolver, get_resolver
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.test import APIRequestFactory

from portal.admin_base import PortalAdminSite
from portal.choices import Role
from portal.decorators import action_required
from portal.permissions import PERMISSION_MATRIX, MatrixPermission, roles_allowed, user_can
from tests.factories import FeedBatchFactory, JobRunFactory, MemberFactory

ROLES = list(Role)
ACTIONS = sorted(PERMISSION_MATRIX)
CELLS = [(action, role) for action in ACTIONS for role in ROLES]


def _cell_id(action: str, role: Role) -> str:
    return f"{action}-{role.name}"


# --- the matrix, cell by cell -----------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "role"), CELLS, ids=[_cell_id(action, role) for action, role in CELLS]
)
def test_user_with_one_role_may_do_exactly_what_the_matrix_says(make_user, action, role):
    user = make_user(role)
    expected = role in PERMISSION_MATRIX[action]

    assert user_can(user, action) is expected
    assert user.has_perm(action) is expected  # the same table through django-rules


def test_matrix_covers_every_role_and_only_known_roles():
    granted = set().union(*PERMISSION_MATRIX.values())

    assert granted <= set(Role)
    assert granted == set(Role), "a role that can do nothing at all is probably a mistake"


@pytest.mark.parametrize("action", ACTIONS)
def test_anonymous_user_is_refused_every_action(action):
    assert user_can(AnonymousUser(), action) is False


@pytest.mark.parametrize("action", ACTIONS)
def test_inactive_user_is_refused_every_action_whatever_their_roles(make_user, action):
    user = make_user(None, is_active=False)
    user.groups.set(Group.objects.filter(name__in=[str(role) for role in ROLES]))

    assert all(user.has_role(role) for role in ROLES)
    assert user_can(user, action) is False


@pytest.mark.parametrize("action", ACTIONS)
def test_inactive_superuser_is_refused_every_action(make_user, action):
    user = make_user(None, is_superuser=True, is_active=False)

    assert user_can(user, action) is False


@pytest.mark.parametrize("action", ACTIONS)
def test_superuser_without_any_role_may_do_everything(make_user, action):
    user = make_user(None, is_superuser=True)

    assert user_can(user, action) is True


@pytest.mark.parametrize("action", ACTIONS)
def test_user_without_any_role_may_do_nothing(make_user, action):
    user = make_user(None)

    assert user_can(user, action) is False


def test_unknown_action_is_an_error_not_a_silent_refusal(make_user):
    user = make_user(Role.ADMINISTRATOR)

    with pytest.raises(KeyError, match="add it to PERMISSION_MATRIX"):
        user_can(user, "members.no_such_action")
    with pytest.raises(KeyError):
        roles_allowed("members.no_such_action")


def test_decorator_refuses_an_action_missing_from_the_matrix_at_import_time():
    with pytest.raises(KeyError):
        action_required("portal.no_such_action")


class _ConfigView:
    action_required = "benefits.view_benefits"
    write_action_required = "benefits.configure_benefits"


class _ReadOnlyView:
    action_required = "benefits.view_budgets"


@pytest.mark.parametrize(
    ("role", "method", "allowed"),
    [
        (Role.BUDGET_APPROVER, "get", True),  # may view benefits
        (Role.BUDGET_APPROVER, "post", False),  # may not configure them
        (Role.PRODUCT_OPERATOR, "post", True),
        (Role.PRODUCT_OPERATOR, "delete", True),
        (Role.ACCOUNT_MANAGER, "get", False),
    ],
)
def test_api_permission_reads_need_the_action_and_writes_the_write_action(
    make_user, role, method, allowed
):
    request = getattr(APIRequestFactory(), method)("/api/v1/benefits/")
    request.user = make_user(role)

    assert MatrixPermission().has_permission(request, _ConfigView()) is allowed


def test_api_view_without_a_write_action_needs_the_read_action_for_writes(make_user):
    request = APIRequestFactory().post("/api/v1/budgets/")
    request.user = make_user(Role.BUDGET_APPROVER)
    refused = APIRequestFactory().post("/api/v1/budgets/")
    refused.user = make_user(Role.ACCOUNT_MANAGER)

    assert MatrixPermission().has_permission(request, _ReadOnlyView()) is True
    assert MatrixPermission().has_permission(refused, _ReadOnlyView()) is False


# --- every URL names an action of the matrix --------------------------------------------

#: Pages anyone may open (url name -> view class).
PUBLIC_VIEWS = {"login": LoginView, "logout": LogoutView}
#: API views outside the matrix (url name -> view class): they need a login (SERVE_PERMISSIONS).
API_DOC_VIEWS = {"api-schema": SpectacularAPIView, "api-docs": SpectacularSwaggerView}


def _walk(patterns, prefix: str = "", namespaces: tuple[str, ...] = ()):
    for entry in patterns:
        if isinstance(entry, URLResolver):
            namespace = (entry.namespace,) if entry.namespace else ()
            yield from _walk(
                entry.url_patterns, prefix + str(entry.pattern), namespaces + namespace
            )
        else:
            assert isinstance(entry, URLPattern)
            yield prefix + str(entry.pattern), namespaces, entry


def _guarded_patterns():
    """Every URL of the project except the admin (guarded by the admin site and its model
    admins), the language switch and static files."""
    found = []
    for route, namespaces, pattern in _walk(get_resolver().url_patterns):
        if "admin" in namespaces or route.startswith("admin/"):
            continue
        if pattern.name == "set_language" or route.startswith("i18n/"):
            continue
        if pattern.callback.__module__ == "django.contrib.staticfiles.views":
            continue
        found.append((route, namespaces, pattern))
    return found


GUARDED = _guarded_patterns()


def _full_name(namespaces, pattern) -> str:
    return ":".join([*namespaces, pattern.name or "?"])


def test_url_walker_sees_the_known_pages_and_endpoints():
    names = {_full_name(namespaces, pattern) for _route, namespaces, pattern in GUARDED}

    assert {
        "home",
        "login",
        "logout",
        "jobruns",
        "jobrun-rerun",
        "members:list",
        "members:detail",
        "members:feeds",
        "members:feed-detail",
        "api-member-list",
        "api-member-centre",
        "api-schema",
        "api-docs",
    } <= names


@pytest.mark.parametrize(
    ("route", "namespaces", "pattern"),
    GUARDED,
    ids=[f"{_full_name(ns, p)}:{route}" for route, ns, p in GUARDED],
)
def test_every_url_names_an_action_of_the_matrix(route, namespaces, pattern):
    callback = pattern.callback
    view_class = getattr(callback, "cls", None) or getattr(callback, "view_class", None)

    if pattern.name in PUBLIC_VIEWS:
        assert view_class is PUBLIC_VIEWS[pattern.name], route
        return
    if pattern.name in API_DOC_VIEWS:
        assert view_class is API_DOC_VIEWS[pattern.name], route
        return
    if getattr(callback, "cls", None) is not None:  # Django REST framework
        cls = callback.cls
        assert getattr(cls, "action_required", None) in PERMISSION_MATRIX, (
            f"{route}: {cls.__name__} needs action_required naming a PERMISSION_MATRIX action"
        )
        write_action = getattr(cls, "write_action_required", None)
        assert write_action is None or write_action in PERMISSION_MATRIX, route
        assert MatrixPermission in cls.permission_classes, (
            f"{route}: {cls.__name__} does not check its action (MatrixPermission)"
        )
        return
    assert getattr(callback, "action_required", None) in PERMISSION_MATRIX, (
        f"{route}: view {callback.__module__}.{callback.__name__} is not decorated with "
        "portal.decorators.action_required naming a PERMISSION_MATRIX action"
    )


# --- the pages, role by role --------------------------------------------------------------

#: page key -> action of the matrix it needs
PAGES = {
    "/": "portal.view_home",
    "/members/": "members.view_members",
    "/members/<member_no>/": "members.view_members",
    "/members/feeds/": "members.view_feeds",
    "/members/feeds/<id>/": "members.view_feeds",
    "/jobs/": "portal.view_jobruns",
    "/admin/": "portal.access_admin",
}
SUPERUSER = "superuser"


def _page_cases():
    cases = []
    for page in PAGES:
        for role in [*ROLES, SUPERUSER]:
            role_id = role if role == SUPERUSER else role.name
            cases.append(pytest.param(page, role, id=f"{page}-{role_id}"))
    return cases


@pytest.fixture
def page_world(org, make_user):
    """Builds the user for a role and the objects the pages need, all in their scope."""

    def build(role):
        if role == SUPERUSER:
            user = make_user(None, is_superuser=True)
        elif role == Role.BRANCH_MANAGER:
            user = make_user(role, branch="B01")
        else:
            user = make_user(role)
        member = MemberFactory(branch=org["B01S1"], account_manager=user)
        batch = FeedBatchFactory()
        JobRunFactory()
        return user, member, batch

    return build


def _url(page: str, member, batch) -> str:
    return page.replace("<member_no>", member.member_no).replace("<id>", str(batch.pk))


@pytest.mark.parametrize(("page", "role"), _page_cases())
def test_page_status_follows_the_matrix(client, page_world, page, role):
    user, member, batch = page_world(role)
    url = _url(page, member, batch)
    client.force_login(user)

    response = client.get(url)

    allowed = role == SUPERUSER or role in PERMISSION_MATRIX[PAGES[page]]
    if page == "/admin/":
        if allowed:
            assert response.status_code == 200
        else:
            assert response.status_code == 302
            assert response["Location"] == "/admin/login/?next=/admin/"
    else:
        assert response.status_code == (200 if allowed else 403)


@pytest.mark.parametrize("page", [page for page in PAGES if page != "/admin/"])
def test_anonymous_user_is_sent_to_the_login_page(client, page_world, page):
    _user, member, batch = page_world(Role.ADMINISTRATOR)
    url = _url(page, member, batch)

    response = client.get(url)

    assert response.status_code == 302
    assert response["Location"] == f"/login/?next={url}"


def test_anonymous_user_is_sent_to_the_admin_login_for_the_admin(client, db):
    response = client.get("/admin/")

    assert response.status_code == 302
    assert response["Location"] == "/admin/login/?next=/admin/"


def test_refused_page_renders_the_403_template(client, make_user):
    client.force_login(make_user(Role.ACCOUNT_MANAGER))

    response = client.get("/members/feeds/")

    assert response.status_code == 403
    assert "403.html" in [t.name for t in response.templates]


def test_rerun_of_a_job_needs_the_rerun_action(client, make_user):
    run = JobRunFactory()
    client.force_login(make_user(Role.BRANCH_MANAGER, branch="B01"))  # may see job runs only

    response = client.post(f"/jobs/{run.pk}/rerun/")

    assert response.status_code == 403


def test_admin_site_is_guarded_by_the_matrix():
    assert isinstance(admin.site, PortalAdminSite)
