"""Shared fixtures. Tests run on the database DATABASE_URL names (PostgreSQL in CI)."""

from __future__ import annotations

import io
from collections.abc import Callable

import pytest
from django.db import connection
from rest_framework.test import APIClient

from members.models import FeedBatch
from members.services import feed_import
from portal.choices import ApiScope, BranchLevel, Role
from portal.models import ApiToken, api_key_digest, api_key_generate
from tests.factories import BranchFactory, UserFactory
from tests.reference import ensure_reference_data


def pytest_collection_modifyitems(config, items):
    """`@pytest.mark.postgres` tests need PostgreSQL; on SQLite they are skipped, visibly."""
    from django.conf import settings

    if settings.DATABASES["default"]["ENGINE"].endswith("postgresql"):
        return
    skip = pytest.mark.skip(reason="needs PostgreSQL: set DATABASE_URL=postgres://...")
    for item in items:
        if "postgres" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def fast_passwords(settings):
    """Every test's users get a fast password hasher: people still log in through the real
    forms and backends, without the production hasher's deliberate cost per user."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def default_language():
    """Outside a request every test speaks the portal's default language (简体中文), whatever
    an earlier test on this worker activated: a request switches it, a test that needs English
    says so with `translation.override("en")`."""
    from django.conf import settings
    from django.utils import translation

    with translation.override(settings.LANGUAGE_CODE):
        yield


@pytest.fixture
def on_postgres() -> bool:
    return connection.vendor == "postgresql"


@pytest.fixture
def org(db):
    """A head office with two branches, each with one sub-branch."""
    head = BranchFactory(code="HO", name="总行", level=BranchLevel.HEAD_OFFICE)
    north = BranchFactory(code="B01", name="北京分行", parent=head)
    north_sub = BranchFactory(
        code="B01S1", name="朝阳支行", level=BranchLevel.SUB_BRANCH, parent=north
    )
    south = BranchFactory(code="B02", name="上海分行", parent=head)
    south_sub = BranchFactory(
        code="B02S1", name="浦东支行", level=BranchLevel.SUB_BRANCH, parent=south
    )
    return {"HO": head, "B01": north, "B01S1": north_sub, "B02": south, "B02S1": south_sub}


@pytest.fixture
def make_user(db, org) -> Callable[..., object]:
    def make(role: Role | None = None, *, username: str | None = None, branch: str = "B01S1", **kw):
        extra = {"username": username} if username else {}
        return UserFactory(role=role, branch=org[branch], **extra, **kw)

    return make


@pytest.fixture
def api_client_for():
    """An API client with an API token of `user` holding every scope (so only the user's
    roles decide; tests/portal/test_api_tokens.py tests the scopes)."""

    def client_for(user) -> APIClient:
        client = APIClient()
        key = api_key_generate()
        ApiToken.objects.create(
            name="Test client",
            user=user,
            prefix=key[:12],
            key_digest=api_key_digest(key),
            scopes=ApiScope.values,
        )
        client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
        return client

    return client_for


@pytest.fixture
def import_csv(db):
    """Import CSV text as a feed file through the real service; returns the FeedBatch."""

    def run(kind: str, text: str, *, name: str = "feed.csv", actor=None) -> FeedBatch:
        return feed_import(
            kind=kind, file=io.BytesIO(text.encode("utf-8")), file_name=name, actor=actor
        )

    return run


@pytest.fixture(autouse=True)
def _reference_data(request):
    """Every database test starts with the migrations' reference data, whatever ran before
    it on the same worker (xdist does not keep pytest-django's transactional-last order)."""
    uses_db = request.node.get_closest_marker("django_db") is not None or bool(
        {"db", "transactional_db"} & set(request.fixturenames)
    )
    if not uses_db:
        return
    request.getfixturevalue("db")
    ensure_reference_data()
