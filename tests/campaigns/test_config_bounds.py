"""A task's numbers are bounded, and a campaign's window lies inside its budget's period,
whichever door the configuration comes through (`campaigns.services.config`): the API and
the admin answer with the field named in the user's language, nothing is stored, and a
campaign that breaks the rule cannot be sent to approval.

The issue's cases: 9,999,999,999 points for a daily sign-in; a campaign running
2027-01-05…06-30 on a budget that ends 2026-12-31.
"""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from campaigns.models import Campaign, Task
from campaigns.services import CampaignStateError, campaign_submit
from portal.choices import Role
from portal.models import ApprovalRequest
from tests.factories import BudgetFactory, CampaignFactory, TaskFactory

from .conftest import today

TASKS = "/api/v1/tasks/"
CAMPAIGNS = "/api/v1/campaigns/"


@pytest.fixture
def operator(make_user):
    return make_user(Role.PRODUCT_OPERATOR, username="operator", branch="HO")


@pytest.fixture
def year_budget(db):
    year = today().year
    return BudgetFactory(
        code=f"CAMPAIGN-{year}", period_start=date(year, 1, 1), period_end=date(year, 12, 31)
    )


def task_body(campaign_code: str, **kw) -> dict:
    return {
        "campaign": campaign_code,
        "name": "每日签到",
        "event_type": "SIGN_IN",
        "measure": "COUNT",
        "target": "1",
        "recurrence": "DAILY",
        "reward_points": 5,
        **kw,
    }


@pytest.mark.parametrize(
    ("changes", "field", "says_en", "says_zh"),
    [
        ({"reward_points": 9_999_999_999}, "reward_points", "0 to 100,000", "0 至 100,000"),
        ({"reward_points": 100_001}, "reward_points", "0 to 100,000", "0 至 100,000"),
        ({"max_rewards_per_member": 10_001}, "max_rewards_per_member", "1 to 10,000", "整数"),
        ({"target": "10001"}, "target", "10,000", "10,000"),
        (
            {"measure": "AMOUNT_SUM", "target": "100000000.01"},
            "target",
            "CNY 100,000,000.00",
            "¥100,000,000.00",
        ),
        (
            {"min_event_amount": "100000000.01"},
            "min_event_amount",
            "CNY 100,000,000.00",
            "金额",
        ),
    ],
    ids=["points-huge", "points-over", "cap-over", "count-target", "amount-target", "minimum"],
)
@pytest.mark.parametrize("language", ["en", "zh-hans"])
def test_a_task_number_out_of_bounds_is_a_400_naming_the_field_in_the_users_language(
    api_client_for, operator, year_budget, changes, field, says_en, says_zh, language
):
    campaign = CampaignFactory(
        created_by=operator, status="DRAFT", budget=year_budget, department=year_budget.department
    )

    response = api_client_for(operator).post(
        TASKS, task_body(campaign.code, **changes), format="json", HTTP_ACCEPT_LANGUAGE=language
    )

    assert response.status_code == 400, response.content
    errors = response.json()
    assert field in errors, errors
    assert (says_en if language == "en" else says_zh) in str(errors[field]), errors
    assert not Task.objects.exists()


def test_a_ladder_step_with_too_many_points_is_refused(api_client_for, operator, year_budget):
    campaign = CampaignFactory(created_by=operator, status="DRAFT", budget=year_budget)
    steps = [
        {"step_no": 1, "target": "1000.00", "reward_points": 10},
        {"step_no": 2, "target": "5000.00", "reward_points": 9_999_999},
    ]

    body = task_body(campaign.code, measure="AMOUNT_SUM", reward_points=0, steps=steps)
    del body["target"]

    response = api_client_for(operator).post(
        TASKS,
        body,
        format="json",
        HTTP_ACCEPT_LANGUAGE="en",
    )

    assert response.status_code == 400
    assert "0 to 100,000" in str(response.json()["steps"])  # the second step, by its index


def test_a_campaign_window_beyond_its_budget_is_refused_on_create(
    api_client_for, operator, year_budget
):
    year = year_budget.period_end.year
    body = {
        "code": "C-NEXT-YEAR",
        "name": "新年活动",
        "department": year_budget.department.code,
        "budget": year_budget.code,
        "starts_on": date(year + 1, 1, 5).isoformat(),
        "ends_on": date(year + 1, 6, 30).isoformat(),
    }

    response = api_client_for(operator).post(
        CAMPAIGNS, body, format="json", HTTP_ACCEPT_LANGUAGE="en"
    )

    assert response.status_code == 400
    assert year_budget.code in str(response.json()["ends_on"])
    assert not Campaign.objects.exists()


def test_a_draft_whose_window_outgrew_its_budget_cannot_be_sent_to_approval(operator, year_budget):
    campaign = CampaignFactory(
        created_by=operator,
        status="DRAFT",
        budget=year_budget,
        starts_on=today() + timedelta(days=1),
        ends_on=year_budget.period_end + timedelta(days=1),
    )
    TaskFactory(campaign=campaign)

    with pytest.raises(CampaignStateError) as refused:
        campaign_submit(campaign=campaign, actor=operator)

    assert year_budget.code in str(refused.value)
    assert not ApprovalRequest.objects.exists()
