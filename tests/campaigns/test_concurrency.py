"""Events posted at the same moment by several clients: an event is taken once, a reward is
issued once, a budget is never overspent and a cap is never passed (PostgreSQL row locks and
unique constraints; DESIGN.md "campaigns", "Budget"; API.md "POST /api/v1/events/").

Each thread is its own client with its own database connection; the world is created with
factories and committed before the threads start.
"""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.db.models import Sum
from rest_framework.test import APIClient

from benefits.models import BudgetEntry
from campaigns.models import MemberEvent, TaskCapCounter, TaskCompletion, TaskProgress
from members.models import Member, PointsEntry
from portal.choices import ApiScope, Role
from portal.services import api_token_issue
from tests.factories import BudgetFactory, CampaignFactory, MemberFactory, TaskFactory

from .conftest import event, today

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

THREADS = 12


@pytest.fixture
def token(make_user) -> str:
    user = make_user(Role.SYSTEM, username="mobile_banking", branch="HO")
    return api_token_issue(
        user=user, name="Mobile banking", scopes=[ApiScope.EVENTS_WRITE], actor=None
    )[1]


def _race(token: str, batches: list[list[dict]]) -> dict:
    """POST every batch from its own thread (own client, own connection), all released at
    once by a barrier; returns the response bodies and any error a thread met."""
    barrier = threading.Barrier(len(batches))
    outcome: dict = {"bodies": [], "errors": []}
    lock = threading.Lock()

    def worker(batch: list[dict]) -> None:
        try:
            client = APIClient()
            client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
            barrier.wait(timeout=30)
            response = client.post("/api/v1/events/", {"events": batch}, format="json")
            with lock:
                if response.status_code == 200:
                    outcome["bodies"].append(response.json())
                else:
                    outcome["errors"].append((response.status_code, response.content[:300]))
        except Exception as exc:  # a crash in a thread must fail the test, not vanish
            with lock:
                outcome["errors"].append(repr(exc))
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(batch,)) for batch in batches]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a thread hung"
    return outcome


def _ledger_points(**filters) -> int:
    return PointsEntry.objects.filter(**filters).aggregate(s=Sum("points"))["s"] or 0


def _budget_entries(budget) -> int:
    return BudgetEntry.objects.filter(budget=budget).aggregate(s=Sum("amount_fen"))["s"] or 0


def _statuses(task) -> list[str]:
    return sorted(TaskCompletion.objects.filter(task=task).values_list("reward_status", flat=True))


@pytest.mark.parametrize("clients", [2, 8])
def test_the_same_event_id_posted_at_the_same_moment_is_taken_and_rewarded_once(token, clients):
    member = MemberFactory()
    task = TaskFactory(reward_points=100)
    same = event(member, event_id="app-race-1")

    outcome = _race(token, [[same] for _ in range(clients)])

    assert outcome["errors"] == []
    assert sum(body["accepted"] for body in outcome["bodies"]) == 1
    assert sum(body["duplicates"] for body in outcome["bodies"]) == clients - 1
    assert MemberEvent.objects.filter(event_id="app-race-1").count() == 1
    assert TaskProgress.objects.get(member=member, task=task).value == 1
    assert _statuses(task) == ["REWARDED"]
    member.refresh_from_db()
    assert member.points_balance == _ledger_points(member=member) == 100
    task.campaign.budget.refresh_from_db()
    assert task.campaign.budget.consumed_fen == 100


def test_a_budget_with_room_for_n_rewards_pays_exactly_n_under_concurrency(token):
    room_for = 5
    budget = BudgetFactory(amount_fen=room_for * 100)  # 100 points at 1 fen each
    task = TaskFactory(campaign=CampaignFactory(budget=budget), reward_points=100)
    members = [MemberFactory() for _ in range(THREADS)]

    outcome = _race(token, [[event(member)] for member in members])

    assert outcome["errors"] == []
    assert sum(body["accepted"] for body in outcome["bodies"]) == THREADS
    statuses = _statuses(task)
    assert statuses.count("REWARDED") == room_for
    assert statuses.count("REFUSED_BUDGET") == THREADS - room_for
    assert len(statuses) == THREADS
    budget.refresh_from_db()
    assert budget.consumed_fen == budget.amount_fen == _budget_entries(budget)
    assert _ledger_points() == room_for * 100
    balances = Member.objects.filter(pk__in=[m.pk for m in members]).values_list(
        "points_balance", flat=True
    )
    assert sum(balances) == room_for * 100
    refused = TaskCompletion.objects.filter(task=task, reward_status="REFUSED_BUDGET")
    assert all(c.refusal_reason and c.points_entry_id is None for c in refused)


def test_the_per_period_cap_is_never_passed_under_concurrency(token):
    cap = 3
    task = TaskFactory(recurrence="DAILY", reward_points=100, max_rewards_per_period=cap)
    members = [MemberFactory() for _ in range(THREADS)]

    outcome = _race(token, [[event(member)] for member in members])

    assert outcome["errors"] == []
    statuses = _statuses(task)
    assert statuses.count("REWARDED") == cap
    assert statuses.count("REFUSED_CAP") == THREADS - cap
    key = today().isoformat()
    assert TaskCapCounter.objects.get(task=task, scope=f"period:{key}").used == cap
    assert _ledger_points() == cap * 100
    task.campaign.budget.refresh_from_db()
    assert task.campaign.budget.consumed_fen == cap * 100


def test_the_per_member_cap_is_never_passed_under_concurrency(token):
    cap, days = 2, 6
    task = TaskFactory(recurrence="DAILY", reward_points=100, max_rewards_per_member=cap)
    member = MemberFactory()

    outcome = _race(token, [[event(member, day=today() - timedelta(days=n))] for n in range(days)])

    assert outcome["errors"] == []
    statuses = _statuses(task)
    assert statuses.count("REWARDED") == cap
    assert statuses.count("REFUSED_CAP") == days - cap
    assert TaskCapCounter.objects.get(task=task, scope=f"member:{member.pk}").used == cap
    member.refresh_from_db()
    assert member.points_balance == _ledger_points(member=member) == cap * 100


def test_different_events_of_one_member_posted_at_once_all_count_towards_the_same_period(
    token,
):
    """Each batch starts the member's period (no progress row yet): the batches that lose the
    race to insert it add their events to the winner's row, none is lost or counted twice."""
    members = [MemberFactory() for _ in range(3)]
    task = TaskFactory(target=THREADS, reward_points=100)  # every thread's event is needed

    outcome = _race(
        token, [[event(member, event_id=f"app-{n}-{member.pk}") for member in members]
                for n in range(THREADS)],
    )  # fmt: skip

    assert outcome["errors"] == []
    assert sum(body["accepted"] for body in outcome["bodies"]) == THREADS * len(members)
    for member in members:
        assert TaskProgress.objects.get(member=member, task=task).value == THREADS
        member.refresh_from_db()
        assert member.points_balance == _ledger_points(member=member) == 100
    assert _statuses(task) == ["REWARDED"] * len(members)
