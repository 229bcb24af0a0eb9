"""POST /api/v1/events/ as mobile banking uses it (API.md): each event accepted, a duplicate
or refused on its own; progress and rewards follow."""

from __future__ import annotations

from datetime import timedelta

import pytest

from campaigns.models import EventBatch, MemberEvent, TaskCompletion, TaskProgress
from members.models import MemberActivityDay, MemberMonthlyStat, PointsEntry
from portal.choices import Role
from tests.factories import MemberFactory, TaskFactory

from .conftest import at, event, today

pytestmark = pytest.mark.django_db


def test_accepted_event_completes_a_task_and_earns_points_once(post_events):
    member = MemberFactory()
    task = TaskFactory(reward_points=100)

    body = post_events(event(member, event_id="app-1")).json()

    assert body == {"accepted": 1, "duplicates": 0, "rejected": []}
    progress = TaskProgress.objects.get(member=member, task=task)
    assert (progress.period_key, progress.value, progress.steps_reached) == ("once", 1, 1)
    member.refresh_from_db()
    assert member.points_balance == 100
    assert PointsEntry.objects.get(member=member).points == 100
    completion = TaskCompletion.objects.get(member=member, task=task)
    assert completion.reward_status == "REWARDED"
    assert completion.cost_fen == 100  # 100 points at 1 fen each
    task.campaign.budget.refresh_from_db()
    assert task.campaign.budget.consumed_fen == 100


def test_replaying_a_batch_three_times_gives_the_same_state(post_events):
    member = MemberFactory()
    TaskFactory(reward_points=50, recurrence="DAILY")
    batch = [event(member, event_id=f"r-{n}", day=today() - timedelta(days=n)) for n in range(3)]

    first = post_events(*batch).json()
    state = (
        list(TaskProgress.objects.values_list("period_key", "value").order_by("period_key")),
        list(PointsEntry.objects.values_list("points", flat=True)),
    )
    replays = [post_events(*batch).json() for _ in range(2)]

    assert first["accepted"] == 3
    assert replays == [{"accepted": 0, "duplicates": 3, "rejected": []}] * 2
    assert state == (
        list(TaskProgress.objects.values_list("period_key", "value").order_by("period_key")),
        list(PointsEntry.objects.values_list("points", flat=True)),
    )
    member.refresh_from_db()
    assert member.points_balance == 150
    assert MemberEvent.objects.count() == 3


def test_each_bad_event_is_refused_with_its_reason_and_the_rest_accepted(post_events):
    member = MemberFactory()
    good = event(member)
    body = post_events(
        good,
        event("M404", event_id="x-unknown"),
        {**event(member), "amount": "-5"},
        {**event(member), "amount": "12.345"},
        {**event(member), "occurred_at": "2026-11-26T10:15:00"},
        {**event(member), "occurred_at": "yesterday"},
        {**event(member), "type": "TELEPORT"},
        {
            **event(member),
            "occurred_at": (today() + timedelta(days=2)).isoformat() + "T10:00:00+08:00",
        },
        "not an object",
    ).json()

    assert body["accepted"] == 1 and body["duplicates"] == 0
    errors = {r["index"]: r["errors"] for r in body["rejected"]}
    assert errors[1] == {"member_no": ["unknown member"]}
    assert body["rejected"][0]["event_id"] == "x-unknown"
    assert "amount" in errors[2] and "negative" in errors[2]["amount"][0]
    assert "amount" in errors[3]
    assert "offset" in errors[4]["occurred_at"][0]
    assert "occurred_at" in errors[5]
    assert "type" in errors[6]
    assert "future" in errors[7]["occurred_at"][0]
    assert "non_field_errors" in errors[8]
    batch = EventBatch.objects.get()
    assert (batch.received, batch.accepted, batch.duplicates, batch.rejected) == (9, 1, 0, 8)


def test_same_event_id_twice_in_one_batch_counts_once(post_events):
    member = MemberFactory()
    body = post_events(event(member, event_id="dup"), event(member, event_id="dup")).json()
    assert body == {"accepted": 1, "duplicates": 1, "rejected": []}


def test_more_than_1000_events_is_413_and_nothing_is_stored(post_events):
    member = MemberFactory()
    response = post_events(*[event(member) for _ in range(1001)], expect=413)
    assert response.json()["code"] == "batch_too_large"
    assert not MemberEvent.objects.exists()


@pytest.mark.parametrize(
    "body", [{"event": []}, [], {"events": "x"}, {"events": {"a": 1}}], ids=str
)
def test_malformed_envelope_is_400(api_client_for, system_user, body):
    response = api_client_for(system_user).post("/api/v1/events/", body, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "malformed_batch"


def test_invalid_json_is_400(api_client_for, system_user):
    response = api_client_for(system_user).post(
        "/api/v1/events/", "{not json", content_type="application/json"
    )
    assert response.status_code == 400


def test_amount_as_json_number_is_exact(api_client_for, system_user):
    member = MemberFactory()
    response = api_client_for(system_user).post(
        "/api/v1/events/",
        '{"events": [{"event_id": "n1", "member_no": "MNO", "type": "FUND_PURCHASE", '
        '"amount": 0.29, "occurred_at": "WHEN"}]}'.replace("MNO", member.member_no).replace(
            "WHEN", at(today())
        ),
        content_type="application/json",
    )
    assert response.json()["accepted"] == 1
    assert MemberEvent.objects.get().amount_fen == 29


@pytest.mark.parametrize("role", [r for r in Role if r != Role.SYSTEM])
def test_only_system_clients_may_post_events(api_client_for, make_user, role):
    response = api_client_for(make_user(role)).post(
        "/api/v1/events/", {"events": []}, format="json"
    )
    assert response.status_code == 403


def test_anonymous_is_refused(client):
    assert client.post("/api/v1/events/", {"events": []}).status_code in (401, 403)


def test_events_are_activity_for_lifecycle_and_tier_indicators(post_events):
    member = MemberFactory()
    day = today() - timedelta(days=1)
    post_events(
        event(member, type="FUND_PURCHASE", amount="20000.00", day=day),
        event(member, type="PAYROLL", amount="8000.50", day=day),
        event(member, type="LOGIN", day=day, hour=11),
    )
    member.refresh_from_db()
    assert member.last_active_on == day
    assert MemberActivityDay.objects.filter(member=member).count() == 1
    stat = MemberMonthlyStat.objects.get(member=member, month=day.replace(day=1))
    assert (stat.fund_purchase_fen, stat.payroll_fen, stat.active_days) == (2_000_000, 800_050, 1)
    # an older event does not move last activity back
    post_events(event(member, day=day - timedelta(days=3)))
    member.refresh_from_db()
    assert member.last_active_on == day
