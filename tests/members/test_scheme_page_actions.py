"""A tier scheme is simulated and proposed from its own page, not only as bulk actions from
the list, and nobody is offered an action they may not take (issue: "the edit page has no
button; an operator is offered approve/reject actions that then fail")."""

from __future__ import annotations

import pytest

from members.models import TierScheme
from members.services import tier_scheme_request_activation
from portal.choices import Role
from portal.models import ApprovalRequest


@pytest.fixture
def staff(make_user):
    return {
        "operator": make_user(Role.PRODUCT_OPERATOR, username="operator", branch="HO"),
        "operator2": make_user(Role.PRODUCT_OPERATOR, username="operator2", branch="HO"),
        "approver": make_user(Role.BUDGET_APPROVER, username="approver", branch="HO"),
    }


def page(scheme) -> str:
    return f"/admin/members/tierscheme/{scheme.pk}/change/"


def action(scheme, name: str) -> str:
    return f"/admin/members/tierscheme/{scheme.pk}/{name}/"


@pytest.fixture
def draft(db):
    return TierScheme.objects.get(code="DEFAULT_POINTS")


def test_an_operator_simulates_and_proposes_a_draft_from_its_page(client, staff, draft):
    client.force_login(staff["operator"])

    html = client.get(page(draft)).content.decode()
    simulated = client.get(action(draft, "simulate"))
    proposed = client.post(action(draft, "propose"), {"_form_submitted": "on"})

    assert action(draft, "simulate") in html and action(draft, "propose") in html
    assert action(draft, "approve") not in html  # nothing waits yet
    assert simulated.status_code == 302 and f"/schemes/{draft.pk}/simulate" in simulated["Location"]
    assert proposed.status_code == 302
    assert ApprovalRequest.objects.filter(kind="TIER_SCHEME_ACTIVATION", status="PENDING").exists()


def test_a_budget_approver_sees_the_scheme_without_actions_it_cannot_take(client, staff, draft):
    client.force_login(staff["approver"])

    html = client.get(page(draft)).content.decode()

    for name in ("simulate", "propose", "approve", "reject"):
        assert action(draft, name) not in html, name


def test_a_pending_scheme_offers_approve_only_to_a_colleague_who_may_decide(client, staff, draft):
    tier_scheme_request_activation(scheme=draft, actor=staff["operator"])
    draft.refresh_from_db()

    client.force_login(staff["operator2"])
    colleague = client.get(page(draft)).content.decode()
    client.force_login(staff["approver"])
    approver = client.get(page(draft)).content.decode()

    client.force_login(staff["operator"])
    maker = client.get(page(draft)).content.decode()

    assert action(draft, "approve") in colleague and action(draft, "propose") not in colleague
    # the maker is not offered a decision on their own proposal
    assert action(draft, "approve") not in maker and action(draft, "reject") not in maker
    assert action(draft, "approve") not in approver  # not an approving role for schemes
