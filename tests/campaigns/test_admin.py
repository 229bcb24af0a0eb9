"""The campaigns admin (django-unfold, guarded by the permission matrix): a campaign built
with its tasks on one page, read-only once submitted, the workflow through the services,
read-only events, batches and completions; segments and the points ledger."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.admin.helpers import AdminReadonlyField
from django.contrib.auth.models import Group
from django.contrib.messages import get_messages
from django.utils import translation

from campaigns.models import Campaign, EventBatch, MemberEvent, Task, TaskCompletion, TaskStep
from campaigns.services import campaign_submit
from members.models import PointsEntry, Segment
from members.services.points import points_earn
from portal.choices import Role
from portal.models import AuditEntry
from tests.factories import (
    BudgetFactory,
    CampaignFactory,
    MemberFactory,
    SegmentFactory,
    TaskFactory,
    TaskStepFactory,
)

from .conftest import event, today

pytestmark = pytest.mark.django_db

CAMPAIGNS = "/admin/campaigns/campaign/"
TASKS = "/admin/campaigns/task/"
PHONE = "13812345678"
ID_NUMBER = "110101199003071234"


@pytest.fixture
def staff(make_user):
    both = make_user(Role.PRODUCT_OPERATOR, username="both", branch="HO")
    both.groups.add(Group.objects.get(name=str(Role.BUDGET_APPROVER)))
    return {
        "operator": make_user(Role.PRODUCT_OPERATOR, username="operator", branch="HO"),
        "approver": make_user(Role.BUDGET_APPROVER, username="approver", branch="HO"),
        "auditor": make_user(Role.RISK_AUDITOR, username="auditor", branch="HO"),
        "admin": make_user(Role.ADMINISTRATOR, username="admin", branch="HO"),
        "am": make_user(Role.ACCOUNT_MANAGER, username="am", branch="B01S1"),
        "both": both,
    }


@pytest.fixture
def budget(db):
    return BudgetFactory(code="RETAIL-2026")


def draft(author, **kw) -> Campaign:
    """A draft whose window starts tomorrow (approval schedules it). Asked for as
    PENDING_APPROVAL, it gets a task and is submitted by its author, as in the portal."""
    kw.setdefault("starts_on", today() + timedelta(days=1))
    kw.setdefault("ends_on", today() + timedelta(days=60))
    status = kw.pop("status", "DRAFT")
    pending = status == "PENDING_APPROVAL"
    campaign = CampaignFactory(created_by=author, status="DRAFT" if pending else status, **kw)
    if pending:
        TaskFactory(campaign=campaign)
        campaign = campaign_submit(campaign=campaign, actor=author)
    return campaign


def change_url(campaign: Campaign) -> str:
    return f"{CAMPAIGNS}{campaign.pk}/change/"


def messages_of(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def management(prefix: str, total: int, initial: int = 0) -> dict:
    return {
        f"{prefix}-TOTAL_FORMS": str(total),
        f"{prefix}-INITIAL_FORMS": str(initial),
        f"{prefix}-MIN_NUM_FORMS": "0",
        f"{prefix}-MAX_NUM_FORMS": "1000",
    }


def campaign_form(budget, **kw) -> dict:
    return {
        "code": "C-ADMIN",
        "name": "后台建的活动",
        "description": "",
        "department": str(budget.department.pk),
        "budget": str(budget.pk),
        "starts_on": (today() + timedelta(days=1)).isoformat(),
        "ends_on": (today() + timedelta(days=30)).isoformat(),
        "target_stages": ["DORMANT"],
        "holdout_share": "10",  # the form's initial values, as a browser posts them
        "follow_up_days": "30",
        **management("tasks", 0),
        **kw,
    }


def task_inline(n: int, **kw) -> dict:
    values = {
        "name": f"任务{n}",
        "position": str(n),
        "event_type": "SIGN_IN",
        "measure": "COUNT",
        "target": "3",
        "recurrence": "DAILY",
        "difficulty": "EASY",
        "min_event_amount": "0",
        "reward_points": "10",
        "reward_benefit": "",
        "max_rewards_per_member": "",
        "max_rewards_per_period": "",
        "description": "",
        **kw,
    }
    return {f"tasks-{n}-{key}": value for key, value in values.items()}


# --- building a campaign with its tasks on one page -----------------------------------------


def test_product_operator_opens_the_add_page_with_the_task_inline(client, staff):
    client.force_login(staff["operator"])

    response = client.get(f"{CAMPAIGNS}add/")

    assert response.status_code == 200
    assert [f.formset.prefix for f in response.context["inline_admin_formsets"]] == ["tasks"]
    html = response.content.decode()
    assert 'name="status"' not in html  # never edited directly
    assert 'name="created_by"' not in html


def test_product_operator_creates_a_campaign_with_tasks_on_one_page(client, staff, budget):
    client.force_login(staff["operator"])
    data = {
        **campaign_form(budget),
        **management("tasks", 2),
        **task_inline(0),
        **task_inline(1, measure="AMOUNT_SUM", target="500.50", event_type="FUND_PURCHASE"),
    }

    response = client.post(f"{CAMPAIGNS}add/", data)

    assert response.status_code == 302, response.context and response.context["errors"]
    campaign = Campaign.objects.get(code="C-ADMIN")
    assert campaign.status == "DRAFT"
    assert campaign.created_by == staff["operator"]
    assert campaign.target_stages == ["DORMANT"]
    assert list(campaign.tasks.values_list("measure", "target")) == [
        ("COUNT", Decimal("3")),
        ("AMOUNT_SUM", Decimal("500.50")),
    ]
    assert AuditEntry.objects.filter(action="campaign.create", actor=staff["operator"]).exists()


def test_a_non_whole_count_target_is_refused_on_the_campaign_page(client, staff, budget):
    client.force_login(staff["operator"])
    data = {**campaign_form(budget), **management("tasks", 1), **task_inline(0, target="2.5")}

    response = client.post(f"{CAMPAIGNS}add/", data)

    assert response.status_code == 200
    assert "2.5" in str(response.context["inline_admin_formsets"][0].formset.errors)
    assert not Campaign.objects.exists()


def test_product_operator_changes_a_draft_with_its_task_inline(client, staff, budget):
    campaign = draft(staff["operator"], budget=budget)
    task = TaskFactory(campaign=campaign)
    client.force_login(staff["operator"])

    page = client.get(change_url(campaign))

    assert page.status_code == 200
    assert page.context["has_change_permission"] is True
    inline = page.context["inline_admin_formsets"][0]
    assert inline.formset.prefix == "tasks"
    assert [form.instance for form in inline.formset.forms] == [task]
    assert inline.has_change_permission is True
    assert 'name="_save"' in page.content.decode()


def test_changing_a_rejected_campaign_makes_it_a_draft_again(client, staff, budget):
    campaign = draft(staff["operator"], budget=budget, status="REJECTED", code="C-REJ")
    client.force_login(staff["operator"])

    response = client.post(change_url(campaign), campaign_form(budget, code="C-REJ", name="改过"))

    assert response.status_code == 302, response.context and response.context["errors"]
    campaign.refresh_from_db()
    assert (campaign.name, campaign.status) == ("改过", "DRAFT")


# --- read-only once submitted, and for roles that only read -------------------------------------


def test_a_campaign_pending_approval_is_read_only(client, staff, budget):
    campaign = draft(staff["operator"], budget=budget, status="PENDING_APPROVAL")
    TaskFactory(campaign=campaign)
    client.force_login(staff["operator"])

    page = client.get(change_url(campaign))
    posted = client.post(change_url(campaign), campaign_form(budget, name="偷改"))

    assert page.status_code == 200
    assert page.context["has_change_permission"] is False
    inline = page.context["inline_admin_formsets"][0]
    assert inline.has_change_permission is False and inline.has_add_permission is False
    html = page.content.decode()
    assert 'name="_save"' not in html and 'name="name"' not in html
    assert posted.status_code == 403
    campaign.refresh_from_db()
    assert campaign.name != "偷改"


def test_a_task_of_a_submitted_campaign_is_read_only_on_its_own_page(client, staff, budget):
    # waiting for its launch decision (a launched campaign's task takes its rewards and caps
    # through approval: tests/campaigns/test_campaign_change.py)
    task = TaskFactory(campaign=draft(staff["operator"], budget=budget, status="PENDING_APPROVAL"))
    client.force_login(staff["operator"])

    page = client.get(f"{TASKS}{task.pk}/change/")
    posted = client.post(f"{TASKS}{task.pk}/change/", {"name": "x"})

    assert page.status_code == 200
    assert page.context["has_change_permission"] is False
    assert posted.status_code == 403


def test_risk_auditor_sees_campaigns_but_cannot_change_them(client, staff, budget):
    campaign = draft(staff["operator"], budget=budget)
    client.force_login(staff["auditor"])

    listing = client.get(CAMPAIGNS)
    page = client.get(change_url(campaign))
    posted = client.post(change_url(campaign), campaign_form(budget, name="审计改"))
    add = client.get(f"{CAMPAIGNS}add/")

    assert listing.status_code == 200
    assert page.status_code == 200
    assert page.context["has_change_permission"] is False
    assert 'name="_save"' not in page.content.decode()
    assert posted.status_code == 403
    assert add.status_code == 403
    campaign.refresh_from_db()
    assert campaign.name != "审计改"


def test_account_manager_cannot_enter_the_campaign_admin(client, staff, budget):
    client.force_login(staff["am"])

    response = client.get(CAMPAIGNS)

    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


# --- the workflow goes through the services ------------------------------------------------------


def test_submit_for_approval_bulk_action_uses_the_service(client, staff, budget):
    ready = draft(staff["operator"], budget=budget, code="C-READY")
    TaskFactory(campaign=ready)
    empty = draft(staff["operator"], budget=budget, code="C-EMPTY")
    client.force_login(staff["operator"])

    response = client.post(
        CAMPAIGNS,
        {"action": "submit_for_approval", "_selected_action": [ready.pk, empty.pk]},
        follow=True,
    )

    ready.refresh_from_db()
    empty.refresh_from_db()
    assert (ready.status, ready.submitted_by) == ("PENDING_APPROVAL", staff["operator"])
    assert empty.status == "DRAFT"
    assert any("C-EMPTY" in m and "任务" in m for m in messages_of(response))


def test_approval_buttons_show_only_to_an_approver_and_only_when_pending(client, staff, budget):
    pending = draft(staff["operator"], budget=budget, status="PENDING_APPROVAL")
    client.force_login(staff["approver"])

    titles = {a["path"].rstrip("/").rsplit("/", 1)[-1] for a in _detail_actions(client, pending)}
    client.force_login(staff["operator"])
    operator_titles = {
        a["path"].rstrip("/").rsplit("/", 1)[-1] for a in _detail_actions(client, pending)
    }

    assert titles == {"approve", "reject"}
    assert operator_titles == set()


def _detail_actions(client, campaign) -> list[dict]:
    return client.get(change_url(campaign)).context["actions_detail"]


def test_a_budget_approver_approves_in_the_admin(client, staff, budget):
    campaign = draft(staff["operator"], budget=budget)
    TaskFactory(campaign=campaign)
    client.force_login(staff["operator"])
    client.post(f"{CAMPAIGNS}{campaign.pk}/submit/", {"_form_submitted": "on"})
    client.force_login(staff["approver"])

    dialog = client.get(f"{CAMPAIGNS}{campaign.pk}/approve/")
    response = client.post(
        f"{CAMPAIGNS}{campaign.pk}/approve/", {"_form_submitted": "on", "comment": "同意"}
    )

    assert dialog.status_code == 200
    assert response.status_code == 302
    assert response["Location"] == change_url(campaign)
    campaign.refresh_from_db()
    assert campaign.status == "SCHEDULED"
    assert (campaign.submitted_by, campaign.decided_by) == (staff["operator"], staff["approver"])
    assert campaign.decision_comment == "同意"


def test_the_dialog_posted_with_htmx_reloads_the_page(client, staff, budget):
    campaign = draft(staff["operator"], budget=budget, status="PENDING_APPROVAL")
    client.force_login(staff["approver"])

    response = client.post(
        f"{CAMPAIGNS}{campaign.pk}/approve/", {"_form_submitted": "on"}, HTTP_HX_REQUEST="true"
    )

    assert response.status_code == 200
    assert response["HX-Redirect"] == change_url(campaign)


def test_self_approval_is_refused_in_the_admin_with_a_message(client, staff, budget):
    campaign = draft(staff["both"], budget=budget)
    TaskFactory(campaign=campaign)
    client.force_login(staff["both"])
    client.post(f"{CAMPAIGNS}{campaign.pk}/submit/", {"_form_submitted": "on"})

    response = client.post(
        f"{CAMPAIGNS}{campaign.pk}/approve/", {"_form_submitted": "on"}, follow=True
    )

    campaign.refresh_from_db()
    assert campaign.status == "PENDING_APPROVAL"
    assert campaign.decided_by is None
    with translation.override("zh-hans"):
        refusal = translation.gettext("You cannot decide your own request; a colleague must.")
    assert any(refusal in m for m in messages_of(response))


def test_a_rejection_in_the_admin_needs_a_comment(client, staff, budget):
    campaign = draft(staff["operator"], budget=budget, status="PENDING_APPROVAL")
    client.force_login(staff["approver"])

    without = client.post(f"{CAMPAIGNS}{campaign.pk}/reject/", {"_form_submitted": "on"})
    campaign.refresh_from_db()
    status_without = campaign.status
    with_comment = client.post(
        f"{CAMPAIGNS}{campaign.pk}/reject/", {"_form_submitted": "on", "comment": "预算太高"}
    )

    assert without.status_code == 200  # the dialog again, with the error
    assert without.context["form"].errors["comment"]
    assert status_without == "PENDING_APPROVAL"
    assert with_comment.status_code == 302
    campaign.refresh_from_db()
    assert (campaign.status, campaign.decision_comment) == ("REJECTED", "预算太高")


def test_an_operator_cannot_open_the_approval_dialog(client, staff, budget):
    campaign = draft(staff["admin"], budget=budget, status="PENDING_APPROVAL")
    client.force_login(staff["operator"])

    response = client.post(f"{CAMPAIGNS}{campaign.pk}/approve/", {"_form_submitted": "on"})

    assert response.status_code == 403
    campaign.refresh_from_db()
    assert campaign.status == "PENDING_APPROVAL"


def test_pause_in_the_admin_uses_the_service_and_reports_wrong_states(client, staff, budget):
    active = CampaignFactory(budget=budget)
    a_draft = draft(staff["operator"], budget=budget)
    client.force_login(staff["operator"])

    paused = client.post(
        f"{CAMPAIGNS}{active.pk}/pause/", {"_form_submitted": "on", "reason": "风控"}
    )
    refused = client.post(f"{CAMPAIGNS}{a_draft.pk}/pause/", {"_form_submitted": "on"}, follow=True)

    assert paused.status_code == 302
    active.refresh_from_db()
    assert active.status == "PAUSED"
    a_draft.refresh_from_db()
    assert a_draft.status == "DRAFT"
    assert any(a_draft.code in m for m in messages_of(refused))


# --- tasks and their ladder ---------------------------------------------------------------------


def steps_form(*steps, initial: int = 0) -> dict:
    data = management("steps", len(steps), initial)
    for n, (step_no, target) in enumerate(steps):
        data |= {
            f"steps-{n}-step_no": str(step_no),
            f"steps-{n}-target": target,
            f"steps-{n}-reward_points": "10",
            f"steps-{n}-reward_benefit": "",
        }
    return data


def task_form(task: Task, **kw) -> dict:
    return {
        "campaign": str(task.campaign_id),
        "name": task.name,
        "description": "",
        "event_type": task.event_type,
        "min_event_amount": "0",
        "measure": "AMOUNT_SUM",
        "target": "1",
        "recurrence": task.recurrence,
        "difficulty": task.difficulty,
        "reward_points": "0",
        "reward_benefit": "",
        "max_rewards_per_member": "",
        "max_rewards_per_period": "",
        "position": "0",
        **kw,
    }


def test_ladder_steps_are_edited_on_the_task_page(client, staff, budget):
    task = TaskFactory(campaign=draft(staff["operator"], budget=budget))
    client.force_login(staff["operator"])

    page = client.get(f"{TASKS}{task.pk}/change/")
    response = client.post(
        f"{TASKS}{task.pk}/change/",
        {**task_form(task), **steps_form((1, "1000"), (2, "5000"), (3, "20000"))},
    )

    assert page.status_code == 200
    assert [f.formset.prefix for f in page.context["inline_admin_formsets"]] == ["steps"]
    assert response.status_code == 302, response.context and response.context["errors"]
    assert list(TaskStep.objects.filter(task=task).values_list("step_no", "target")) == [
        (1, Decimal("1000")),
        (2, Decimal("5000")),
        (3, Decimal("20000")),
    ]


@pytest.mark.parametrize(
    "steps",
    [((1, "5000"), (2, "1000")), ((1, "10"), (3, "20"))],
    ids=["falling", "gap"],
)
def test_a_ladder_that_is_not_one_is_refused_on_the_task_page(client, staff, budget, steps):
    task = TaskFactory(campaign=draft(staff["operator"], budget=budget))
    client.force_login(staff["operator"])

    response = client.post(f"{TASKS}{task.pk}/change/", {**task_form(task), **steps_form(*steps)})

    assert response.status_code == 200
    assert response.context["inline_admin_formsets"][0].formset.non_form_errors()
    assert not TaskStep.objects.filter(task=task).exists()


def test_changing_the_measure_on_the_campaign_page_checks_the_saved_ladder(client, staff, budget):
    campaign = draft(staff["operator"], budget=budget, code="C-LAD")
    task = TaskFactory(campaign=campaign, measure="AMOUNT_SUM", target=Decimal("10"))
    TaskStepFactory(task=task, step_no=1, target=Decimal("0.50"))
    client.force_login(staff["operator"])
    inline = task_inline(0, id=str(task.pk), campaign=str(campaign.pk), target="10")

    response = client.post(
        change_url(campaign),
        {**campaign_form(budget, code="C-LAD"), **management("tasks", 1, 1), **inline},
    )

    assert response.status_code == 200
    assert "measure" in response.context["inline_admin_formsets"][0].formset.errors[0]
    task.refresh_from_db()
    assert task.measure == "AMOUNT_SUM"


# --- events, batches and completions: read-only, no personal data ------------------------------


@pytest.fixture
def ingested(post_events):
    member = MemberFactory(member_no="M0000123", name="王小明", phone=PHONE, id_number=ID_NUMBER)
    TaskFactory(reward_points=100)
    post_events(event(member, event_id="app-1"), event("M404", event_id="x-unknown"))
    return member


@pytest.mark.parametrize(
    "url",
    [
        "/admin/campaigns/eventbatch/",
        "/admin/campaigns/memberevent/",
        "/admin/campaigns/taskcompletion/",
    ],
)
def test_event_admins_list_without_personal_data_and_cannot_add(client, staff, ingested, url):
    client.force_login(staff["auditor"])

    listing = client.get(url)
    add = client.get(f"{url}add/")

    assert listing.status_code == 200
    html = listing.content.decode()
    assert PHONE not in html and ID_NUMBER not in html
    assert add.status_code == 403


def test_member_events_show_the_member_by_member_no(client, staff, ingested):
    client.force_login(staff["auditor"])
    stored = MemberEvent.objects.get(event_id="app-1")

    listing = client.get("/admin/campaigns/memberevent/")
    page = client.get(f"/admin/campaigns/memberevent/{stored.pk}/change/")
    posted = client.post(f"/admin/campaigns/memberevent/{stored.pk}/change/", {"type": "LOGIN"})

    assert "M0000123" in listing.content.decode()
    assert "王小明" not in listing.content.decode()
    assert page.status_code == 200 and 'name="_save"' not in page.content.decode()
    assert posted.status_code == 403


def test_member_events_cannot_be_filtered_on_personal_data(client, staff, ingested):
    client.force_login(staff["auditor"])

    response = client.get("/admin/campaigns/memberevent/", {"member__phone__startswith": "138"})

    assert response.status_code == 400


def test_an_event_batch_shows_its_counts_and_refusals(client, staff, ingested):
    batch = EventBatch.objects.get()
    client.force_login(staff["auditor"])

    page = client.get(f"/admin/campaigns/eventbatch/{batch.pk}/change/")

    assert page.status_code == 200
    html = page.content.decode()
    assert "x-unknown" in html and "unknown member" in html
    assert (batch.received, batch.accepted, batch.rejected) == (2, 1, 1)


def test_task_completions_filter_by_reward_status_and_campaign(client, staff, ingested):
    completion = TaskCompletion.objects.get()
    client.force_login(staff["auditor"])

    rewarded = client.get(
        "/admin/campaigns/taskcompletion/",
        {"reward_status__exact": "REWARDED", "campaign__id__exact": completion.campaign_id},
    )
    refused = client.get(
        "/admin/campaigns/taskcompletion/", {"reward_status__exact": "REFUSED_BUDGET"}
    )

    assert list(rewarded.context["cl"].result_list) == [completion]
    assert list(refused.context["cl"].result_list) == []


def test_budget_approver_does_not_see_member_events(client, staff, ingested):
    client.force_login(staff["approver"])

    assert client.get("/admin/campaigns/memberevent/").status_code == 403


# --- segments -----------------------------------------------------------------------------------


def test_segment_change_page_shows_the_live_size_the_list_does_not(client, staff):
    segment = SegmentFactory(rules=[{"field": "lifecycle_stage", "op": "in", "value": ["DORMANT"]}])
    MemberFactory(lifecycle_stage="DORMANT")
    MemberFactory(lifecycle_stage="DORMANT")
    MemberFactory(lifecycle_stage="ACTIVE")
    client.force_login(staff["operator"])

    listing = client.get("/admin/members/segment/")
    page = client.get(f"/admin/members/segment/{segment.pk}/change/")

    assert listing.status_code == 200
    assert "live_size" not in listing.context["cl"].list_display
    assert page.status_code == 200
    live = next(
        field
        for fieldset in page.context["adminform"]
        for line in fieldset
        for field in line
        if isinstance(field, AdminReadonlyField) and field.field["name"] == "live_size"
    )
    assert live.contents() == "2"


def test_segment_created_in_the_admin_validates_rules_and_records_its_author(client, staff, budget):
    client.force_login(staff["operator"])
    base = {"code": "SEG-A", "name": "A", "description": "", "department": budget.department.pk}

    bad = client.post(
        "/admin/members/segment/add/",
        {**base, "rules": '[{"field": "lifecycle_stage", "op": "in", "value": ["SLEEPY"]}]'},
    )
    good = client.post(
        "/admin/members/segment/add/",
        {**base, "rules": '[{"field": "lifecycle_stage", "op": "in", "value": ["DORMANT"]}]'},
    )

    assert bad.status_code == 200
    assert "SLEEPY" in str(bad.context["adminform"].form.errors["rules"])
    assert good.status_code == 302
    assert Segment.objects.get(code="SEG-A").created_by == staff["operator"]


def test_a_segment_a_campaign_targets_cannot_be_deleted(client, staff, budget):
    segment = SegmentFactory()
    CampaignFactory(budget=budget).segments.add(segment)
    client.force_login(staff["operator"])

    response = client.post(
        f"/admin/members/segment/{segment.pk}/delete/", {"post": "yes"}, follow=True
    )

    assert response.redirect_chain[-1][0].endswith(f"/admin/members/segment/{segment.pk}/change/")
    assert Segment.objects.filter(pk=segment.pk).exists()


def test_risk_auditor_reads_segments_but_cannot_change_them(client, staff):
    segment = SegmentFactory()
    client.force_login(staff["auditor"])

    page = client.get(f"/admin/members/segment/{segment.pk}/change/")

    assert page.status_code == 200
    assert page.context["has_change_permission"] is False


# --- the points ledger is append-only ------------------------------------------------------------


def test_points_ledger_is_read_only_in_the_admin(client, staff):
    member = MemberFactory(member_no="M0000777", phone=PHONE, id_number=ID_NUMBER)
    entry = points_earn(
        member_id=member.pk,
        points=120,
        business_date=today(),
        source="test",
        idempotency_key="admin-test-1",
    )
    client.force_login(staff["auditor"])
    url = "/admin/members/pointsentry/"

    listing = client.get(url)
    page = client.get(f"{url}{entry.pk}/change/")
    changed = client.post(f"{url}{entry.pk}/change/", {"points": "99999"})
    deleted = client.post(f"{url}{entry.pk}/delete/", {"post": "yes"})
    added = client.get(f"{url}add/")

    assert listing.status_code == 200
    html = listing.content.decode()
    assert "M0000777" in html and PHONE not in html and ID_NUMBER not in html
    assert page.status_code == 200 and 'name="_save"' not in page.content.decode()
    assert (changed.status_code, deleted.status_code, added.status_code) == (403, 403, 403)
    entry.refresh_from_db()
    assert entry.points == 120
    assert PointsEntry.objects.count() == 1


def test_nobody_may_change_the_points_ledger_not_even_an_administrator(client, staff):
    client.force_login(staff["admin"])

    response = client.get("/admin/members/pointsentry/add/")

    assert response.status_code == 403
