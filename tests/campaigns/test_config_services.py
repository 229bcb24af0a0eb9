"""The configuration services (campaigns.services.config), called the way the API and the
admin call them: only an editable campaign changes and a refused edit writes nothing, a
rejected campaign goes back to draft, targets and ladders fit their measure, segments in
use are protected, and every write leaves an audit entry with its actor and its diff."""

from __future__ import annotations

import threading
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import translation

from campaigns.models import Campaign, Task, TaskStep
from campaigns.services import CampaignStateError, campaign_submit
from campaigns.services.config import (
    CampaignNotEditable,
    campaign_create,
    campaign_update,
    task_create,
    task_delete,
    task_targets_validate,
    task_update,
)
from members.models import Segment, Tier
from members.segments import segment_rules_validate
from members.services import SegmentInUse, segment_create, segment_delete, segment_update
from portal.choices import Role
from portal.models import AuditEntry
from tests.factories import (
    BenefitFactory,
    BudgetFactory,
    CampaignFactory,
    SegmentFactory,
    TaskFactory,
    TaskStepFactory,
)

from .conftest import today


@pytest.fixture(autouse=True)
def english():
    """The rules' messages are read here in English (their Chinese is the catalogue's)."""
    with translation.override("en"):
        yield


pytestmark = pytest.mark.django_db

NOT_EDITABLE = ["PENDING_APPROVAL", "SCHEDULED", "ACTIVE", "PAUSED", "ENDED"]
SIGN_IN = {
    "name": "Sign in 3 times",
    "event_type": "SIGN_IN",
    "measure": "COUNT",
    "target": Decimal("3"),
    "recurrence": "WEEKLY",
    "reward_points": 50,
}
LADDER = [
    {"step_no": 1, "target": Decimal("1000"), "reward_points": 10},
    {"step_no": 2, "target": Decimal("5000"), "reward_points": 60},
]


@pytest.fixture
def operator(make_user):
    return make_user(Role.PRODUCT_OPERATOR, username="operator", branch="HO")


@pytest.fixture
def budget(db):
    return BudgetFactory(code="RETAIL-2026")


def draft(author, budget, **kw) -> Campaign:
    kw.setdefault("starts_on", today() + timedelta(days=1))
    kw.setdefault("ends_on", today() + timedelta(days=60))
    kw.setdefault("status", "DRAFT")
    return CampaignFactory(created_by=author, budget=budget, department=budget.department, **kw)


def active_tier(code: str) -> Tier:
    return Tier.objects.get(scheme__status="ACTIVE", code=code)


# --- campaigns ----------------------------------------------------------------------------------


def test_a_new_campaign_is_a_draft_of_its_author_with_its_audit_entry(operator, budget):
    gold = active_tier("GOLD")
    segment = SegmentFactory(code="SEG-D")

    campaign = campaign_create(
        actor=operator,
        data={
            "code": "C-NEW",
            "name": "唤醒",
            "department": budget.department,
            "budget": budget,
            "starts_on": today() + timedelta(days=1),
            "ends_on": today() + timedelta(days=30),
            "target_tiers": [gold],
            "target_stages": ["DORMANT", "DORMANT", "AT_RISK"],
            "segments": [segment],
        },
    )

    campaign.refresh_from_db()
    assert (campaign.status, campaign.created_by) == ("DRAFT", operator)
    assert campaign.target_stages == ["DORMANT", "AT_RISK"]  # ticked twice is meant once
    assert list(campaign.target_tiers.all()) == [gold]
    assert list(campaign.segments.all()) == [segment]
    entry = AuditEntry.objects.get(action="campaign.create")
    assert entry.actor == operator
    assert entry.object_id == str(campaign.pk)
    assert entry.changes["code"] == [None, "C-NEW"]
    assert entry.changes["budget"] == [None, "RETAIL-2026"]
    assert entry.changes["target_tiers"] == [None, ["GOLD"]]
    assert entry.changes["status"] == [None, "DRAFT"]


def test_a_campaign_change_is_audited_with_the_actor_and_the_field_diff(operator, budget):
    campaign = draft(operator, budget, code="C-DIFF", name="旧名")
    new_end = campaign.ends_on + timedelta(days=10)

    campaign_update(
        campaign=campaign,
        actor=operator,
        changes={"name": "新名", "ends_on": new_end, "description": campaign.description},
    )

    entry = AuditEntry.objects.get(action="campaign.change")
    assert entry.actor == operator
    assert entry.changes == {
        "name": ["旧名", "新名"],
        "ends_on": [str(campaign.ends_on), str(new_end)],
    }
    campaign.refresh_from_db()
    assert (campaign.name, campaign.ends_on) == ("新名", new_end)


@pytest.mark.parametrize("status", NOT_EDITABLE)
def test_a_campaign_that_is_not_editable_is_refused_and_nothing_is_written(
    operator, budget, status
):
    campaign = draft(operator, budget, code="C-LOCKED", name="原名", status=status)

    with pytest.raises(CampaignNotEditable) as refused:
        campaign_update(campaign=campaign, actor=operator, changes={"name": "偷改"})

    assert isinstance(refused.value, CampaignStateError)  # the workflow's error family
    assert "C-LOCKED" in str(refused.value)
    campaign.refresh_from_db()
    assert (campaign.name, campaign.status) == ("原名", status)
    assert not AuditEntry.objects.exists()


def test_the_status_and_author_are_not_configuration(operator, budget):
    campaign = draft(operator, budget)

    with pytest.raises(ValueError, match="status"):
        campaign_update(campaign=campaign, actor=operator, changes={"status": "ACTIVE"})

    campaign.refresh_from_db()
    assert campaign.status == "DRAFT"


def test_editing_a_rejected_campaign_makes_it_a_draft_again(operator, budget):
    campaign = draft(operator, budget, status="REJECTED", name="被驳回")

    campaign_update(campaign=campaign, actor=operator, changes={"name": "改过"})

    campaign.refresh_from_db()
    assert (campaign.name, campaign.status) == ("改过", "DRAFT")
    reopen = AuditEntry.objects.get(action="campaign.reopen")
    assert reopen.actor == operator
    assert reopen.changes == {"status": ["REJECTED", "DRAFT"]}
    assert AuditEntry.objects.get(action="campaign.change").changes == {"name": ["被驳回", "改过"]}


def test_a_window_that_ends_before_it_starts_is_refused_on_ends_on(operator, budget):
    campaign = draft(operator, budget)

    with pytest.raises(ValidationError) as refused:
        campaign_update(
            campaign=campaign,
            actor=operator,
            changes={"ends_on": campaign.starts_on - timedelta(days=1)},
        )

    assert list(refused.value.message_dict) == ["ends_on"]
    assert "before it starts" in refused.value.message_dict["ends_on"][0]
    assert not AuditEntry.objects.exists()


def test_tiers_of_a_draft_scheme_and_unknown_stages_are_refused(operator, budget):
    star3 = Tier.objects.get(scheme__code="DEFAULT_POINTS", code="STAR3")
    campaign = draft(operator, budget)

    with pytest.raises(ValidationError) as refused:
        campaign_update(
            campaign=campaign,
            actor=operator,
            changes={"target_tiers": [star3], "target_stages": ["SLEEPY"]},
        )

    errors = refused.value.message_dict
    assert "STAR3" in errors["target_tiers"][0] and "active scheme" in errors["target_tiers"][0]
    assert "SLEEPY" in errors["target_stages"][0]
    assert not campaign.target_tiers.exists()


# --- tasks --------------------------------------------------------------------------------------


def test_a_task_is_added_with_its_ladder_and_audited(operator, budget):
    campaign = draft(operator, budget, code="C-T")
    lounge = BenefitFactory(code="LOUNGE")
    steps = [*LADDER, {"step_no": 3, "target": Decimal("20000"), "reward_benefit": lounge}]

    task = task_create(
        campaign=campaign,
        actor=operator,
        data={**SIGN_IN, "measure": "AMOUNT_SUM", "target": Decimal("1000")},
        steps=steps,
    )

    assert list(task.steps.values_list("step_no", "target", "reward_benefit")) == [
        (1, Decimal("1000"), None),
        (2, Decimal("5000"), None),
        (3, Decimal("20000"), lounge.pk),
    ]
    entry = AuditEntry.objects.get(action="task.create")
    assert entry.actor == operator
    assert entry.changes["campaign"] == [None, "C-T"]
    assert entry.changes["target"] == [None, "1000.00"]
    assert entry.changes["steps"][1][2] == {
        "step_no": 3,
        "target": "20000.00",
        "reward_points": 0,
        "reward_benefit": "LOUNGE",
    }


@pytest.mark.parametrize("status", NOT_EDITABLE)
def test_tasks_of_a_campaign_that_is_not_editable_are_refused_and_nothing_is_written(
    operator, budget, status
):
    campaign = draft(operator, budget, status=status)
    task = TaskFactory(campaign=campaign, reward_points=100)

    with pytest.raises(CampaignNotEditable):
        task_create(campaign=campaign, actor=operator, data=SIGN_IN)
    with pytest.raises(CampaignNotEditable):
        task_update(task=task, actor=operator, changes={"reward_points": 1}, steps=LADDER)
    with pytest.raises(CampaignNotEditable):
        task_delete(task=task, actor=operator)

    task.refresh_from_db()
    assert task.reward_points == 100
    assert Task.objects.count() == 1 and not TaskStep.objects.exists()
    assert not AuditEntry.objects.exists()


def test_a_task_cannot_move_to_a_campaign_that_is_not_editable(operator, budget):
    task = TaskFactory(campaign=draft(operator, budget, code="C-FROM"))
    submitted = draft(operator, budget, code="C-TO", status="PENDING_APPROVAL")

    with pytest.raises(CampaignNotEditable, match="C-TO"):
        task_update(task=task, actor=operator, changes={"campaign": submitted})

    task.refresh_from_db()
    assert task.campaign.code == "C-FROM"


def test_a_task_moved_between_drafts_reopens_a_rejected_destination(operator, budget):
    task = TaskFactory(campaign=draft(operator, budget, code="C-FROM"))
    rejected = draft(operator, budget, code="C-TO", status="REJECTED")

    task_update(task=task, actor=operator, changes={"campaign": rejected})

    task.refresh_from_db()
    rejected.refresh_from_db()
    assert (task.campaign, rejected.status) == (rejected, "DRAFT")
    assert AuditEntry.objects.get(action="task.change").changes == {"campaign": ["C-FROM", "C-TO"]}


def test_adding_changing_or_deleting_a_task_of_a_rejected_campaign_makes_it_a_draft(
    operator, budget
):
    campaign = draft(operator, budget, status="REJECTED")
    task = TaskFactory(campaign=campaign)

    for change in (
        lambda: task_create(campaign=campaign, actor=operator, data=SIGN_IN),
        lambda: task_update(task=task, actor=operator, changes={"reward_points": 20}),
        lambda: task_delete(task=task, actor=operator),
    ):
        Campaign.objects.filter(pk=campaign.pk).update(status="REJECTED")
        change()
        campaign.refresh_from_db()
        assert campaign.status == "DRAFT"

    assert AuditEntry.objects.filter(action="campaign.reopen").count() == 3


def test_a_deleted_task_is_audited_with_what_it_was(operator, budget):
    task = TaskFactory(campaign=draft(operator, budget), name="签到", reward_points=100)
    TaskStepFactory(task=task, step_no=1, target=Decimal("1"))

    task_delete(task=task, actor=operator)

    assert not Task.objects.exists()
    entry = AuditEntry.objects.get(action="task.delete")
    assert entry.actor == operator
    assert entry.changes["name"] == ["签到", None]
    assert entry.changes["reward_points"] == [100, None]
    assert entry.changes["steps"][0] == [
        {"step_no": 1, "target": "1.00", "reward_points": 10, "reward_benefit": None}
    ]


def test_updating_a_ladder_replaces_it_as_a_whole_and_the_diff_shows_it(operator, budget):
    task = TaskFactory(campaign=draft(operator, budget), measure="AMOUNT_SUM")
    TaskStepFactory(task=task, step_no=1, target=Decimal("10"))

    task_update(task=task, actor=operator, changes={}, steps=LADDER)

    assert list(task.steps.values_list("step_no", "target")) == [
        (1, Decimal("1000")),
        (2, Decimal("5000")),
    ]
    before, after = AuditEntry.objects.get(action="task.change").changes["steps"]
    assert [s["target"] for s in before] == ["10.00"]
    assert [s["target"] for s in after] == ["1000.00", "5000.00"]


# --- the target and ladder rules ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("measure", "target", "steps", "field", "says"),
    [
        ("COUNT", "2.5", [], "target", "whole number"),
        ("CONSECUTIVE_DAYS", "6.5", [], "target", "whole number"),
        ("AMOUNT_SUM", "0", [], "target", "more than 0"),
        ("AMOUNT_SUM", "-3", [], "target", "more than 0"),
        ("AMOUNT_SUM", "1", [(1, "5"), (2, "3")], "steps", "must be higher than step 1"),
        ("AMOUNT_SUM", "1", [(1, "5"), (2, "5")], "steps", "must be higher than step 1"),
        ("AMOUNT_SUM", "1", [(1, "1"), (3, "5")], "steps", "Number the steps 1 to n"),
        ("AMOUNT_SUM", "1", [(1, "1"), (1, "5")], "steps", "Number the steps 1 to n"),
        ("COUNT", "1", [(1, "1"), (2, "2.5")], "steps", "Step 2: The target must be a whole"),
        ("AMOUNT_SUM", "1", [(1, "0"), (2, "5")], "steps", "Step 1: The target must be more"),
    ],
    ids=[
        "non-whole-count",
        "non-whole-days",
        "zero",
        "negative",
        "falling-ladder",
        "flat-ladder",
        "gap-in-steps",
        "repeated-step",
        "non-whole-step",
        "zero-step",
    ],
)
def test_targets_and_ladders_that_do_not_fit_the_measure_are_refused_by_field(
    measure, target, steps, field, says
):
    with pytest.raises(ValidationError) as refused:
        task_targets_validate(
            measure=measure,
            target=Decimal(target),
            steps=[(no, Decimal(value)) for no, value in steps],
        )

    assert list(refused.value.message_dict) == [field]
    assert any(says in message for message in refused.value.message_dict[field])


@pytest.mark.parametrize(
    ("measure", "target", "steps"),
    [
        ("COUNT", "3", [(1, "1"), (2, "5"), (3, "10")]),
        ("CONSECUTIVE_DAYS", "7", []),
        ("AMOUNT_SUM", "0.10", [(2, "500.50"), (1, "100.25")]),
    ],
)
def test_targets_and_ladders_that_fit_pass(measure, target, steps):
    task_targets_validate(
        measure=measure,
        target=Decimal(target),
        steps=[(no, Decimal(value)) for no, value in steps],
    )


def test_a_task_whose_ladder_is_not_one_is_not_created(operator, budget):
    campaign = draft(operator, budget)

    with pytest.raises(ValidationError) as refused:
        task_create(
            campaign=campaign,
            actor=operator,
            data={**SIGN_IN, "offered_stages": ["SLEEPY"]},
            steps=[{"step_no": 1, "target": Decimal("5")}, {"step_no": 3, "target": Decimal("9")}],
        )

    assert set(refused.value.message_dict) == {"steps", "offered_stages"}
    assert not Task.objects.exists() and not AuditEntry.objects.exists()


def test_changing_the_measure_is_checked_against_the_saved_target_and_ladder(operator, budget):
    task = TaskFactory(
        campaign=draft(operator, budget), measure="AMOUNT_SUM", target=Decimal("99.50")
    )
    TaskStepFactory(task=task, step_no=1, target=Decimal("0.50"))

    with pytest.raises(ValidationError) as refused:
        task_update(task=task, actor=operator, changes={"measure": "COUNT"})

    assert set(refused.value.message_dict) == {"target", "steps"}
    task.refresh_from_db()
    assert task.measure == "AMOUNT_SUM"


# --- segments -----------------------------------------------------------------------------------

DORMANT = [{"field": "lifecycle_stage", "op": "in", "value": ["DORMANT"]}]


def test_a_segment_is_created_with_clean_rules_its_author_and_an_audit_entry(operator, budget):
    segment = segment_create(
        actor=operator,
        data={
            "code": "SEG-60",
            "name": "60+",
            "department": budget.department,
            "rules": [{"field": "age", "op": "gte", "value": "60"}],
        },
    )

    assert segment.rules == [{"field": "age", "op": "gte", "value": 60}]
    assert segment.created_by == operator
    entry = AuditEntry.objects.get(action="segment.create")
    assert entry.actor == operator
    assert entry.changes["rules"] == [None, [{"field": "age", "op": "gte", "value": 60}]]


def test_segment_rules_that_are_not_valid_are_refused_on_rules(operator, budget):
    with pytest.raises(ValidationError) as refused:
        segment_create(
            actor=operator,
            data={
                "code": "SEG-BAD",
                "name": "Bad",
                "department": budget.department,
                "rules": [{"field": "lifecycle_stage", "op": "in", "value": ["SLEEPY"]}],
            },
        )

    assert "SLEEPY" in refused.value.message_dict["rules"][0]
    assert not Segment.objects.exists()


@pytest.mark.parametrize("status", ["PENDING_APPROVAL", "SCHEDULED", "ACTIVE", "PAUSED"])
def test_the_rules_of_a_segment_a_launched_campaign_targets_are_frozen(operator, budget, status):
    segment = SegmentFactory(code="SEG-D", name="沉睡", rules=DORMANT)
    campaign = draft(operator, budget, code="C-USES", status=status)
    campaign.segments.add(segment)

    with pytest.raises(SegmentInUse) as refused:
        segment_update(segment=segment, actor=operator, changes={"rules": []})
    renamed = segment_update(
        segment=segment, actor=operator, changes={"name": "沉睡客户", "rules": DORMANT}
    )

    assert refused.value.codes == ["C-USES"]
    assert "C-USES" in str(refused.value)
    renamed.refresh_from_db()
    assert (renamed.name, renamed.rules) == ("沉睡客户", DORMANT)
    assert AuditEntry.objects.get(action="segment.change").changes == {"name": ["沉睡", "沉睡客户"]}


@pytest.mark.parametrize("status", ["DRAFT", "REJECTED", "ENDED"])
def test_the_rules_of_a_segment_only_drafts_or_ended_campaigns_target_may_change(
    operator, budget, status
):
    segment = SegmentFactory(rules=DORMANT)
    draft(operator, budget, status=status).segments.add(segment)

    segment_update(segment=segment, actor=operator, changes={"rules": []})

    segment.refresh_from_db()
    assert segment.rules == []
    assert AuditEntry.objects.get(action="segment.change").changes == {"rules": [DORMANT, []]}


@pytest.mark.parametrize("status", ["DRAFT", "ACTIVE", "ENDED"])
def test_a_segment_any_campaign_targets_is_kept(operator, budget, status):
    segment = SegmentFactory()
    draft(operator, budget, code="C-ANY", status=status).segments.add(segment)

    with pytest.raises(SegmentInUse, match="C-ANY"):
        segment_delete(segment=segment, actor=operator)

    assert Segment.objects.filter(pk=segment.pk).exists()
    assert not AuditEntry.objects.exists()


def test_an_unused_segment_is_deleted_and_the_audit_keeps_its_rules(operator):
    segment = SegmentFactory(code="SEG-X", rules=DORMANT)

    segment_delete(segment=segment, actor=operator)

    assert not Segment.objects.exists()
    entry = AuditEntry.objects.get(action="segment.delete")
    assert entry.actor == operator
    assert entry.changes["rules"] == [DORMANT, None]
    assert entry.changes["code"] == ["SEG-X", None]


def test_a_tier_condition_takes_codes_of_the_active_scheme_only():
    assert segment_rules_validate([{"field": "tier", "op": "in", "value": ["GOLD"]}])

    with translation.override("en"), pytest.raises(ValidationError) as refused:
        segment_rules_validate([{"field": "tier", "op": "in", "value": ["GOLD", "STAR3"]}])

    assert Tier.objects.filter(code="STAR3", scheme__code="DEFAULT_POINTS").exists()
    (message,) = refused.value.messages
    assert "STAR3" in message and "GOLD" not in message
    assert "not a tier of the active scheme" in message.lower()


def test_a_segment_naming_a_tier_of_a_draft_scheme_is_not_created(operator, budget):
    with translation.override("en"), pytest.raises(ValidationError) as refused:
        segment_create(
            actor=operator,
            data={
                "code": "SEG-STAR",
                "name": "三星",
                "department": budget.department,
                "rules": [{"field": "tier", "op": "in", "value": ["STAR3"]}],
            },
        )

    reason = refused.value.message_dict["rules"][0]
    assert "not a tier of the active scheme" in reason.lower()
    assert not Segment.objects.exists()


# --- the row lock (PostgreSQL) -----------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_task_added_while_a_colleague_submits_waits_for_the_lock_then_is_refused(
    operator, budget
):
    campaign = draft(operator, budget, code="C-RACE")
    TaskFactory(campaign=campaign)
    submitted, release = threading.Event(), threading.Event()
    outcome: dict = {}

    def colleague() -> None:
        try:
            with transaction.atomic():
                campaign_submit(campaign=campaign, actor=operator)  # holds the row lock
                submitted.set()
                release.wait(timeout=30)
        finally:
            connection.close()

    def editor() -> None:
        try:
            submitted.wait(timeout=30)
            task_create(campaign=campaign, actor=operator, data=SIGN_IN)
        except Exception as exc:
            outcome["error"] = exc
        else:
            outcome["error"] = None
        finally:
            connection.close()

    threads = [threading.Thread(target=colleague), threading.Thread(target=editor)]
    for thread in threads:
        thread.start()
    threads[1].join(timeout=1)
    waited = threads[1].is_alive()
    release.set()
    for thread in threads:
        thread.join(timeout=30)

    assert waited, "the edit did not wait for the submit's row lock"
    assert isinstance(outcome["error"], CampaignNotEditable)
    assert Task.objects.filter(campaign=campaign).count() == 1
    assert Campaign.objects.get(pk=campaign.pk).status == "PENDING_APPROVAL"
