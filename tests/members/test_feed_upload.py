"""Uploading a feed file on the feeds page (product operators and administrators): the same
import as the command, the summary line afterwards, the rejected rows as CSV, and refusals
of files that cannot be imported; every new URL guarded by its matrix action."""

from __future__ import annotations

import csv
import io
from contextlib import contextmanager

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client

from members.choices import FeedStatus
from members.models import AssetBalance, FeedBatch
from members.selectors import FEED_RUNNING_LOCK_CLASS, FEED_RUNNING_LOCK_IDS
from portal.choices import Role
from portal.models import AuditEntry
from portal.permissions import PERMISSION_MATRIX
from tests.factories import FeedBatchFactory, MemberFactory

pytestmark = pytest.mark.django_db

ASSETS_HEADER = "member_no,date,category,balance"
MEMBERS_HEADER = (
    "member_no,name,phone,id_number,birth_date,registered_at,branch_code,manager_username,"
    "credit_risk"
)
PHONE, ID_NUMBER = "13987654321", "110101198505056789"


@pytest.fixture(autouse=True)
def english(client, settings):
    """The pages read in English here (the messages are matched as written); the Chinese
    of the feed pages is checked in test_views.py and the catalogue's completeness in
    tests/portal/test_translations.py."""
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"


@pytest.fixture
def operator(make_user):
    return make_user(Role.PRODUCT_OPERATOR, username="operator", branch="HO")


@pytest.fixture
def members(db):
    return [MemberFactory(member_no=no) for no in ("M1", "M2")]


def upload(client, kind: str, content: bytes, name: str = "assets.csv", **extra):
    return client.post(
        "/members/feeds/upload/",
        {"kind": kind, "file": SimpleUploadedFile(name, content, content_type="text/csv")},
        **extra,
    )


def _messages(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


def _csv(response) -> list[list[str]]:
    text = b"".join(response.streaming_content).decode("utf-8")
    assert text.startswith("\ufeff")
    return list(csv.reader(io.StringIO(text[1:])))


# --- an upload with some bad rows ------------------------------------------------------------


def test_an_upload_with_bad_rows_shows_the_summary_lists_the_batch_and_offers_the_csv(
    client, operator, members
):
    client.force_login(operator)
    content = (
        f"{ASSETS_HEADER}\nM1,2026-10-01,DEMAND,100.00\nM9,2026-10-01,DEMAND,1.00\n"
        "=1+2,2026-10-01,DEMAND,1.00\nM2,2026-10-01,CASH,1.00\n"
    ).encode()

    response = upload(client, "assets", content, name="assets_20261001.csv", follow=True)

    batch = FeedBatch.objects.get()
    assert response.redirect_chain == [(f"/members/feeds/{batch.pk}/", 302)]
    assert any(
        "received=4 accepted=1 duplicates=0 rejected=3" in message
        for message in _messages(response)
    )
    assert (batch.status, batch.imported_by, batch.file_name) == (
        FeedStatus.LOADED,
        operator,
        "assets_20261001.csv",
    )
    assert AssetBalance.objects.count() == 1
    html = response.content.decode()
    assert f'href="/members/feeds/{batch.pk}/rejected.csv"' in html

    listed = client.get("/members/feeds/")
    assert [b.pk for b in listed.context["page"].object_list] == [batch.pk]

    download = client.get(f"/members/feeds/{batch.pk}/rejected.csv")

    assert download.status_code == 200
    assert download["Content-Type"].startswith("text/csv")
    assert f"feed-{batch.pk}-rejected.csv" in download["Content-Disposition"]
    rows = _csv(download)
    assert rows[0] == ["line", "field", "reason", "row_masked"]
    by_line = {row[0]: row for row in rows[1:]}
    assert set(by_line) == {"3", "4", "5"}
    assert by_line["3"][1:] == ["member_no", "unknown member M9", "M9,2026-10-01,DEMAND,1.00"]
    assert by_line["5"][1] == "category"
    assert "unknown category 'CASH'" in by_line["5"][2]
    # a cell Excel would run as a formula is quoted
    assert by_line["4"][3] == "'=1+2,2026-10-01,DEMAND,1.00"
    assert all(not cell.startswith(("=", "+", "-", "@")) for row in rows for cell in row)
    entry = AuditEntry.objects.get(action="feed.rejections_export")
    assert (entry.actor, entry.object_id, entry.changes) == (operator, str(batch.pk), {"rows": 3})


def test_the_rejected_rows_csv_masks_phone_and_id_number_like_the_page(client, operator, make_user):
    client.force_login(operator)
    content = (
        f"{MEMBERS_HEADER}\nM7,孙三,{PHONE},{ID_NUMBER},,2024-01-02,ZZZ,,0\nM8,周五,{PHONE}\n"
    ).encode()
    upload(client, "members", content, name="members.csv")
    batch = FeedBatch.objects.get()
    client.force_login(make_user(Role.RISK_AUDITOR, username="auditor", branch="HO"))

    text = "\n".join(
        ",".join(row) for row in _csv(client.get(f"/members/feeds/{batch.pk}/rejected.csv"))
    )

    assert PHONE not in text and ID_NUMBER not in text
    assert "unknown branch 'ZZZ'" in text
    assert "expected 9 columns, found 3" in text


def test_an_upload_whose_every_row_is_refused_says_so(client, operator, members):
    client.force_login(operator)

    response = upload(
        client, "assets", f"{ASSETS_HEADER}\nM9,2026-10-01,DEMAND,1.00\n".encode(), follow=True
    )

    batch = FeedBatch.objects.get()
    assert batch.status == FeedStatus.REJECTED
    assert any(
        "received=1 accepted=0 duplicates=0 rejected=1" in m and "every row was rejected" in m
        for m in _messages(response)
    )


def test_uploading_the_same_file_again_changes_nothing(client, operator, members):
    client.force_login(operator)
    content = f"{ASSETS_HEADER}\nM1,2026-10-01,DEMAND,1.00\n".encode()
    upload(client, "assets", content)

    response = upload(client, "assets", content, follow=True)

    assert any("received=1 accepted=0 duplicates=1 rejected=0" in m for m in _messages(response))
    assert AssetBalance.objects.count() == 1


# --- files that cannot be imported -------------------------------------------------------------


def test_a_file_with_the_wrong_header_is_refused_with_a_message_and_a_failed_batch(
    client, operator, members
):
    client.force_login(operator)

    response = upload(client, "assets", b"member_no,day,category,balance\nM1,2026-10-01,DEMAND,1\n")

    assert response.status_code == 400
    html = response.content.decode()
    assert "The header is wrong" in html
    assert "member_no,date,category,balance" in html
    failed = FeedBatch.objects.get()
    assert failed.status == FeedStatus.FAILED and "wrong header" in failed.error
    assert not AssetBalance.objects.exists()


def test_a_file_that_is_not_utf8_is_refused_with_a_message(client, operator, members):
    client.force_login(operator)

    response = upload(
        client, "assets", f"{ASSETS_HEADER}\nM1,2026-10-01,DEMAND,1.00,备注\n".encode("gbk")
    )

    assert response.status_code == 400
    assert "not UTF-8" in response.content.decode()
    assert FeedBatch.objects.get().status == FeedStatus.FAILED


def test_an_empty_file_is_refused_and_nothing_is_created(client, operator):
    client.force_login(operator)

    response = upload(client, "assets", b"")

    assert response.status_code == 400
    assert "The file is empty" in response.content.decode()
    assert not FeedBatch.objects.exists()


def test_a_missing_file_or_kind_is_refused(client, operator):
    client.force_login(operator)

    no_file = client.post("/members/feeds/upload/", {"kind": "assets"})
    bad_kind = upload(client, "balances", f"{ASSETS_HEADER}\n".encode())

    assert no_file.status_code == 400 and "Choose the feed file" in no_file.content.decode()
    assert bad_kind.status_code == 400
    assert not FeedBatch.objects.exists()


def test_a_file_larger_than_the_limit_is_refused_before_it_is_read(client, operator, settings):
    settings.FEED_UPLOAD_MAX_BYTES = 1_000
    client.force_login(operator)
    content = (ASSETS_HEADER + "\n" + "M1,2026-10-01,DEMAND,1.00\n" * 5_000).encode()

    response = upload(client, "assets", content, follow=True)

    assert response.redirect_chain == [("/members/feeds/", 302)]
    assert any("larger than" in m for m in _messages(response))
    assert not FeedBatch.objects.exists()


def test_a_file_that_grows_past_the_limit_while_uploading_is_cut_off(client, operator, settings):
    settings.FEED_UPLOAD_MAX_BYTES = 1_000  # the body is within the overhead allowance
    client.force_login(operator)
    content = (ASSETS_HEADER + "\n" + "M1,2026-10-01,DEMAND,1.00\n" * 100).encode()
    assert 1_000 < len(content) < 60_000

    response = upload(client, "assets", content, follow=True)

    assert response.redirect_chain == [("/members/feeds/", 302)]
    assert any("larger than" in m for m in _messages(response))
    assert not FeedBatch.objects.exists()


def test_the_upload_form_is_shown_only_to_those_who_may_import(client, operator, make_user):
    client.force_login(operator)
    assert 'action="/members/feeds/upload/"' in client.get("/members/feeds/").content.decode()

    client.force_login(make_user(Role.RISK_AUDITOR, username="auditor", branch="HO"))
    assert "/members/feeds/upload/" not in client.get("/members/feeds/").content.decode()


# --- progress ---------------------------------------------------------------------------------


@contextmanager
def import_running(batch):
    """Hold the lock a running import of `batch` holds (PostgreSQL; on SQLite a recent
    LOADING batch counts as running anyway)."""
    key = [FEED_RUNNING_LOCK_CLASS, batch.pk % FEED_RUNNING_LOCK_IDS]
    if connection.vendor != "postgresql":
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock(%s, %s)", key)
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s, %s)", key)


def test_a_loading_batch_page_polls_its_progress_until_the_import_ends(client, operator):
    batch = FeedBatchFactory(status=FeedStatus.LOADING, rows_read=20_000)
    client.force_login(operator)
    with import_running(batch):
        _polls_until_loaded(client, batch)


def _polls_until_loaded(client, batch):

    page = client.get(f"/members/feeds/{batch.pk}/").content.decode()
    running = client.get(f"/members/feeds/{batch.pk}/progress/")

    assert f'hx-get="/members/feeds/{batch.pk}/progress/"' in page
    assert "20,000" in page or "20000" in page
    assert running.status_code == 200 and "hx-get" in running.content.decode()

    FeedBatch.objects.filter(pk=batch.pk).update(status=FeedStatus.LOADED, rows_read=20_000)
    done = client.get(f"/members/feeds/{batch.pk}/progress/")

    assert done.status_code == 286  # htmx stops polling
    assert done["HX-Refresh"] == "true"
    assert "hx-get" not in done.content.decode()


def test_a_failed_batch_shows_how_far_it_read(client, operator):
    batch = FeedBatchFactory(status=FeedStatus.FAILED, rows_read=1_234, error="boom")
    client.force_login(operator)

    html = client.get(f"/members/feeds/{batch.pk}/").content.decode()

    assert "1,234" in html or "1234" in html
    assert "boom" in html


# --- every new URL, role by role ---------------------------------------------------------------

ROLES = list(Role)
NEW_URLS = [
    ("get", "/members/feeds/upload/", "members.import_feed", 302),
    ("post", "/members/feeds/upload/", "members.import_feed", 302),
    ("get", "/members/feeds/<id>/progress/", "members.view_feeds", 286),
    ("post", "/members/feeds/<id>/progress/", "members.view_feeds", 286),
    ("get", "/members/feeds/<id>/rejected.csv", "members.view_feeds", 200),
    ("post", "/members/feeds/<id>/rejected.csv", "members.view_feeds", 200),
]


@pytest.mark.parametrize("role", ROLES, ids=[role.name for role in ROLES])
@pytest.mark.parametrize(
    ("method", "url", "action", "allowed_status"),
    NEW_URLS,
    ids=[f"{method}-{url}" for method, url, _a, _s in NEW_URLS],
)
def test_new_feed_urls_follow_the_matrix(
    client, make_user, role, method, url, action, allowed_status
):
    batch = FeedBatchFactory()
    client.force_login(make_user(role))
    data = {"kind": "assets", "file": SimpleUploadedFile("a.csv", f"{ASSETS_HEADER}\n".encode())}

    response = getattr(client, method)(
        url.replace("<id>", str(batch.pk)), data if method == "post" else None
    )

    if role in PERMISSION_MATRIX[action]:
        assert response.status_code == allowed_status
    else:
        assert response.status_code == 403


@pytest.mark.parametrize(
    ("method", "url"),
    [(m, u) for m, u, _a, _s in NEW_URLS],
    ids=[f"{m}-{u}" for m, u, _a, _s in NEW_URLS],
)
def test_new_feed_urls_send_anonymous_users_to_the_login_page(client, db, method, url):
    batch = FeedBatchFactory()
    path = url.replace("<id>", str(batch.pk))

    response = getattr(client, method)(path)

    assert response.status_code == 302
    assert response["Location"] == f"/login/?next={path}"
    assert FeedBatch.objects.count() == 1


def test_an_upload_without_the_csrf_token_is_refused(operator, members):
    client = Client(enforce_csrf_checks=True)
    client.force_login(operator)

    response = upload(client, "assets", f"{ASSETS_HEADER}\nM1,2026-10-01,DEMAND,1.00\n".encode())

    assert response.status_code == 403
    assert not FeedBatch.objects.exists()


def test_an_upload_with_the_csrf_token_from_the_page_is_taken(operator, members):
    client = Client(enforce_csrf_checks=True)
    client.force_login(operator)
    client.get("/members/feeds/")
    token = client.cookies["csrftoken"].value

    response = client.post(
        "/members/feeds/upload/",
        {
            "csrfmiddlewaretoken": token,
            "kind": "assets",
            "file": SimpleUploadedFile(
                "a.csv", f"{ASSETS_HEADER}\nM1,2026-10-01,DEMAND,1.00\n".encode()
            ),
        },
    )

    assert response.status_code == 302
    assert FeedBatch.objects.get().status == FeedStatus.LOADED
