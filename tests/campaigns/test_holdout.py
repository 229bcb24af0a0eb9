"""Holdout groups (issue 18): a campaign holds out a stable, random share of its audience.
Held-out members never progress, are never rewarded, never see the campaign's tasks in the
member centre and stay held out across nights and re-runs; two campaigns' holdouts are
independent; the share is kept to within a percentage point; the launch approval shows the
audience sizes."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError

from campaigns.holdout import DEFAULT_SHARE, SPACE, Holdout, bucket, holdout_key_new
from campaigns.impact import campaign_launch_impact
from campaigns.models import Campaign, CampaignAudience, TaskCompletion, TaskProgress
from campaigns.services import campaign_periods_roll
from campaigns.services.changes import LaunchedCampaignFixed, campaign_change
from campaigns.services.config import campaign_create, campaign_update
from campaigns.terms import campaign_launch_terms
from members.models import Member, PointsEntry
from portal.choices import Role
from tests.factories import BudgetFactory, CampaignFactory, MemberFactory, TaskFactory

from .conftest import event, today

pytestmark = pytest.mark.django_db


def _members(count: int, *, stage: str = "ACTIVE") -> list[Member]:
    return [MemberFactory(lifecycle_stage=stage) for _ in range(count)]


def _held_out(campaign: Campaign, members: list[Member]) -> set[str]:
    holdout = Holdout.of(campaign)
    return {m.member_no for m in members if holdout and holdout.holds_out(m.member_no)}


# --- the rule -----------------------------------------------------------------------------


def test_the_share_held_out_is_within_one_point_on_100000_members():
    numbers = [f"M{n:07d}" for n in range(1, 100_001)]
    for share in (5, 10, 50):
        holdout = Holdout(holdout_key_new(), share)
        held = sum(holdout.holds_out(number) for number in numbers)
        assert abs(held / len(numbers) * 100 - share) <= 1.0, (share, held)


def test_holdouts_of_two_campaigns_are_independent():
    numbers = [f"M{n:07d}" for n in range(1, 40_001)]
    first, second = Holdout(holdout_key_new(), 50), Holdout(holdout_key_new(), 50)
    both = sum(first.holds_out(n) and second.holds_out(n) for n in numbers)
    only_first = sum(first.holds_out(n) and not second.holds_out(n) for n in numbers)
    # independent halves: a quarter in both, a quarter in the first only (±1.5 points)
    assert abs(both / len(numbers) - 0.25) < 0.015
    assert abs(only_first / len(numbers) - 0.25) < 0.015


def test_the_database_and_python_draw_the_same_members():
    members = _members(300)
    campaign = CampaignFactory(holdout_share=30)
    holdout = Holdout.of(campaign)
    in_sql = set(Member.objects.filter(holdout.condition()).values_list("member_no", flat=True))
    assert in_sql == _held_out(campaign, members)
    assert 30 < len(in_sql) < 150  # about 90 of 300
    for member in members[:20]:  # the bucket itself, not only the comparison
        assert 0 <= bucket(campaign.holdout_key, member.member_no) < SPACE


def test_a_new_campaign_holds_out_ten_percent_by_default_with_its_own_key(make_user):
    operator = make_user(Role.PRODUCT_OPERATOR, branch="HO")
    budget = BudgetFactory()
    data = {
        "department": budget.department,
        "budget": budget,
        "starts_on": today() + timedelta(days=3),
        "ends_on": today() + timedelta(days=33),
    }
    one = campaign_create(actor=operator, data={"code": "HOLD-1", "name": "一", **data})
    two = campaign_create(actor=operator, data={"code": "HOLD-2", "name": "二", **data})
    assert one.holdout_share == DEFAULT_SHARE == 10
    assert one.follow_up_days == 30
    assert len(one.holdout_key) == 32 and one.holdout_key != two.holdout_key


@pytest.mark.parametrize(
    ("field", "value"),
    [("holdout_share", 51), ("holdout_share", -1), ("holdout_share", "ten"),
     ("follow_up_days", 181), ("follow_up_days", -3)],
)  # fmt: skip
def test_a_share_or_follow_up_out_of_bounds_is_refused_by_field(make_user, field, value):
    operator = make_user(Role.PRODUCT_OPERATOR, branch="HO")
    campaign = CampaignFactory(status="DRAFT", created_by=operator)
    with pytest.raises(ValidationError) as refused:
        campaign_update(campaign=campaign, actor=operator, changes={field: value})
    assert field in refused.value.message_dict


# --- the events and the member centre ----------------------------------------------------


def test_held_out_members_never_progress_and_are_never_rewarded(post_events):
    members = _members(60)
    task = TaskFactory(campaign=CampaignFactory(holdout_share=50), reward_points=100)
    held = _held_out(task.campaign, members)
    assert 10 < len(held) < 50

    post_events(*[event(m) for m in members])
    post_events(*[event(m, day=today() - timedelta(days=1)) for m in members])  # again

    progressed = set(
        TaskProgress.objects.filter(task=task).values_list("member__member_no", flat=True)
    )
    rewarded = set(
        TaskCompletion.objects.filter(task=task).values_list("member__member_no", flat=True)
    )
    everyone = {m.member_no for m in members}
    assert progressed == rewarded == everyone - held
    assert not PointsEntry.objects.filter(member__member_no__in=held).exists()


def test_held_out_members_do_not_see_the_tasks_in_the_member_centre(api_client_for, system_user):
    members = _members(40)
    held_task = TaskFactory(campaign=CampaignFactory(holdout_share=50))
    open_task = TaskFactory(campaign=CampaignFactory(holdout_share=0))
    held = _held_out(held_task.campaign, members)
    client = api_client_for(system_user)
    for member in members:
        tasks = client.get(f"/api/v1/members/{member.member_no}/").json()["tasks"]
        ids = {task["task_id"] for task in tasks}
        assert open_task.pk in ids
        assert (held_task.pk in ids) is (member.member_no not in held), member.member_no


def test_the_audience_is_recorded_once_on_the_eve_of_the_window_and_stays(post_events):
    starts_on = today() + timedelta(days=1)
    members = _members(50) + _members(30, stage="DORMANT")
    campaign = CampaignFactory(
        holdout_share=40, status="SCHEDULED", starts_on=starts_on, ends_on=starts_on + timedelta(30)
    )
    campaign_periods_roll(business_date=starts_on - timedelta(days=2))
    assert not CampaignAudience.objects.filter(campaign=campaign).exists()  # not yet

    counts = campaign_periods_roll(business_date=starts_on - timedelta(days=1))
    assert counts["audiences_recorded"] == 1
    recorded = {a.member.member_no: a for a in CampaignAudience.objects.filter(campaign=campaign)}
    assert set(recorded) == {m.member_no for m in members}
    assert {n for n, a in recorded.items() if a.held_out} == _held_out(campaign, members)
    assert sum(a.stage_at_launch == "DORMANT" for a in recorded.values()) == 30

    # the members change stage, the night runs again and the next: nothing is re-drawn
    Member.objects.update(lifecycle_stage="ACTIVE")
    for day in (starts_on - timedelta(days=1), starts_on, starts_on + timedelta(days=1)):
        assert campaign_periods_roll(business_date=day)["audiences_recorded"] == 0
    again = {a.member.member_no: a for a in CampaignAudience.objects.filter(campaign=campaign)}
    assert {n: (a.held_out, a.stage_at_launch) for n, a in again.items()} == {
        n: (a.held_out, a.stage_at_launch) for n, a in recorded.items()
    }
    campaign.refresh_from_db()
    assert campaign.audience_recorded_on == starts_on - timedelta(days=1)


def test_a_launch_approval_shows_the_holdout_and_the_audience_sizes():
    members = _members(200)
    campaign = CampaignFactory(status="DRAFT", holdout_share=20)
    TaskFactory(campaign=campaign)
    held = len(_held_out(campaign, members))
    lines = dict(campaign_launch_impact(campaign=campaign))
    assert lines["Audience now"] == "200 members"
    assert lines["Held out (20%, not offered the tasks)"] == f"{held} members"
    assert lines["Offered the campaign"] == f"{200 - held} members"
    terms = campaign_launch_terms(campaign=campaign)
    assert terms["holdout"].startswith("20% of the audience held out at random")


@pytest.fixture(autouse=True)
def english():
    from django.utils import translation

    with translation.override("en"):
        yield


def test_the_api_takes_and_bounds_the_holdout_of_a_new_campaign(api_client_for, make_user):
    operator = make_user(Role.PRODUCT_OPERATOR, branch="HO")
    budget = BudgetFactory()
    client = api_client_for(operator)
    body = {
        "code": "API-HOLD",
        "name": "接口活动",
        "department": budget.department.code,
        "budget": budget.code,
        "starts_on": (today() + timedelta(days=1)).isoformat(),
        "ends_on": (today() + timedelta(days=40)).isoformat(),
    }
    refused = client.post("/api/v1/campaigns/", {**body, "holdout_share": 75}, format="json")
    assert refused.status_code == 400 and "holdout_share" in refused.json()
    created = client.post(
        "/api/v1/campaigns/", {**body, "holdout_share": 25, "follow_up_days": 60}, format="json"
    )
    assert created.status_code == 201, created.content
    assert created.json()["holdout_share"] == 25 and created.json()["follow_up_days"] == 60
    assert "holdout_key" not in created.json()  # the key never leaves the bank
    plain = client.post("/api/v1/campaigns/", {**body, "code": "API-PLAIN"}, format="json")
    assert plain.json()["holdout_share"] == 10


@pytest.mark.parametrize("field", ["holdout_share", "follow_up_days"])
def test_a_launched_campaigns_holdout_is_what_was_approved(make_user, field):
    operator = make_user(Role.PRODUCT_OPERATOR, branch="HO")
    campaign = CampaignFactory(holdout_share=10, status="ACTIVE", created_by=operator)
    with pytest.raises(LaunchedCampaignFixed):
        campaign_change(campaign=campaign, actor=operator, changes={field: 20})
    campaign.refresh_from_db()
    assert (campaign.holdout_share, campaign.follow_up_days) == (10, 30)
