"""Every page a role reaches from its navigation reads in the user's language.

The crawl logs in as each demo role of `seed_demo`, starts from the portal's navigation and
the admin's sidebar, and follows the links of those pages one step further (one page of each
kind: /members/M000123/ stands for every customer page). On each page it reads the visible
text (`tests/crawl.py`) and fails

- in 简体中文 on an English word outside identifiers (member numbers, campaign and benefit
  codes hold digits or underscores), stored data and the short list `ALLOWED_IN_CHINESE`;
- in English on Chinese text outside stored data (customers' and branches' names, campaign
  names: what people typed in is shown as typed).
"""

from __future__ import annotations

import io
from collections import deque
from collections.abc import Iterator
from datetime import date

import pytest
from django.apps import apps
from django.core.management import call_command
from django.db import models, transaction
from django.test import Client, override_settings

from portal.models import User
from tests.crawl import (
    chinese_runs,
    english_words,
    internal_path,
    page_links,
    path_pattern,
    visible_text,
)
from tests.reference import ensure_reference_data

pytestmark = pytest.mark.django_db

AS_OF = date(2026, 11, 26)
FAST_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

#: One login of each role that uses the browser (the integration account has a token only).
ROLE_LOGINS = ["am_b01s1", "bm_b01", "operator", "approver", "auditor", "admin"]

#: English that stays English in the Chinese UI, and why:
#: - CSV, API, ID, IP, URL, JSON, KPI, Excel: the names Chinese banking staff use for these
#:   (no Chinese word is in use for a CSV file or an IP address);
#: - MADA: the bank's own abbreviation for 月日均资产, shown beside the Chinese term;
#: - CNY: the ISO code of the currency where a form field states its unit;
#: - Control, Command, Mac: keys as their caps are labelled, in Django's own Chinese help of a
#:   multiple choice ("按住 Control 键或 Mac 上的 Command 键来选择多项");
#: - PostgreSQL, SQLite: product names, in the audit page's "审计日志需要 PostgreSQL" (SQLite);
#: - Welch: a statistician's name, as Chinese statistics names his interval ("Welch 区间").
ALLOWED_IN_CHINESE = {
    *("CSV", "API", "ID", "IP", "URL", "JSON", "KPI", "Excel", "MADA", "CNY"),
    *("Control", "Command", "Mac"),
    *("PostgreSQL", "SQLite"),
    "Welch",
}
ALLOWED_IN_ENGLISH: set[str] = set()

#: Pages the crawl does not open: they change state on GET, are not HTML, or belong to
#: another audience (the API's own browsable pages and schema).
SKIPPED_PREFIXES = (
    "/logout",
    "/i18n/",
    "/api/",
    "/static/",
    "/admin/logout/",
    "/admin/jsi18n/",
    "/admin/r/",
    "/accounts/logout",
)
#: At most this many pages per role and language (one page of each kind is enough).
PAGE_LIMIT = 250


def seed() -> None:
    call_command(
        "seed_demo",
        "--members",
        "40",
        "--seed",
        "7",
        "--as-of",
        AS_OF.isoformat(),
        stdout=io.StringIO(),
        stderr=io.StringIO(),
    )
    call_command("run_nightly", "--date", AS_OF.isoformat(), stdout=io.StringIO())


@pytest.fixture(scope="module")
def demo_bank(django_db_setup, django_db_blocker) -> Iterator[None]:
    """One demo bank for the module, seeded in a transaction rolled back afterwards."""
    with (
        django_db_blocker.unblock(),
        override_settings(PASSWORD_HASHERS=FAST_HASHERS),
        transaction.atomic(),
    ):
        ensure_reference_data()
        seed()
        yield
        transaction.set_rollback(True)


def stored_text(*, language: str) -> list[str]:
    """Text people typed in or loaded from the bank's systems: names, notes, reasons.

    Codes (fields named code) are left out on purpose: a page that shows a code where a
    name belongs fails. In English, names that have an English counterpart (name_en) are
    left out too: the page must show the English one."""
    values: set[str] = set()
    for model in apps.get_models():
        if model._meta.app_label not in {"portal", "members", "benefits", "campaigns"}:
            continue
        field_names = {field.name for field in model._meta.concrete_fields}
        text_fields = [
            field.name
            for field in model._meta.concrete_fields
            if isinstance(field, models.CharField | models.TextField)
            and not field.choices
            and field.name not in {"code", "password", "username", "key_digest", "name_en"}
            and not (language == "en" and field.name == "name" and "name_en" in field_names)
        ]
        if not text_fields:
            continue
        for row in model.objects.values_list(*text_fields).iterator():
            values.update(value.strip() for value in row if isinstance(value, str) and value)
    # staff are named by their full names (surname and given name are stored apart), and an
    # avatar shows a name's first character
    for user in User.objects.all():
        name = user.get_full_name()
        values.update({name, name[:1]} if name else set())
    # numbers and one-letter values are no words of either language; skipping them keeps
    # them from matching inside other text
    kept = {
        value
        for value in values
        if value and not value.isdigit() and (len(value) > 1 or not value.isascii())
    }
    return sorted(kept, key=len, reverse=True)


def strip_stored(text: str, stored: list[str]) -> str:
    """`text` without the stored values in it, the longest first (so that "2026" or a code
    never cuts a budget's name in two before the name is recognised)."""
    for value in stored:
        if value in text:
            text = text.replace(value, " ")
    return text


def crawl(client: Client) -> Iterator[tuple[str, str]]:
    """(path, html) of the pages reachable from the navigation, one of each kind."""
    start = client.get("/")
    assert start.status_code == 200
    html = start.content.decode()
    seen = {path_pattern("/")}
    queue: deque[tuple[str, int]] = deque()
    for href in page_links(html):
        path = internal_path(href)
        if path and not path.startswith(SKIPPED_PREFIXES):
            queue.append((path, 1))
    yield "/", html
    visited = 1
    while queue and visited < PAGE_LIMIT:
        path, depth = queue.popleft()
        pattern = path_pattern(path)
        if pattern in seen:
            continue
        seen.add(pattern)
        response = client.get(path)
        assert response.status_code < 500, f"{path} answered {response.status_code}"
        if response.status_code != 200 or "text/html" not in response.get("Content-Type", ""):
            continue
        visited += 1
        html = response.content.decode()
        yield path, html
        # The portal's and the admin's navigation are followed two steps (index → list →
        # one object); what a page links to beyond that is a page of a kind already seen.
        if depth < 3:
            for href in page_links(html):
                linked = internal_path(href)
                if linked and not linked.startswith(SKIPPED_PREFIXES):
                    queue.append((linked, depth + 1))


def findings(client: Client, *, language: str, stored: list[str]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for path, html in crawl(client):
        words: list[str] = []
        for piece in visible_text(html, without_stored_values=True):
            text = strip_stored(piece, stored)
            if language == "zh-hans":
                words += english_words(text, ALLOWED_IN_CHINESE)
            else:
                words += chinese_runs(text)
        if words:
            found[path] = sorted(set(words))
    return found


def report(found: dict[str, list[str]]) -> str:
    return "\n".join(f"{path}: {' '.join(words)}" for path, words in sorted(found.items()))


@pytest.mark.parametrize("language", ["zh-hans", "en"])
@pytest.mark.parametrize("username", ROLE_LOGINS)
def test_every_page_a_role_reaches_reads_in_its_language(demo_bank, username, language):
    client = Client(HTTP_ACCEPT_LANGUAGE=language)
    client.cookies["django_language"] = language
    client.force_login(User.objects.get(username=username))
    stored = stored_text(language=language)

    found = findings(client, language=language, stored=stored)

    assert not found, f"{username} in {language} sees untranslated text:\n{report(found)}"
