"""Search by a full ID or phone number (security probe, finding 3): only roles that may
reveal personal data find a customer by it — on the customer list, in the admin and through
the API — and each such search is audited like a reveal (the number masked, never in
clear) and throttled; other roles search by member number and name only, and are told so.
"""

from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.conf import settings
from django.utils import timezone

from members.choices import LifecycleStage
from members.selectors import personal_number_parse, personal_number_q
from members.services import personal_search
from portal.choices import Role
from portal.models import AuditEntry
from portal.services import audit_record
from tests.factories import MemberFactory

PHONE = "13812345678"
PHONE_MASKED = "138****5678"
ID_NUMBER = "110101199003071234"
ID_MASKED = "110101**********34"
OTHER_PHONE = "13900001111"
OTHER_ID = "31010119851212567X"
UNKNOWN_ID = "110101199003079999"
RAW = (PHONE, ID_NUMBER, OTHER_PHONE, OTHER_ID)
ACTION = "member.search_personal"
REFUSAL = "Search by ID or phone number needs the reveal right; search by member number or name."
THROTTLED = "You may search again at"
MEMBERS_ADMIN = "/admin/members/member/"
API = "/api/v1/members/"

#: roles that see the customer list but may not reveal personal data
CANNOT_REVEAL = ["operator", "administrator"]
#: roles that may reveal, with the customer M0000123 in their scope
MAY_REVEAL = ["am_a", "bm_b01", "auditor"]
#: the ways a user types the numbers of M0000123
TYPED = [
    ID_NUMBER,
    PHONE,
    "+8613812345678",
    "138 1234 5678",
    "+86 138-1234-5678",
]


@pytest.fixture
def staff(make_user):
    return {
        "am_a": make_user(Role.ACCOUNT_MANAGER, username="am_a", branch="B01S1"),
        "am_b": make_user(Role.ACCOUNT_MANAGER, username="am_b", branch="B02S1"),
        "bm_b01": make_user(Role.BRANCH_MANAGER, username="bm_b01", branch="B01"),
        "operator": make_user(Role.PRODUCT_OPERATOR, username="operator", branch="HO"),
        "auditor": make_user(Role.RISK_AUDITOR, username="auditor", branch="HO"),
        "administrator": make_user(Role.ADMINISTRATOR, username="administrator", branch="HO"),
    }


@pytest.fixture
def members(org, staff):
    return {
        "a": MemberFactory(
            member_no="M0000123",
            name="王小明",
            phone=PHONE,
            id_number=ID_NUMBER,
            branch=org["B01S1"],
            account_manager=staff["am_a"],
            lifecycle_stage=LifecycleStage.ACTIVE,
        ),
        "b": MemberFactory(
            member_no="M0000300",
            name="张三",
            phone=OTHER_PHONE,
            id_number=OTHER_ID,
            branch=org["B02S1"],
            account_manager=staff["am_b"],
            lifecycle_stage=LifecycleStage.DORMANT,
        ),
    }


@pytest.fixture
def english(client):
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    return client


def _searches():
    return AuditEntry.objects.filter(action=ACTION)


def _use_up_the_limit(user) -> None:
    """The user's searches of the window, as earlier requests recorded them."""
    for _ in range(settings.PERSONAL_SEARCH_LIMIT):
        audit_record(actor=user, action=ACTION, changes={"field": "id_number", "q": ID_MASKED})


def _assert_no_raw_value(text: str) -> None:
    for raw in RAW:
        assert raw not in text


# --- the one comparison ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (ID_NUMBER, ("id_number", ID_NUMBER)),
        ("31010119851212567x", ("id_number", OTHER_ID)),
        ("110101 19900307 1234", ("id_number", ID_NUMBER)),
        ("110101900307123", ("id_number", "110101900307123")),  # 15 digits (before 1999)
        (PHONE, ("phone", PHONE)),
        ("+8613812345678", ("phone", PHONE)),
        ("008613812345678", ("phone", PHONE)),
        ("139 0000 1111", ("phone", OTHER_PHONE)),
        ("M0000123", None),
        ("王小明", None),
        (ID_NUMBER[:10], None),
        ("12812345678", None),
    ],
)
def test_personal_number_shapes(text, expected):
    assert personal_number_parse(text) == expected
    assert (personal_number_q(text) is None) == (expected is None)


# --- the customer list ----------------------------------------------------------------------


def _listed(response) -> set[str]:
    return {member.member_no for member in response.context["page"].object_list}


def _page_body(response) -> str:
    """The page's own part: the filters, the notice and the table."""
    html = response.content.decode()
    return html[html.index("<h1>") : html.index("</table>")]


@pytest.mark.parametrize("q", [*TYPED, OTHER_ID])
@pytest.mark.parametrize("username", CANNOT_REVEAL)
def test_list_without_the_reveal_right_finds_no_one_by_id_or_phone(
    english, staff, members, username, q
):
    english.force_login(staff[username])

    response = english.get("/members/", {"q": q})

    assert response.status_code == 200
    assert _listed(response) == set()
    html = response.content.decode()
    assert REFUSAL in html
    _assert_no_raw_value(html)
    assert not _searches().exists()


@pytest.mark.parametrize("username", CANNOT_REVEAL)
def test_list_without_the_reveal_right_answers_a_known_and_an_unknown_id_alike(
    client, staff, members, username
):
    client.force_login(staff[username])

    known = client.get("/members/", {"q": ID_NUMBER})
    unknown = client.get("/members/", {"q": UNKNOWN_ID})

    assert _listed(known) == _listed(unknown) == set()
    assert _page_body(known) == _page_body(unknown)


@pytest.mark.parametrize("username", CANNOT_REVEAL)
def test_list_without_the_reveal_right_still_searches_member_number_and_name(
    english, staff, members, username
):
    english.force_login(staff[username])

    by_number = english.get("/members/", {"q": "m0000123"})
    by_name = english.get("/members/", {"q": "小明"})

    assert _listed(by_number) == _listed(by_name) == {"M0000123"}
    assert REFUSAL not in by_number.content.decode()
    assert not _searches().exists()


@pytest.mark.parametrize("q", TYPED)
@pytest.mark.parametrize("username", MAY_REVEAL)
def test_list_with_the_reveal_right_finds_the_customer_and_audits_the_search(
    client, staff, members, username, q
):
    client.force_login(staff[username])

    response = client.get("/members/", {"q": q}, REMOTE_ADDR="10.1.2.3")

    assert _listed(response) == {"M0000123"}
    html = response.content.decode()
    _assert_no_raw_value(html)  # nor in the search box or any link
    assert "/members/export.csv" not in html
    (entry,) = _searches()
    assert entry.actor == staff[username]
    assert entry.object_id == str(members["a"].pk)
    assert entry.ip == "10.1.2.3"
    assert entry.changes["matches"] == 1
    assert entry.changes["members"] == ["M0000123"]
    assert entry.changes["q"] in (ID_MASKED, PHONE_MASKED)
    _assert_no_raw_value(str(entry.changes) + entry.reason + entry.object_repr)


def test_each_search_is_one_audit_entry_with_its_optional_reason_masked(client, staff, members):
    client.force_login(staff["am_a"])

    client.get("/members/", {"q": ID_NUMBER})
    client.get("/members/", {"q": PHONE, "reason": f"Customer called from {PHONE}"})

    first, second = _searches().order_by("id")
    assert first.reason == ""
    assert second.reason == f"Customer called from {PHONE_MASKED}"
    assert [first.changes["q"], second.changes["q"]] == [ID_MASKED, PHONE_MASKED]


def test_a_search_by_member_number_or_name_is_not_audited(client, staff, members):
    client.force_login(staff["auditor"])

    assert _listed(client.get("/members/", {"q": "M0000123"})) == {"M0000123"}
    assert _listed(client.get("/members/", {"q": "张三"})) == {"M0000300"}
    assert not _searches().exists()


def test_an_account_manager_cannot_find_another_managers_customer_by_id(client, staff, members):
    client.force_login(staff["am_a"])

    by_id = client.get("/members/", {"q": OTHER_ID})
    by_phone = client.get("/members/", {"q": OTHER_PHONE})

    assert _listed(by_id) == _listed(by_phone) == set()
    # still a search by a personal number: audited, and it counts towards the limit
    assert [entry.changes["matches"] for entry in _searches()] == [0, 0]


def test_the_21st_search_in_the_window_is_refused_on_the_list(english, staff, members):
    english.force_login(staff["bm_b01"])
    for _ in range(20):
        assert _listed(english.get("/members/", {"q": ID_NUMBER})) == {"M0000123"}

    refused = english.get("/members/", {"q": ID_NUMBER})

    assert refused.status_code == 200
    assert _listed(refused) == set()
    html = refused.content.decode()
    assert THROTTLED in html
    _assert_no_raw_value(html)
    assert _searches().count() == 20
    # member number and name still work
    assert _listed(english.get("/members/", {"q": "M0000123"})) == {"M0000123"}


def test_the_limit_counts_the_window_only(client, staff, members, monkeypatch):
    client.force_login(staff["auditor"])
    _use_up_the_limit(staff["auditor"])
    assert _listed(client.get("/members/", {"q": ID_NUMBER})) == set()

    # the service's clock only: the login session keeps the real one
    later = timezone.now() + timedelta(minutes=settings.PERSONAL_SEARCH_WINDOW_MINUTES + 1)
    clock = SimpleNamespace(now=lambda: later, localtime=timezone.localtime)
    monkeypatch.setattr(personal_search, "timezone", clock)

    assert _listed(client.get("/members/", {"q": ID_NUMBER})) == {"M0000123"}


def test_the_limit_is_per_user(client, staff, members):
    _use_up_the_limit(staff["auditor"])
    client.force_login(staff["bm_b01"])

    assert _listed(client.get("/members/", {"q": ID_NUMBER})) == {"M0000123"}


def test_the_limit_comes_from_settings(client, staff, members, settings):
    settings.PERSONAL_SEARCH_LIMIT = 2
    client.force_login(staff["auditor"])

    found = [_listed(client.get("/members/", {"q": ID_NUMBER})) for _ in range(3)]

    assert found == [{"M0000123"}, {"M0000123"}, set()]


def test_a_csv_export_with_an_id_number_matches_no_one(client, staff, members):
    client.force_login(staff["operator"])

    response = client.get("/members/export.csv", {"q": ID_NUMBER})
    body = b"".join(response.streaming_content).decode("utf-8-sig")

    assert "M0000123" not in body
    assert AuditEntry.objects.get(action="member.export").changes["rows"] == 0


# --- the admin ------------------------------------------------------------------------------


def _admin_listed(response) -> set[str]:
    return {member.member_no for member in response.context["cl"].result_list}


@pytest.mark.parametrize("q", [ID_NUMBER, PHONE, "+86 138 1234 5678"])
@pytest.mark.parametrize("username", CANNOT_REVEAL)
def test_admin_search_without_the_reveal_right_finds_no_one_by_id_or_phone(
    english, staff, members, username, q
):
    english.force_login(staff[username])

    response = english.get(MEMBERS_ADMIN, {"q": q})

    assert response.status_code == 200
    assert _admin_listed(response) == set()
    html = response.content.decode()
    assert REFUSAL in html
    _assert_no_raw_value(html)
    assert not _searches().exists()


@pytest.mark.parametrize("q", [ID_NUMBER, PHONE, "+86 138 1234 5678"])
def test_admin_search_with_the_reveal_right_finds_the_customer_audited(client, staff, members, q):
    client.force_login(staff["auditor"])

    response = client.get(MEMBERS_ADMIN, {"q": q})

    assert _admin_listed(response) == {"M0000123"}
    _assert_no_raw_value(response.content.decode())
    (entry,) = _searches()
    assert entry.actor == staff["auditor"]
    assert entry.changes["matches"] == 1
    _assert_no_raw_value(str(entry.changes))


def test_admin_search_past_the_limit_is_refused(english, staff, members):
    _use_up_the_limit(staff["auditor"])
    english.force_login(staff["auditor"])

    response = english.get(MEMBERS_ADMIN, {"q": ID_NUMBER})

    assert _admin_listed(response) == set()
    assert THROTTLED in response.content.decode()
    assert _searches().count() == 20


# --- the API --------------------------------------------------------------------------------


def _api_member_nos(response) -> set[str]:
    return {row["member_no"] for row in response.json()["results"]}


@pytest.mark.parametrize("q", [ID_NUMBER, PHONE, "+8613812345678", UNKNOWN_ID])
@pytest.mark.parametrize("username", CANNOT_REVEAL)
def test_api_search_without_the_reveal_right_is_refused(
    api_client_for, staff, members, username, q
):
    response = api_client_for(staff[username]).get(API, {"q": q}, HTTP_ACCEPT_LANGUAGE="en")

    assert response.status_code == 403
    assert response.json() == {"detail": REFUSAL, "code": "not_allowed"}
    assert not _searches().exists()


@pytest.mark.parametrize("q", TYPED)
@pytest.mark.parametrize("username", MAY_REVEAL)
def test_api_search_with_the_reveal_right_finds_the_customer_audited(
    api_client_for, staff, members, username, q
):
    response = api_client_for(staff[username]).get(API, {"q": q, "reason": "Call back"})

    assert response.status_code == 200
    assert _api_member_nos(response) == {"M0000123"}
    _assert_no_raw_value(response.content.decode())
    (entry,) = _searches()
    assert (entry.actor, entry.reason, entry.changes["matches"]) == (
        staff[username],
        "Call back",
        1,
    )
    _assert_no_raw_value(str(entry.changes))


def test_api_an_account_manager_cannot_find_another_managers_customer(
    api_client_for, staff, members
):
    response = api_client_for(staff["am_a"]).get(API, {"q": OTHER_ID})

    assert response.status_code == 200
    assert _api_member_nos(response) == set()
    assert _searches().get().changes["matches"] == 0


def test_api_search_past_the_limit_is_429_with_retry_after(api_client_for, staff, members):
    _use_up_the_limit(staff["am_a"])

    response = api_client_for(staff["am_a"]).get(API, {"q": ID_NUMBER}, HTTP_ACCEPT_LANGUAGE="en")

    assert response.status_code == 429
    body = response.json()
    assert body["code"] == "throttled"
    assert THROTTLED in body["detail"]
    assert "results" not in body
    window = settings.PERSONAL_SEARCH_WINDOW_MINUTES * 60
    assert 0 < int(response["Retry-After"]) <= window
    assert _searches().count() == 20
