"""Members API (API.md, "REST API"): the member centre and the scoped, masked staff list."""

from __future__ import annotations

import json
from datetime import date, timedelta

import pytest
from django.http import HttpRequest
from rest_framework.test import APIClient

from benefits.choices import GrantSource
from benefits.services import grant_create
from members.choices import LifecycleStage
from members.models import Tier
from portal.choices import Role
from portal.clock import today_in_shanghai
from tests.factories import BenefitFactory, MemberFactory

CENTRE_KEYS = {
    "member_no",
    "tier",
    "tier_since",
    "lifecycle_stage",
    "points_balance",
    "next_tier",
    "protection",
    "tasks",
    "grants",
}
PHONE = "13812345678"
PHONE_MASKED = "138****5678"
ID_NUMBER = "110101199003071234"
ID_MASKED = "110101**********34"
NAME = "王小明"


def _tier(code: str) -> Tier:
    return Tier.objects.get(scheme__code="DEFAULT_MADA", code=code)


def _all_keys(value) -> set[str]:
    if isinstance(value, dict):
        return set(value) | set().union(*(_all_keys(v) for v in value.values()))
    if isinstance(value, list):
        return set().union(*(_all_keys(v) for v in value))
    return set()


@pytest.fixture
def staff(make_user):
    return {
        "am_a": make_user(Role.ACCOUNT_MANAGER, username="am_a", branch="B01S1"),
        "am_b": make_user(Role.ACCOUNT_MANAGER, username="am_b", branch="B02S1"),
        "am_c": make_user(Role.ACCOUNT_MANAGER, username="am_c", branch="B01"),
        "bm_b01": make_user(Role.BRANCH_MANAGER, username="bm_b01", branch="B01"),
        "operator": make_user(Role.PRODUCT_OPERATOR, username="operator", branch="HO"),
        "auditor": make_user(Role.RISK_AUDITOR, username="auditor", branch="HO"),
        "approver": make_user(Role.BUDGET_APPROVER, username="approver", branch="HO"),
        "mobile": make_user(Role.SYSTEM, username="mobile_banking", branch="HO"),
    }


@pytest.fixture
def members(org, staff):
    """A's customer in B01S1 (known personal data), one at branch B01 itself, B's customer
    in B02S1."""
    return {
        "a": MemberFactory(
            member_no="M0000123",
            name=NAME,
            phone=PHONE,
            id_number=ID_NUMBER,
            branch=org["B01S1"],
            account_manager=staff["am_a"],
            lifecycle_stage=LifecycleStage.ACTIVE,
            tier=_tier("GOLD"),
            tier_since=date(2026, 11, 1),
            tier_basis=38_000_00,  # 38,000.00 CNY of MADA, in fen
            tier_months_below=1,
            points_balance=1200,
        ),
        "b01": MemberFactory(
            member_no="M0000200",
            name="李四",
            branch=org["B01"],
            account_manager=staff["am_c"],
            lifecycle_stage=LifecycleStage.DORMANT,
        ),
        "b": MemberFactory(
            member_no="M0000300",
            name="张三",
            phone="13900001111",
            id_number="31010119851212567X",
            branch=org["B02S1"],
            account_manager=staff["am_b"],
            lifecycle_stage=LifecycleStage.DORMANT,
        ),
    }


def _centre(client, member_no: str):
    return client.get(f"/api/v1/members/{member_no}/")


def _member_nos(response) -> set[str]:
    return {row["member_no"] for row in response.json()["results"]}


# --- member centre ------------------------------------------------------------------------


def test_member_centre_has_exactly_the_keys_of_api_md(api_client_for, staff, members):
    response = _centre(api_client_for(staff["mobile"]), "M0000123")

    assert response.status_code == 200
    assert set(response.json()) == CENTRE_KEYS


def test_member_centre_matches_the_worked_example_of_api_md(api_client_for, staff, members):
    body = _centre(api_client_for(staff["mobile"]), "M0000123").json()

    assert body["member_no"] == "M0000123"
    assert body["tier"] == {"code": "GOLD", "name": "金卡", "rank": 1}
    assert body["tier_since"] == "2026-11-01"
    assert body["lifecycle_stage"] == "ACTIVE"
    assert body["points_balance"] == 1200
    assert body["next_tier"] == {"code": "SUNFLOWER", "measure": "MADA", "missing": "462000.00"}
    assert body["protection"] == {
        "months_below": 1,
        "downgrade_after_months": 3,
        "keep_tier_needs": "50000.00",
        "missing": "12000.00",
    }
    assert body["tasks"] == []
    assert body["grants"] == []


def test_member_centre_at_the_top_tier_has_no_next_tier_and_no_protection(
    api_client_for, staff, org
):
    MemberFactory(
        member_no="M0000999",
        branch=org["B01S1"],
        tier=_tier("PRIVATE"),
        tier_since=date(2026, 1, 1),
        tier_basis=12_000_000_00,
    )

    body = _centre(api_client_for(staff["mobile"]), "M0000999").json()

    assert body["tier"]["code"] == "PRIVATE"
    assert body["next_tier"] is None
    assert body["protection"] is None


def test_member_centre_lists_grants_in_the_documented_shape(api_client_for, staff, members):
    benefit = BenefitFactory(code="LOUNGE")
    expires = today_in_shanghai() + timedelta(days=30)
    grant = grant_create(
        member=members["a"],
        benefit=benefit,
        budget=benefit.budget,
        source=GrantSource.MANUAL,
        idempotency_key="api-test-lounge",
        expires_on=expires,
    )

    body = _centre(api_client_for(staff["mobile"]), "M0000123").json()

    assert body["grants"] == [
        {
            "id": grant.pk,
            "benefit": "LOUNGE",
            "status": grant.status,
            "expires_at": expires.isoformat(),
        }
    ]


def test_member_centre_contains_no_personal_data(api_client_for, staff, members):
    response = _centre(api_client_for(staff["mobile"]), "M0000123")
    text = response.content.decode()

    body = response.json()
    outside_tier = {key: value for key, value in body.items() if key != "tier"}

    assert set(body["tier"]) == {"code", "name", "rank"}  # the tier's name, not the member's
    assert not _all_keys(outside_tier) & {"name", "phone", "id_number", "birth_date"}
    for value in (NAME, PHONE, ID_NUMBER, PHONE_MASKED, ID_MASKED, "19900307"):
        assert value not in text


def test_member_centre_without_credentials_is_401_with_detail_and_code(members):
    response = APIClient().get("/api/v1/members/M0000123/")

    assert response.status_code == 401
    assert set(response.json()) == {"detail", "code"}
    assert response.json()["code"] == "not_authenticated"
    assert response["WWW-Authenticate"].startswith("Token")


def test_member_centre_with_an_unknown_token_is_401(members):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token " + "0" * 40)

    response = client.get("/api/v1/members/M0000123/")

    assert response.status_code == 401
    assert set(response.json()) == {"detail", "code"}
    assert response.json()["code"] == "authentication_failed"


def test_member_centre_accepts_token_authentication(api_client_for, staff, members):
    assert _centre(api_client_for(staff["am_a"]), "M0000123").status_code == 200


def test_member_centre_accepts_the_browser_session(client, staff, members):
    # django-axes needs the request that carries the credentials (it throttles per IP).
    assert client.login(request=HttpRequest(), username="am_a", password="Pass-word-123")

    response = _centre(client, "M0000123")

    assert response.status_code == 200
    assert response.json()["member_no"] == "M0000123"


def test_member_centre_of_an_unknown_member_is_404(api_client_for, staff, members):
    response = _centre(api_client_for(staff["operator"]), "M9999999")

    assert response.status_code == 404
    assert set(response.json()) == {"detail", "code"}
    assert response.json()["code"] == "not_found"


def test_account_manager_asking_for_another_managers_customer_gets_404_not_data(
    api_client_for, staff, members
):
    """IDOR: the answer for someone else's customer is the answer for no customer at all."""
    client = api_client_for(staff["am_a"])

    response = _centre(client, "M0000300")
    unknown = _centre(client, "M9999999")

    assert response.status_code == 404
    assert response.json() == unknown.json()
    assert "M0000300" not in response.content.decode()


def test_branch_manager_cannot_read_a_member_centre_of_another_branch(
    api_client_for, staff, members
):
    client = api_client_for(staff["bm_b01"])

    assert _centre(client, "M0000123").status_code == 200  # own sub-branch
    assert _centre(client, "M0000200").status_code == 200  # own branch
    assert _centre(client, "M0000300").status_code == 404  # the other branch


def test_system_integration_reads_any_member_centre(api_client_for, staff, members):
    client = api_client_for(staff["mobile"])

    assert _centre(client, "M0000123").status_code == 200
    assert _centre(client, "M0000300").status_code == 200


def test_role_without_the_member_centre_action_is_403(api_client_for, staff, members):
    response = _centre(api_client_for(staff["approver"]), "M0000123")

    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"


# --- member list --------------------------------------------------------------------------


def test_system_integration_may_not_list_members(api_client_for, staff, members):
    response = api_client_for(staff["mobile"]).get("/api/v1/members/")

    assert response.status_code == 403
    assert set(response.json()) == {"detail", "code"}
    assert response.json()["code"] == "permission_denied"


def test_member_list_without_credentials_is_401(members):
    response = APIClient().get("/api/v1/members/")

    assert response.status_code == 401
    assert set(response.json()) == {"detail", "code"}


def test_member_list_is_paginated(api_client_for, staff, org):
    MemberFactory.create_batch(55, branch=org["B01S1"], account_manager=staff["am_a"])
    client = api_client_for(staff["operator"])

    first = client.get("/api/v1/members/").json()
    second = client.get("/api/v1/members/", {"page": 2}).json()

    assert set(first) == {"count", "next", "previous", "results"}
    assert first["count"] == 55
    assert len(first["results"]) == 50
    assert first["next"] is not None
    assert first["previous"] is None
    assert len(second["results"]) == 5
    assert second["next"] is None
    assert not _member_nos_of(first) & _member_nos_of(second)


def _member_nos_of(body) -> set[str]:
    return {row["member_no"] for row in body["results"]}


def test_account_manager_lists_only_own_customers(api_client_for, staff, members):
    response = api_client_for(staff["am_a"]).get("/api/v1/members/")

    assert response.status_code == 200
    assert _member_nos(response) == {"M0000123"}
    assert response.json()["count"] == 1


def test_branch_manager_lists_branch_and_sub_branches_but_not_the_other_branch(
    api_client_for, staff, members
):
    response = api_client_for(staff["bm_b01"]).get("/api/v1/members/")

    assert _member_nos(response) == {"M0000123", "M0000200"}


def test_product_operator_lists_every_member(api_client_for, staff, members):
    response = api_client_for(staff["operator"]).get("/api/v1/members/")

    assert _member_nos(response) == {"M0000123", "M0000200", "M0000300"}


def test_member_list_masks_phone_and_id_number(api_client_for, staff, members):
    response = api_client_for(staff["operator"]).get("/api/v1/members/")
    rows = {row["member_no"]: row for row in response.json()["results"]}

    assert rows["M0000123"]["phone"] == PHONE_MASKED
    assert rows["M0000123"]["id_number"] == ID_MASKED
    assert rows["M0000300"]["phone"] == "139****1111"
    assert rows["M0000300"]["id_number"] == "310101**********7X"
    text = response.content.decode()
    for raw in (PHONE, ID_NUMBER, "13900001111", "31010119851212567X"):
        assert raw not in text


def test_member_list_row_shape(api_client_for, staff, members):
    response = api_client_for(staff["am_a"]).get("/api/v1/members/")
    (row,) = response.json()["results"]

    assert row["member_no"] == "M0000123"
    assert row["branch"] == "B01S1"
    assert row["account_manager"] == "am_a"
    assert row["tier"] == {"code": "GOLD", "name": "金卡", "rank": 1}
    assert row["lifecycle_stage"] == "ACTIVE"


def test_member_list_filters_by_stage(api_client_for, staff, members):
    response = api_client_for(staff["operator"]).get("/api/v1/members/", {"stage": "DORMANT"})

    assert _member_nos(response) == {"M0000200", "M0000300"}


def test_member_list_filters_by_tier(api_client_for, staff, members):
    response = api_client_for(staff["operator"]).get("/api/v1/members/", {"tier": "GOLD"})

    assert _member_nos(response) == {"M0000123"}


def test_member_list_branch_filter_includes_sub_branches(api_client_for, staff, members):
    client = api_client_for(staff["operator"])

    assert _member_nos(client.get("/api/v1/members/", {"branch": "B01"})) == {
        "M0000123",
        "M0000200",
    }
    assert _member_nos(client.get("/api/v1/members/", {"branch": "B01S1"})) == {"M0000123"}
    assert _member_nos(client.get("/api/v1/members/", {"branch": "B02"})) == {"M0000300"}
    assert _member_nos(client.get("/api/v1/members/", {"branch": "HO"})) == {
        "M0000123",
        "M0000200",
        "M0000300",
    }


def test_member_list_branch_filter_stays_inside_the_callers_scope(api_client_for, staff, members):
    response = api_client_for(staff["am_a"]).get("/api/v1/members/", {"branch": "B02"})

    assert _member_nos(response) == set()


def test_member_list_branch_code_is_not_a_prefix_match(api_client_for, staff, org, members):
    from tests.factories import BranchFactory

    b0 = BranchFactory(code="B0", name="B0 分行", parent=org["HO"])
    MemberFactory(member_no="M0000400", branch=b0, account_manager=staff["am_a"])

    response = api_client_for(staff["operator"]).get("/api/v1/members/", {"branch": "B0"})

    assert _member_nos(response) == {"M0000400"}


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ("M0000123", {"M0000123"}),
        ("m0000123", {"M0000123"}),  # member_no, any case
        ("小明", {"M0000123"}),  # part of the name
        ("张三", {"M0000300"}),
        (ID_NUMBER, {"M0000123"}),  # the exact ID number
        ("31010119851212567x", {"M0000300"}),  # ID check letter in lower case
        (ID_NUMBER[:10], set()),  # never a partial ID number
        (PHONE, {"M0000123"}),  # the exact mobile number
        ("M00001", set()),  # member_no matches exactly
    ],
)
def test_member_list_search(api_client_for, staff, members, q, expected):
    # a risk auditor may reveal, so may search by ID or phone number (audited, throttled:
    # tests/members/test_personal_search.py)
    response = api_client_for(staff["auditor"]).get("/api/v1/members/", {"q": q})

    assert response.status_code == 200
    assert _member_nos(response) == expected


def test_search_by_id_number_matches_without_showing_it(api_client_for, staff, members):
    response = api_client_for(staff["auditor"]).get("/api/v1/members/", {"q": ID_NUMBER})

    (row,) = response.json()["results"]
    assert row["id_number"] == ID_MASKED
    assert ID_NUMBER not in response.content.decode()
    assert ID_NUMBER not in json.dumps(response.json()["next"])


def test_search_stays_inside_the_callers_scope(api_client_for, staff, members):
    response = api_client_for(staff["am_a"]).get("/api/v1/members/", {"q": "31010119851212567X"})

    assert _member_nos(response) == set()


# --- OpenAPI ------------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["/api/schema/", "/api/docs/"])
def test_schema_and_docs_need_a_login(client, db, url):
    response = client.get(url)

    assert response.status_code in (401, 403)


@pytest.mark.parametrize("url", ["/api/schema/", "/api/docs/"])
def test_schema_and_docs_are_served_to_a_logged_in_user(client, staff, url):
    client.force_login(staff["am_a"])

    response = client.get(url)

    assert response.status_code == 200


def test_schema_documents_the_member_endpoints(client, staff):
    client.force_login(staff["operator"])

    text = client.get("/api/schema/").content.decode()

    assert "/api/v1/members/{member_no}/:" in text
    assert "/api/v1/members/:" in text
