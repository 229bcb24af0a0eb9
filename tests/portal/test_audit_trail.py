"""The audit trail: every change of configuration and member data, whether made in the
admin, through the API, by a service or by a bulk update, is recorded by PostgreSQL triggers
(django-pghistory) with the acting user and request; the history refuses UPDATE and DELETE;
the nightly recompute leaves no per-member trace; risk auditors read and filter it on
/audit/ with personal data masked (portal/audit.py, portal/audit_views.py)."""

from __future__ import annotations

from datetime import date, timedelta
from types import SimpleNamespace

import pghistory
import pytest
from django.db import DatabaseError, connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from benefits.models import Benefit, Budget
from benefits.services import budget_consume, grant_create, grant_redeem, grants_expire
from campaigns.models import Campaign
from members.models import Member, TierChange
from members.services import lifecycle_recompute, tier_recompute
from portal import audit
from portal.choices import Role
from portal.models import AuditEntry, User
from portal.permissions import PERMISSION_MATRIX
from portal.services import audit_record
from tests.factories import BenefitFactory, BudgetFactory, MemberFactory

pytestmark = pytest.mark.django_db

PHONE, NEW_PHONE = "13812345678", "13987654321"
ID_NUMBER = "110101199003071234"


@pytest.fixture
def staff(make_user):
    return {
        "operator": make_user(Role.PRODUCT_OPERATOR, username="operator", branch="HO"),
        "approver": make_user(Role.BUDGET_APPROVER, username="approver", branch="HO"),
        "auditor": make_user(Role.RISK_AUDITOR, username="auditor", branch="HO"),
        "am": make_user(Role.ACCOUNT_MANAGER, username="am", branch="B01S1"),
    }


def history(obj, label: str | None = None):
    """The recorded events of one object, oldest first."""
    rows = type(obj).pgh_event_model.objects.filter(pgh_obj_id=obj.pk)
    if label:
        rows = rows.filter(pgh_label=label)
    return list(rows.select_related("pgh_context").order_by("pgh_id"))


def context_of(event) -> dict:
    return event.pgh_context.metadata if event.pgh_context else {}


def audit_page(client, user, **params):
    client.force_login(user)
    return client.get("/audit/", params, HTTP_ACCEPT_LANGUAGE="en")


def shown(response) -> list[tuple[str, str, str]]:
    """(model label, object id, kind) of each field change on the page, top first."""
    return [
        (change.model_label, change.object_id, change.kind)
        for change in response.context["page"].object_list
    ]


# --- what is recorded, with whom --------------------------------------------------------------


@pytest.mark.postgres
def test_bulk_budget_update_is_recorded_per_row_with_the_actor(staff):
    budgets = [BudgetFactory(amount_fen=100_000_00) for _ in range(3)]

    with pghistory.context(user=staff["approver"].pk, url="/bulk"):
        Budget.objects.filter(pk__in=[b.pk for b in budgets]).update(amount_fen=200_000_00)

    for budget in budgets:
        [update] = history(budget, "update")
        assert update.amount_fen == 200_000_00
        assert context_of(update)["user"] == staff["approver"].pk


@pytest.mark.postgres
def test_bulk_credit_risk_update_of_members_is_recorded_with_the_actor(staff):
    members = [MemberFactory() for _ in range(2)]

    with pghistory.context(user=staff["approver"].pk):
        Member.objects.filter(pk__in=[m.pk for m in members]).update(credit_risk=True)

    for member in members:
        [update] = history(member, "update")
        assert update.credit_risk is True
        assert context_of(update)["user"] == staff["approver"].pk


@pytest.mark.postgres
def test_benefit_edited_in_the_admin_is_recorded_with_the_user_and_the_url(client, staff):
    benefit = BenefitFactory(name="旧名字")
    url = f"/admin/benefits/benefit/{benefit.pk}/change/"
    client.force_login(staff["operator"])

    response = client.post(
        url,
        {
            "code": benefit.code,
            "name": "新名字",
            "name_en": benefit.name_en,
            "category": benefit.category,
            "provider": "",
            "unit_cost": f"{benefit.unit_cost:.2f}",  # in yuan, as the form shows it
            "department": str(benefit.department_id),
            "budget": str(benefit.budget_id),
            "validity_days": "",
            "active": "on",
        },
    )

    assert response.status_code == 302, response.content[:2000]
    [update] = history(benefit, "update")
    assert update.name == "新名字"
    assert context_of(update)["user"] == staff["operator"].pk
    assert context_of(update)["url"] == url
    assert context_of(update)["ip"] == "127.0.0.1"


@pytest.mark.postgres
def test_campaign_created_through_the_api_is_recorded_with_the_tokens_user(api_client_for, staff):
    budget = BudgetFactory(code="RETAIL-2026")
    client = api_client_for(staff["operator"])
    today = timezone.localdate()

    response = client.post(
        "/api/v1/campaigns/",
        {
            "code": "C-AUDIT",
            "name": "审计活动",
            "department": budget.department.code,
            "budget": budget.code,
            "starts_on": (today + timedelta(days=1)).isoformat(),
            "ends_on": (today + timedelta(days=30)).isoformat(),
        },
        format="json",
    )

    assert response.status_code == 201, response.content
    [insert] = history(Campaign.objects.get(code="C-AUDIT"), "insert")
    assert context_of(insert)["user"] == staff["operator"].pk
    assert context_of(insert)["url"] == "/api/v1/campaigns/"


@pytest.mark.postgres
def test_nightly_tier_and_lifecycle_recompute_write_no_member_history(import_csv):
    members = [MemberFactory(member_no=f"NIGHT{i}") for i in range(3)]
    rows = ["member_no,date,category,balance"]
    for member in members:
        for month, balance in (("2026-05", "20000.00"), ("2026-06", "600000.00")):
            start = date.fromisoformat(f"{month}-01")
            end = (start + timedelta(days=32)).replace(day=1)
            rows += [
                f"{member.member_no},{start + timedelta(days=d)},DEMAND,{balance}"
                for d in range((end - start).days)
            ]
    assert import_csv("assets", "\n".join(rows) + "\n").rejected == 0

    tier_recompute(business_date=date(2026, 6, 2))
    tier_recompute(business_date=date(2026, 7, 2))
    lifecycle_recompute(business_date=date(2026, 7, 2))

    upgrades = TierChange.objects.filter(member__in=members, cause="UPGRADE")
    assert upgrades.count() == 3  # every member moved: the recompute did change them
    recorded = Member.pgh_event_model.objects.filter(pgh_obj_id__in=[m.pk for m in members])
    assert sorted(recorded.values_list("pgh_label", flat=True)) == ["insert"] * 3


@pytest.mark.postgres
def test_budget_consumption_and_grant_expiry_are_left_to_their_own_ledgers(staff):
    budget = BudgetFactory()
    benefit = BenefitFactory(budget=budget, unit_cost_fen=1_000)
    member = MemberFactory()
    budget_consume(budget=budget, amount_fen=500, source="test")
    grants = [
        grant_create(
            member=member,
            benefit=benefit,
            budget=budget,
            source="MANUAL",
            idempotency_key=f"audit-{n}",
            expires_on=timezone.localdate() - timedelta(days=1 - n),
        )
        for n in range(2)
    ]

    with pghistory.context(user=staff["am"].pk):
        grant_redeem(grant=grants[1], actor=staff["am"])
    grants_expire(business_date=timezone.localdate())

    assert [e.pgh_label for e in history(budget)] == ["insert"]  # consumption: BudgetEntry
    assert history(grants[0]) == []  # expired by the night: counted in its JobRun
    [redeemed] = history(grants[1])
    assert redeemed.status == "REDEEMED"
    assert context_of(redeemed)["user"] == staff["am"].pk


@pytest.mark.postgres
def test_user_history_keeps_no_password_and_ignores_logins(client, staff):
    user = staff["am"]
    before = [e.pgh_label for e in history(user)]
    client.force_login(user)  # writes last_login

    user.set_password("Another-pass-456")
    user.save()

    assert [e.pgh_label for e in history(user)] == [*before, "password_change"]
    assert {"password", "last_login"}.isdisjoint(f.name for f in User.pgh_event_model._meta.fields)


@pytest.mark.postgres
@pytest.mark.parametrize("model", [Budget, AuditEntry])
@pytest.mark.parametrize("operation", ["update", "delete"])
def test_history_and_audit_entries_refuse_update_and_delete_at_the_database(
    staff, model, operation
):
    BudgetFactory()
    audit_record(actor=staff["auditor"], action="test.entry")
    if model is Budget:
        rows, field = Budget.pgh_event_model.objects.all(), "pgh_label"
    else:
        rows, field = AuditEntry.objects.all(), "action"  # past the model's own save() guard
    assert rows.exists()

    with pytest.raises(DatabaseError, match="Cannot update or delete"), transaction.atomic():
        if operation == "update":
            rows.update(**{field: "forged"})
        else:
            rows.delete()

    assert rows.exists() and not rows.filter(**{field: "forged"}).exists()


# --- the audit page -------------------------------------------------------------------------


@pytest.mark.parametrize("role", list(Role))
def test_audit_page_is_for_risk_auditors_and_administrators(client, make_user, role):
    response = audit_page(client, make_user(role))

    allowed = role in PERMISSION_MATRIX["portal.view_audit"]
    assert response.status_code == (200 if allowed else 403)
    if allowed:
        assert b'href="/audit/"' in response.content  # in the navigation


@pytest.mark.postgres
def test_auditor_filters_changes_by_actor_model_object_and_date(client, staff):
    benefit = BenefitFactory()
    with pghistory.context(user=staff["operator"].pk, url="/admin/x"):
        Benefit.objects.filter(pk=benefit.pk).update(name="改名")
    with pghistory.context(user=staff["approver"].pk, url="/admin/y"):
        Budget.objects.filter(pk=benefit.budget_id).update(amount_fen=1)

    everything = audit_page(client, staff["auditor"])
    by_operator = audit_page(client, staff["auditor"], actor="operator")
    budgets = audit_page(client, staff["auditor"], model="benefits.budget")
    one_budget = audit_page(client, staff["auditor"], object_id=str(benefit.budget_id))
    today = timezone.localdate()
    tomorrow = audit_page(client, staff["auditor"], date_from=today + timedelta(days=1))
    until_today = audit_page(client, staff["auditor"], date_from=today, date_to=today)

    assert ("benefits.benefit", str(benefit.pk), "update") in shown(everything)
    assert shown(by_operator) == [("benefits.benefit", str(benefit.pk), "update")]
    assert b"/admin/x" in by_operator.content and b"operator" in by_operator.content
    assert {label for label, _id, _kind in shown(budgets)} == {"benefits.budget"}
    assert [kind for _l, _i, kind in shown(budgets) if _i == str(benefit.budget_id)] == [
        "update",
        "insert",
    ]
    assert ("benefits.budget", str(benefit.budget_id), "update") in shown(one_budget)
    assert shown(tomorrow) == []
    assert until_today.context["page"].paginator.count == everything.context["page"].paginator.count


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_changes_are_listed_newest_first(client, staff):
    benefit = BenefitFactory()  # each statement commits: each change has its own time
    with pghistory.context(user=staff["approver"].pk):
        Budget.objects.filter(pk=benefit.budget_id).update(amount_fen=1)

    response = audit_page(client, staff["auditor"])

    assert shown(response)[:2] == [
        ("benefits.budget", str(benefit.budget_id), "update"),
        ("benefits.benefit", str(benefit.pk), "insert"),
    ]
    times = [change.at for change in response.context["page"].object_list]
    assert times == sorted(times, reverse=True)


@pytest.mark.postgres
def test_diff_shows_old_and_new_values(client, staff):
    benefit = BenefitFactory(name="旧名字")
    with pghistory.context(user=staff["operator"].pk):
        Benefit.objects.filter(pk=benefit.pk).update(name="新名字")

    response = audit_page(client, staff["auditor"], model="benefits.benefit", kind="update")

    [change] = response.context["page"].object_list
    assert change.actor == staff["operator"]
    assert change.diff == [("name (zh-Hans)", "旧名字", "新名字")]


@pytest.mark.postgres
def test_personal_data_is_masked_in_the_diff(client, staff):
    member = MemberFactory(phone=PHONE, id_number=ID_NUMBER)
    with pghistory.context(user=staff["am"].pk):
        member.phone = NEW_PHONE
        member.save()
    audit_record(
        actor=staff["am"], action="member.change", obj=member, changes={"phone": [PHONE, NEW_PHONE]}
    )

    changes = audit_page(client, staff["auditor"], model="members.member")
    actions = audit_page(client, staff["auditor"], tab="actions", model="members.member")

    update = next(c for c in changes.context["page"].object_list if c.kind == "update")
    assert update.diff == [("phone", "138****5678", "139****4321")]
    for response in (changes, actions):
        assert b"138****5678" in response.content and b"139****4321" in response.content
        for clear in (PHONE, NEW_PHONE, ID_NUMBER):
            assert clear.encode() not in response.content


def test_recorded_actions_are_listed_and_filtered_by_actor_and_action(client, staff):
    audit_record(actor=staff["am"], action="member.reveal", reason="客户来电")
    audit_record(actor=staff["operator"], action="feed.import")

    reveals = audit_page(client, staff["auditor"], tab="actions", action="member.")
    by_operator = audit_page(client, staff["auditor"], tab="actions", actor="operator")

    assert [entry.action for entry, _ in reveals.context["page"].object_list] == ["member.reveal"]
    assert "客户来电" in reveals.content.decode()
    assert [entry.action for entry, _ in by_operator.context["page"].object_list] == ["feed.import"]


@pytest.mark.postgres
@pytest.mark.parametrize("tab", ["changes", "actions"])
def test_page_queries_do_not_grow_with_the_rows_shown(client, staff, tab):
    def changes(n: int) -> None:
        for _ in range(n):
            member = MemberFactory(account_manager=staff["am"])
            audit_record(actor=staff["am"], action="member.reveal", obj=member)

    client.force_login(staff["auditor"])

    def queries_for_the_page() -> tuple[int, int]:
        with CaptureQueriesContext(connection) as queries:
            response = client.get("/audit/", {"tab": tab, "model": "members.member"})
        return len(response.context["page"].object_list), len(queries)

    changes(3)
    few_rows, few_queries = queries_for_the_page()
    changes(60)
    many_rows, many_queries = queries_for_the_page()

    assert few_rows < many_rows == 50
    assert many_queries == few_queries


@pytest.mark.postgres
def test_a_full_page_of_changes_takes_a_bounded_number_of_queries(
    client, staff, django_assert_max_num_queries
):
    for _ in range(20):
        BenefitFactory()  # and its budget and department
        MemberFactory()  # and its branch
    client.force_login(staff["auditor"])

    # Per page: the count, the keys, one per history table on the page, the users; never
    # one per row.
    with django_assert_max_num_queries(20):
        response = client.get("/audit/")

    assert len(response.context["page"].object_list) == 50


@pytest.mark.postgres
def test_a_long_history_is_listed_newest_first_up_to_a_cap(client, staff, monkeypatch):
    monkeypatch.setattr(audit.FieldChangeList, "COUNT_CAP", 5)
    MemberFactory()
    MemberFactory()

    everything = audit_page(client, staff["auditor"])  # users, branches… more than five
    members = audit_page(client, staff["auditor"], model="members.member")

    assert everything.context["page"].paginator.count == 5
    assert b"Only the newest 5 changes are listed" in everything.content
    assert members.context["page"].paginator.count == 2
    assert b"Only the newest" not in members.content


def test_without_postgresql_the_page_says_so_and_lists_the_recorded_actions(
    client, staff, monkeypatch
):
    # What the page does on SQLite (the demo), where no trigger records field changes.
    assert audit.field_trail_available(SimpleNamespace(vendor="sqlite")) is False
    assert audit.field_trail_available(SimpleNamespace(vendor="postgresql")) is True
    monkeypatch.setattr(audit, "field_trail_available", lambda db=None: False)
    audit_record(actor=staff["am"], action="member.reveal")

    response = audit_page(client, staff["auditor"], tab="changes")

    assert response.status_code == 200
    assert b"The field-level audit trail requires PostgreSQL" in response.content
    assert response.context["tab"] == "actions"
    assert [entry.action for entry, _ in response.context["page"].object_list] == ["member.reveal"]


def test_history_models_cover_configuration_and_member_data():
    tracked = {model.pgh_tracked_model._meta.label for model in audit.history_models()}

    assert tracked == {
        "members.TierScheme",
        "members.Tier",
        "members.PointsIndicator",
        "members.Segment",
        "members.Member",
        "members.TierOverride",
        "members.FollowUpNote",
        "campaigns.Campaign",
        "campaigns.Task",
        "campaigns.TaskStep",
        "benefits.Benefit",
        "benefits.TierEntitlement",
        "benefits.TierEntitlementDecision",
        "benefits.Budget",
        "benefits.BenefitGrant",
        "benefits.ManualGrantRequest",
        "portal.ApprovalRequest",
        "portal.User",
        "portal.Branch",
        "portal.Department",
        "portal.ApiToken",
    }


def test_changing_a_users_roles_in_the_admin_is_audited_with_what_changed(client, make_user):
    from django.contrib.auth.models import Group

    admin_user = make_user(Role.ADMINISTRATOR, username="it_admin", branch="HO")
    staff = make_user(Role.ACCOUNT_MANAGER, username="am_promoted")
    client.force_login(admin_user)
    joined = timezone.localtime(staff.date_joined)

    response = client.post(
        f"/admin/portal/user/{staff.pk}/change/",
        {
            "username": staff.username,
            "is_active": "on",
            "groups": [Group.objects.get(name=str(Role.BRANCH_MANAGER)).pk],
            "date_joined_0": joined.date().isoformat(),
            "date_joined_1": joined.strftime("%H:%M:%S"),
            "branch": staff.branch_id,
            "department": staff.department_id,
        },
    )

    assert response.status_code == 302, response.content.decode()[:2000]
    entry = AuditEntry.objects.get(action="user.roles", object_id=str(staff.pk))
    assert entry.actor == admin_user
    assert entry.changes == {
        "granted": [str(Role.BRANCH_MANAGER)],
        "withdrawn": [str(Role.ACCOUNT_MANAGER)],
    }


@pytest.mark.postgres
def test_changes_made_by_a_feed_import_name_the_feed_in_the_trail(
    client, make_user, org, import_csv
):
    auditor = make_user(Role.RISK_AUDITOR, username="auditor_jobs", branch="HO")

    import_csv("members", MEMBERS_FEED, name="members_20261127.csv")

    client.force_login(auditor)
    page = client.get("/audit/?model=members.member").content.decode()
    assert "FEEDJOB1" in page
    assert "feed members members_20261127.csv" in page  # "From": the feed that did it


MEMBERS_FEED = (
    "member_no,name,phone,id_number,birth_date,registered_at,branch_code,manager_username,"
    "credit_risk\n"
    "FEEDJOB1,新客户,13812345678,110101199003071234,1990-03-07,2026-10-01,B01S1,,0\n"
)
