"""Rewards of a whole batch at once: what the bank notices when one request of mobile
banking completes many tasks — every reward paid exactly once, a budget that runs out in
the middle of a batch paying exactly what fits, parent budgets charged too, and a batch
costing the same few statements whatever its size (set-based, not a query per event)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.models import Sum
from django.test.utils import CaptureQueriesContext

from benefits.models import BudgetEntry
from campaigns.models import EventBatch, TaskCompletion
from members.models import PointsEntry
from tests.factories import BudgetFactory, CampaignFactory, MemberFactory, TaskFactory

from .conftest import event

pytestmark = pytest.mark.django_db


def ledger_matches_balances(members) -> None:
    for member in members:
        member.refresh_from_db()
        ledger = PointsEntry.objects.filter(member=member).aggregate(s=Sum("points"))["s"] or 0
        assert member.points_balance == ledger, member.member_no


def consumed(budget) -> int:
    budget.refresh_from_db()
    entries = BudgetEntry.objects.filter(budget=budget).aggregate(s=Sum("amount_fen"))["s"] or 0
    assert budget.consumed_fen == entries, "budget consumption drifted from its entries"
    return budget.consumed_fen


def test_one_batch_completing_many_tasks_rewards_every_member_once(post_events):
    budget = BudgetFactory(amount_fen=1_000_000)
    campaign = CampaignFactory(budget=budget)
    sign_in = TaskFactory(campaign=campaign, reward_points=100)
    login = TaskFactory(campaign=campaign, event_type="LOGIN", reward_points=30)
    members = [MemberFactory() for _ in range(40)]

    body = post_events(
        *[event(m) for m in members], *[event(m, type="LOGIN") for m in members]
    ).json()

    assert (body["accepted"], body["duplicates"], body["rejected"]) == (80, 0, [])
    assert TaskCompletion.objects.filter(task=sign_in, reward_status="REWARDED").count() == 40
    assert TaskCompletion.objects.filter(task=login, reward_status="REWARDED").count() == 40
    ledger_matches_balances(members)
    assert {m.points_balance for m in members} == {130}
    assert consumed(budget) == 40 * 130  # 1 fen a point
    # the budget's ledger: one entry per task of the batch, saying how many rewards it pays
    entries = sorted(BudgetEntry.objects.filter(budget=budget).values_list("amount_fen", "source"))
    assert [amount for amount, _ in entries] == [40 * 30, 40 * 100]
    assert all(source.endswith("points ×40") for _, source in entries), entries
    assert EventBatch.objects.get().completions == 80
    first = TaskCompletion.objects.filter(task=sign_in).first()
    assert (first.reward_points, first.cost_fen) == (100, 100)
    assert first.points_entry.points == 100
    assert first.points_entry.member_id == first.member_id


def test_a_budget_running_out_inside_one_batch_pays_exactly_the_rewards_that_fit(post_events):
    budget = BudgetFactory(amount_fen=250)  # room for two rewards of 100 points
    task = TaskFactory(campaign=CampaignFactory(budget=budget), reward_points=100)
    members = [MemberFactory() for _ in range(5)]

    post_events(*[event(m) for m in members])

    statuses = sorted(TaskCompletion.objects.filter(task=task).values_list("reward_status"))
    assert statuses == [("REFUSED_BUDGET",)] * 3 + [("REWARDED",)] * 2
    refused = TaskCompletion.objects.filter(task=task, reward_status="REFUSED_BUDGET")
    assert all(budget.code in c.refusal_reason for c in refused)
    assert all(c.points_entry_id is None and c.cost_fen == 0 for c in refused)
    assert PointsEntry.objects.count() == 2
    ledger_matches_balances(members)
    assert consumed(budget) == 200


def test_points_rewards_of_a_batch_also_charge_the_parent_budget(post_events):
    parent = BudgetFactory(amount_fen=10_000)
    child = BudgetFactory(amount_fen=10_000, parent=parent)
    other = BudgetFactory(amount_fen=10_000, parent=parent)
    TaskFactory(campaign=CampaignFactory(budget=child), reward_points=100)
    TaskFactory(campaign=CampaignFactory(budget=other), reward_points=50)
    members = [MemberFactory() for _ in range(4)]

    post_events(*[event(m) for m in members])

    assert (consumed(child), consumed(other), consumed(parent)) == (400, 200, 600)


def test_a_parent_budget_without_room_refuses_the_rewards_its_child_could_pay(post_events):
    parent = BudgetFactory(amount_fen=150)
    child = BudgetFactory(amount_fen=10_000, parent=parent)
    task = TaskFactory(campaign=CampaignFactory(budget=child), reward_points=100)
    members = [MemberFactory() for _ in range(3)]

    post_events(*[event(m) for m in members])

    rewarded = TaskCompletion.objects.filter(task=task, reward_status="REWARDED").count()
    assert rewarded == 1
    assert (consumed(child), consumed(parent)) == (100, 100)
    ledger_matches_balances(members)


def test_replaying_a_rewarding_batch_pays_nothing_more(post_events):
    budget = BudgetFactory(amount_fen=1_000_000)
    TaskFactory(campaign=CampaignFactory(budget=budget), reward_points=100)
    members = [MemberFactory() for _ in range(10)]
    events = [event(m) for m in members]

    post_events(*events)
    again = post_events(*events).json()

    assert (again["accepted"], again["duplicates"]) == (0, 10)
    assert PointsEntry.objects.count() == 10
    assert consumed(budget) == 1_000
    ledger_matches_balances(members)


def _statements(post_events, size: int) -> int:
    members = [MemberFactory() for _ in range(size)]
    with CaptureQueriesContext(connection) as queries:
        post_events(*[event(m) for m in members], *[event(m, type="LOGIN") for m in members])
    assert TaskCompletion.objects.filter(member__in=members, reward_status="REWARDED").count() == (
        2 * size
    )
    return len(queries)


def test_a_batch_costs_the_same_statements_whatever_its_size(post_events):
    campaign = CampaignFactory(budget=BudgetFactory(amount_fen=1_000_000))
    TaskFactory(campaign=campaign, recurrence="DAILY", reward_points=10)
    TaskFactory(campaign=campaign, recurrence="DAILY", event_type="LOGIN", reward_points=5)

    post_events(event(MemberFactory()))  # warm-up: the client's first request does more
    small = _statements(post_events, 5)
    large = _statements(post_events, 100)

    assert large == small, f"{small} statements for 10 events, {large} for 200"
