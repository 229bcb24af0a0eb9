"""Task rewards follow the business date's budget (DESIGN.md "Budgets"): a campaign set up on
last season's budget rewards today's events from the budget of its line open today — points
and benefit rewards alike — and leaves the closed one untouched."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db.models import Sum

from benefits.models import BenefitGrant, Budget, BudgetEntry
from campaigns.models import TaskCompletion
from tests.factories import (
    BenefitFactory,
    BudgetFactory,
    CampaignFactory,
    MemberFactory,
    TaskFactory,
)

from .conftest import event, today

COST = 12_000  # 120.00 CNY


def consumed(budget: Budget) -> tuple[int, int]:
    budget.refresh_from_db()
    ledger = BudgetEntry.objects.filter(budget=budget).aggregate(s=Sum("amount_fen"))["s"] or 0
    return budget.consumed_fen, ledger


@pytest.fixture
def campaign_line(db):
    """A campaign set up on last season's budget (line CAMP) and the line's budget of now."""
    now = today()
    closed = BudgetFactory(
        code="CAMP-OLD",
        line="CAMP",
        amount_fen=1_000_00,
        period_start=now - timedelta(days=200),
        period_end=now - timedelta(days=100),
    )
    open_now = BudgetFactory(
        code="CAMP-NOW",
        line="CAMP",
        amount_fen=1_000_00,
        period_start=now - timedelta(days=99),
        period_end=now + timedelta(days=100),
        department=closed.department,
    )
    return closed, open_now, CampaignFactory(budget=closed)


def test_task_rewards_today_are_charged_to_todays_budget_of_the_campaigns_line(
    campaign_line, post_events
):
    closed, open_now, campaign = campaign_line
    points = TaskFactory(campaign=campaign, reward_points=100)
    lounge = BenefitFactory(code="LOUNGE", unit_cost_fen=COST, budget=closed)
    voucher = TaskFactory(
        campaign=campaign, event_type="LOGIN", reward_points=0, reward_benefit=lounge
    )
    member = MemberFactory()

    post_events(event(member), event(member, type="LOGIN"))

    rewarded = TaskCompletion.objects.filter(reward_status="REWARDED")
    assert sorted(rewarded.values_list("task_id", flat=True)) == sorted([points.pk, voucher.pk])
    assert BenefitGrant.objects.get().budget == open_now
    assert consumed(closed) == (0, 0)
    assert consumed(open_now) == (100 + COST, 100 + COST)
