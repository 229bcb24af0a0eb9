"""The customer page shows an account manager the member's tasks, the rewards issued or
refused (and why), and the points ledger."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from portal.choices import Role
from tests.factories import BudgetFactory, CampaignFactory, MemberFactory, TaskFactory

from .conftest import event, today

pytestmark = pytest.mark.django_db


def test_customer_page_shows_tasks_refused_reward_and_points(client, make_user, post_events):
    manager = make_user(Role.ACCOUNT_MANAGER)
    member = MemberFactory(account_manager=manager, branch=manager.branch)
    rich = TaskFactory(name="每日签到", recurrence="DAILY", reward_points=5)
    poor = TaskFactory(
        name="基金申购",
        event_type="FUND_PURCHASE",
        measure="AMOUNT_SUM",
        target="1000",
        reward_points=300,
        campaign=CampaignFactory(budget=BudgetFactory(amount_fen=100)),  # room for 100 points
    )
    TaskFactory(name="刷卡五笔", event_type="CARD_SPEND", target="5", campaign=rich.campaign)
    post_events(event(member), event(member, type="FUND_PURCHASE", amount="1500.00"))
    client.force_login(manager)

    page = client.get(f"/members/{member.member_no}/").content.decode()

    assert "刷卡五笔" in page and "0</td>" in page  # offered, no progress yet
    assert "Refused: budget exhausted" in page or "预算不足未发放" in page
    assert poor.campaign.budget.code in page  # the reason names the exhausted budget
    assert "Points (balance 5)" in page or "积分（余额 5）" in page


def test_customer_page_query_count_does_not_grow_with_rewards(client, make_user, post_events):
    manager = make_user(Role.ACCOUNT_MANAGER)
    member = MemberFactory(account_manager=manager, branch=manager.branch)
    TaskFactory(recurrence="DAILY", reward_points=5)
    client.force_login(manager)
    client.get(f"/members/{member.member_no}/")
    with CaptureQueriesContext(connection) as few:
        client.get(f"/members/{member.member_no}/")
    post_events(*[event(member, day=today() - timedelta(days=n)) for n in range(10)])
    with CaptureQueriesContext(connection) as many:
        client.get(f"/members/{member.member_no}/")
    assert len(many) == len(few)
