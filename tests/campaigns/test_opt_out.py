"""Customers who opted out of personalised marketing (issue 7): a campaign targeting tiers,
lifecycle stages or segments offers them nothing — events do not advance its tasks and the
member centre does not list them — while tasks open to every member still count. Opting
back in restores the targeted tasks."""

from __future__ import annotations

from decimal import Decimal

import pytest

from campaigns.models import TaskCompletion, TaskProgress
from members.models import Member, PointsEntry, Tier
from members.services import member_marketing_opt_out_set
from portal.choices import Role
from tests.factories import CampaignFactory, MemberFactory, SegmentFactory, TaskFactory

from .conftest import event

pytestmark = pytest.mark.django_db


def _gold() -> Tier:
    return Tier.objects.get(scheme__code="DEFAULT_MADA", code="GOLD")


def _targeted_task(how: str):
    """A task of 100 points offered to ACTIVE GOLD members, targeted in the way `how` names."""
    if how == "campaign stages":
        return TaskFactory(campaign=CampaignFactory(target_stages=["ACTIVE"]))
    if how == "task stages":
        return TaskFactory(offered_stages=["ACTIVE"])
    task = TaskFactory()
    if how == "campaign tiers":
        task.campaign.target_tiers.add(_gold())
    elif how == "task tiers":
        task.offered_tiers.add(_gold())
    elif how == "segment":
        task.campaign.segments.add(
            SegmentFactory(rules=[{"field": "lifecycle_stage", "op": "in", "value": ["ACTIVE"]}])
        )
    else:  # pragma: no cover
        raise AssertionError(how)
    return task


def _customer(*, opted_out: bool) -> Member:
    return MemberFactory(lifecycle_stage="ACTIVE", tier=_gold(), marketing_opt_out=opted_out)


def _balance(member: Member) -> int:
    member.refresh_from_db()
    return member.points_balance


def _centre_task_ids(client, member) -> set[int]:
    response = client.get(f"/api/v1/members/{member.member_no}/")
    assert response.status_code == 200, response.content
    return {task["task_id"] for task in response.json()["tasks"]}


TARGETING = ["campaign stages", "task stages", "campaign tiers", "task tiers", "segment"]


@pytest.mark.parametrize("how", TARGETING)
def test_a_targeted_task_is_not_advanced_nor_rewarded_for_an_opted_out_member(post_events, how):
    task = _targeted_task(how)
    opted_out, opted_in = _customer(opted_out=True), _customer(opted_out=False)

    body = post_events(event(opted_out), event(opted_in)).json()

    assert body["accepted"] == 2  # the event itself is still taken (activity, lifecycle)
    assert not TaskProgress.objects.filter(member=opted_out).exists()
    assert not TaskCompletion.objects.filter(member=opted_out).exists()
    assert not PointsEntry.objects.filter(member=opted_out).exists()
    assert (_balance(opted_out), _balance(opted_in)) == (0, 100)
    assert TaskCompletion.objects.get(member=opted_in, task=task).reward_status == "REWARDED"


def test_a_task_open_to_every_member_still_counts_for_an_opted_out_member(post_events):
    open_to_all = TaskFactory(reward_points=30)
    targeted = _targeted_task("task stages")
    member = _customer(opted_out=True)

    post_events(event(member))

    assert list(TaskProgress.objects.filter(member=member).values_list("task_id", flat=True)) == [
        open_to_all.pk
    ]
    assert not TaskProgress.objects.filter(task=targeted).exists()
    assert _balance(member) == 30


def test_progress_begun_before_opting_out_stops_there(post_events, make_user):
    manager = make_user(Role.ACCOUNT_MANAGER)
    task = TaskFactory(offered_stages=["ACTIVE"], target=Decimal("3"))
    member = MemberFactory(lifecycle_stage="ACTIVE", account_manager=manager)
    post_events(event(member))

    member_marketing_opt_out_set(member=member, opted_out=True, actor=manager, reason="")
    post_events(event(member), event(member))

    progress = TaskProgress.objects.get(member=member, task=task)
    assert (progress.value, progress.steps_reached) == (1, 0)
    assert _balance(member) == 0


def test_the_member_centre_hides_targeted_tasks_from_an_opted_out_member(
    post_events, api_client_for, system_user
):
    open_to_all = TaskFactory()
    targeted = _targeted_task("segment")
    member = _customer(opted_out=True)
    post_events(event(member))

    shown = _centre_task_ids(api_client_for(system_user), member)

    assert shown == {open_to_all.pk}
    assert targeted.pk not in shown


def test_the_member_centre_hides_a_targeted_task_even_with_progress(
    post_events, api_client_for, system_user
):
    targeted = TaskFactory(offered_stages=["ACTIVE"], target=Decimal("3"))
    member = _customer(opted_out=False)
    post_events(event(member))
    Member.objects.filter(pk=member.pk).update(marketing_opt_out=True)

    assert targeted.pk not in _centre_task_ids(api_client_for(system_user), member)


def test_opting_back_in_restores_the_targeted_tasks(
    post_events, api_client_for, system_user, make_user
):
    manager = make_user(Role.ACCOUNT_MANAGER)
    targeted = _targeted_task("campaign tiers")
    member = MemberFactory(
        lifecycle_stage="ACTIVE", tier=_gold(), account_manager=manager, marketing_opt_out=True
    )
    client = api_client_for(system_user)
    post_events(event(member))
    assert targeted.pk not in _centre_task_ids(client, member)

    member_marketing_opt_out_set(member=member, opted_out=False, actor=manager, reason="回访")
    post_events(event(member))

    assert targeted.pk in _centre_task_ids(client, member)
    assert TaskCompletion.objects.get(member=member, task=targeted).reward_status == "REWARDED"
    assert _balance(member) == 100


def test_the_customer_page_lists_only_untargeted_tasks_for_an_opted_out_member(client, make_user):
    manager = make_user(Role.ACCOUNT_MANAGER)
    TaskFactory(name="人人可做")
    TaskFactory(name="仅限活跃客户", offered_stages=["ACTIVE"])
    member = MemberFactory(
        lifecycle_stage="ACTIVE",
        account_manager=manager,
        branch=manager.branch,
        marketing_opt_out=True,
    )
    client.force_login(manager)

    page = client.get(f"/members/{member.member_no}/").content.decode()

    assert "人人可做" in page
    assert "仅限活跃客户" not in page
