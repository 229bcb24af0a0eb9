"""Input no one types — a NUL, other control characters, bodies nested a thousand deep,
malformed member numbers, endless filter values — is answered 400 or 404, never a 500
(portal/input_guard.py, portal/api/parsers.py, portal/converters.py). The probe's URLs are
here as it sent them."""

from __future__ import annotations

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from members.models import FollowUpNote
from portal.api.parsers import JSONParser
from portal.choices import Role
from tests.campaigns.conftest import event
from tests.factories import BenefitFactory, MemberFactory

pytestmark = pytest.mark.django_db

MEMBER_NO = "MX000001"


@pytest.fixture
def staff(make_user):
    return {
        "admin": make_user(Role.ADMINISTRATOR, username="admin", branch="HO"),
        "am": make_user(Role.ACCOUNT_MANAGER, username="am", branch="B01S1"),
        "operator": make_user(Role.PRODUCT_OPERATOR, username="operator", branch="HO"),
        "system": make_user(Role.SYSTEM, username="mobile_banking", branch="HO"),
    }


@pytest.fixture
def member(org, staff):
    return MemberFactory(member_no=MEMBER_NO, branch=org["B01S1"], account_manager=staff["am"])


@pytest.fixture
def api(api_client_for, staff):
    client = api_client_for(staff["admin"])
    client.raise_request_exception = False  # a 500 is an answer to assert on, not a crash
    return client


@pytest.fixture
def pages(client, staff):
    client.force_login(staff["admin"])
    client.raise_request_exception = False
    return client


def assert_json_400(response, code: str) -> None:
    assert response.status_code == 400, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["code"] == code and body["detail"]


# --- query strings ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/members/?branch=%00",
        "/api/v1/members/?tier=%00",
        "/api/v1/members/?stage=%00",
        "/api/v1/members/?q=%00",
        "/api/v1/members/?q=M00%00123",
        "/api/v1/members/?status=%01",
        "/api/v1/members/?%00=1",
        "/api/v1/campaigns/?status=%00",
        "/api/v1/tasks/?campaign=%00",
        "/api/v1/approvals/?kind=%1b",
    ],
)
def test_nul_or_a_control_character_in_an_api_query_is_400_json(api, member, url):
    response = api.get(url, HTTP_ACCEPT_LANGUAGE="en")

    assert_json_400(response, "control_character")
    assert "control character" in response.json()["detail"]


@pytest.mark.parametrize(
    "url",
    [
        "/members/?branch=%00",
        "/members/?tier=%00",
        "/members/?stage=%00",
        "/members/?q=%00",
        "/members/export.csv?q=%00",
        "/approvals/?status=%00",
        "/audit/?object_id=%00",
        "/members/?q=a%07b",
    ],
)
def test_nul_or_a_control_character_in_a_page_query_is_the_400_page(pages, member, url):
    response = pages.get(url, HTTP_ACCEPT_LANGUAGE="en")

    assert response.status_code == 400
    assert response["Content-Type"].startswith("text/html")
    assert "The request could not be read" in response.content.decode()
    assert "control character" in response.content.decode()


def test_the_400_page_is_in_the_users_language(pages, member):
    response = pages.get("/members/?q=%00")  # the default language, zh-hans

    assert response.status_code == 400
    assert '<html lang="zh-hans">' in response.content.decode()


@pytest.mark.parametrize("where", ["/api/v1/members/", "/members/"])
def test_a_query_value_over_200_characters_is_refused(api, pages, member, where):
    client = api if where.startswith("/api/") else pages

    too_long = client.get(where, {"q": "a" * 201}, HTTP_ACCEPT_LANGUAGE="en")
    longest = client.get(where, {"q": "a" * 200}, HTTP_ACCEPT_LANGUAGE="en")

    assert too_long.status_code == 400
    if where.startswith("/api/"):
        assert_json_400(too_long, "query_too_long")
    assert longest.status_code == 200


JUNK = ["-1", "abc", "0", "9" * 40, "'; --", "%", "１２３"]
MEMBER_FILTERS = ["branch", "tier", "stage", "status", "q", "segment", "worklist", "page"]


def test_junk_in_a_member_list_filter_is_never_a_500(api, pages, member):
    answers = {
        (where, name, junk): client.get(where, {name: junk}).status_code
        for where, client in (("/api/v1/members/", api), ("/members/", pages))
        for name in MEMBER_FILTERS
        for junk in JUNK
    }

    assert {key: status for key, status in answers.items() if status >= 500} == {}
    assert set(answers.values()) <= {200, 400, 404}


API_JUNK_URLS = [
    "/api/v1/campaigns/?status=abc",
    "/api/v1/tasks/?campaign=-1",
    "/api/v1/tasks/?event_type=abc&measure=-1&recurrence=x&difficulty=abc",
    "/api/v1/segments/?department__code=-1",
    "/api/v1/approvals/?kind=abc&status=-1",
    "/api/v1/benefits/?page=abc",
    "/api/v1/budgets/abc/",
    "/api/v1/benefits/-1/",
    "/api/v1/entitlements/%20/",
]


def test_junk_in_an_api_filter_or_lookup_is_answered_as_json_never_a_500(api):
    answers = {url: api.get(url) for url in API_JUNK_URLS}

    assert {url: r.status_code for url, r in answers.items() if r.status_code >= 500} == {}
    assert all(r["Content-Type"].startswith("application/json") for r in answers.values())


# --- lookups by member number -----------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/members/M%00/",
        "/api/v1/members/M%2000/",
        "/api/v1/members/" + "M" * 33 + "/",
        "/api/v1/members/M.1/",
    ],
)
def test_a_malformed_member_number_in_an_api_address_is_a_json_404(api, member, url):
    response = api.get(url)

    assert response.status_code == 404, response.content
    assert response.json()["code"] == "not_found"


@pytest.mark.parametrize(
    "method, url",
    [
        ("get", "/members/M%00/"),
        ("get", "/members/M%00/reveal/"),
        ("post", "/members/M%00/reveal/"),
        ("post", "/members/M%00/feedback/"),
        ("post", "/members/M%00/notes/"),
        ("post", "/members/M%00/notes/1/done/"),
        ("post", "/members/M%00/override/"),
        ("post", "/members/M%00/opt-out/"),
        ("get", "/members/" + "9" * 33 + "/"),
        ("get", "/members/M%E2%80%8B1/"),
    ],
)
def test_a_malformed_member_number_in_a_page_address_is_a_404(pages, member, method, url):
    response = getattr(pages, method)(url)

    assert response.status_code == 404


def test_a_malformed_member_number_to_redeem_a_grant_is_a_404(api_client_for, staff, member):
    client = api_client_for(staff["system"])
    client.raise_request_exception = False

    response = client.post("/api/v1/members/M%00/grants/1/redeem/")

    assert response.status_code == 404


def test_a_well_formed_member_number_still_opens_the_member(api, client, staff, member):
    client.force_login(staff["am"])

    assert api.get(f"/api/v1/members/{MEMBER_NO}/").status_code == 200
    assert client.get(f"/members/{MEMBER_NO}/").status_code == 200


def test_nul_in_an_admin_address_is_400(pages):
    response = pages.get("/admin/members/member/%00/change/", HTTP_ACCEPT_LANGUAGE="en")

    assert response.status_code == 400
    assert "control character" in response.content.decode()


# --- form bodies ------------------------------------------------------------------------------


def test_nul_in_a_posted_form_field_is_400_and_nothing_is_stored(client, staff, member):
    client.force_login(staff["am"])

    response = client.post(
        f"/members/{MEMBER_NO}/notes/",
        {"text": "call back\x00", "due_on": ""},
        HTTP_ACCEPT_LANGUAGE="en",
    )

    assert response.status_code == 400
    assert "a form field" in response.content.decode()
    assert not FollowUpNote.objects.exists()


def test_nul_in_a_multipart_form_field_is_400(client, staff, member):
    client.force_login(staff["am"])

    response = client.post(
        f"/members/{MEMBER_NO}/notes/",
        {"text": "call\x00back", "attachment": SimpleUploadedFile("a.txt", b"x")},
    )

    assert response.status_code == 400
    assert not FollowUpNote.objects.exists()


def test_line_breaks_in_a_form_field_and_nul_bytes_in_an_uploaded_file_pass(client, staff, member):
    client.force_login(staff["am"])

    response = client.post(
        f"/members/{MEMBER_NO}/notes/",
        {
            "text": "line one\r\nline two\tindented",
            "due_on": "",
            "attachment": SimpleUploadedFile("scan.bin", b"\x00\x01\x02binary\x00"),
        },
    )

    assert response.status_code == 302
    assert FollowUpNote.objects.get().text == "line one\r\nline two\tindented"


# --- JSON bodies ------------------------------------------------------------------------------


def _nested(depth: int) -> str:
    return '{"name": ' + "[" * depth + "]" * depth + "}"


@pytest.mark.parametrize("depth", [33, 1_000, 100_000])
@pytest.mark.parametrize("url", ["/api/v1/campaigns/", "/api/v1/benefits/", "/api/v1/tasks/"])
def test_a_deeply_nested_body_is_400(api_client_for, staff, url, depth):
    client = api_client_for(staff["operator"])
    client.raise_request_exception = False

    response = client.post(url, _nested(depth), content_type="application/json")

    assert_json_400(response, "too_deeply_nested")


def test_a_body_nested_within_the_bound_reaches_the_view(api_client_for, staff):
    client = api_client_for(staff["operator"])

    response = client.post("/api/v1/benefits/", _nested(30), content_type="application/json")

    assert response.status_code == 400
    assert "name" in response.json()  # the serializer's field error: the parser let it pass


@pytest.mark.parametrize(
    "body",
    [
        {"code": "SPA\u0000", "name": "Spa"},
        {"code": "SPA", "name": "Spa", "\u0000": 1},
        {"code": "SPA", "notes": {"deep": ["ok", "\u0000"]}},
    ],
    ids=["in a value", "in a key", "nested"],
)
def test_nul_in_a_json_body_is_400(api_client_for, staff, body):
    client = api_client_for(staff["operator"])

    response = client.post(
        "/api/v1/benefits/",
        json.dumps(body),
        content_type="application/json",
        HTTP_ACCEPT_LANGUAGE="en",
    )

    assert_json_400(response, "nul_character")
    assert "NUL" in response.json()["detail"]


def test_nul_in_a_json_patch_is_400(api_client_for, staff):
    client = api_client_for(staff["operator"])

    benefit = BenefitFactory(name="Lounge")

    response = client.patch(
        f"/api/v1/benefits/{benefit.pk}/", '{"name": "x\\u0000"}', content_type="application/json"
    )

    assert_json_400(response, "nul_character")


def test_amounts_are_still_read_as_decimals():
    data = JSONParser().parse(_Stream(b'{"amount": 0.29, "n": [1, {"x": 2.5}]}'))

    assert str(data["amount"]) == "0.29" and str(data["n"][1]["x"]) == "2.5"


class _Stream:
    def __init__(self, raw: bytes):
        self.raw = raw

    def read(self) -> bytes:
        return self.raw


def test_one_event_with_nul_is_refused_alone_and_the_rest_accepted(api_client_for, staff, member):
    client = api_client_for(staff["system"])
    good = event(member, event_id="ok-1")
    bad = {**event(member), "event_id": "bad\u00001"}

    response = client.post(
        "/api/v1/events/", json.dumps({"events": [good, bad]}), content_type="application/json"
    )

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["accepted"] == 1
    assert [rejected["index"] for rejected in body["rejected"]] == [1]


def test_a_deeply_nested_event_batch_is_refused_whole(api_client_for, staff, member):
    client = api_client_for(staff["system"])
    client.raise_request_exception = False
    body = '{"events": [' + "[" * 5_000 + "]" * 5_000 + "]}"

    response = client.post("/api/v1/events/", body, content_type="application/json")

    assert_json_400(response, "too_deeply_nested")
