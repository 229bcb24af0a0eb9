"""Object-level scoping on every surface (issue 7): an account manager sees and acts on only
their own customers, a branch manager their branch and its sub-branches, head-office roles
everything; pages, API and admin alike. Another customer's member_no or id gives 404 (the
admin: its "does not exist" redirect), never their data.

The world: two branches, each with a sub-branch; account manager 1 in B01S1 and account
manager 2 in B02S1, each with a customer; one customer without a manager in each branch; a
branch manager of B01; a product operator (head office). Every customer has a grant, a
points entry, a tier change and override, a member event, task progress and a completion,
a manual grant request and an account manager's note (benefit feedback).

Scoping itself is `members.selectors.member_scope`; these tests only check that every
surface goes through it, the reveal of personal data, the marketing opt-out and the CSV
exports included (their own behaviour: tests/members/test_personal_data.py and
test_exports.py). `test_no_url_exports_members_or_shows_one_customer_untested` fails when a
customer URL or an export appears without a test here.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib import admin
from django.contrib.auth.models import Group
from django.db import models
from django.test import RequestFactory
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone

from benefits.choices import GrantSource, GrantStatus
from benefits.models import BenefitFeedback, BenefitGrant, ManualGrantRequest
from campaigns.choices import RewardStatus
from campaigns.models import EventBatch, MemberEvent, TaskCompletion, TaskProgress
from members.choices import PointsEntryKind, TierChangeCause
from members.models import FollowUpNote, Member, PointsEntry, Tier, TierChange, TierOverride
from portal.choices import Role
from portal.clock import today_in_shanghai
from portal.models import AuditEntry
from tests.factories import BenefitFactory, MemberFactory, SegmentFactory, TaskFactory

#: customer key -> who may see them (besides head office)
CUSTOMERS = {
    "am1": ("M1000001", "B01S1"),  # account manager 1's customer
    "b01": ("M1000002", "B01"),  # branch 1, no account manager
    "am2": ("M2000001", "B02S1"),  # account manager 2's customer
    "b02": ("M2000002", "B02"),  # branch 2, no account manager
}
ALL = {number for number, _branch in CUSTOMERS.values()}
#: staff key -> the member_nos in their scope
SCOPE = {
    "am1": {"M1000001"},
    "am2": {"M2000001"},
    "bm1": {"M1000001", "M1000002"},
    "ho": ALL,
}


def _number(key: str) -> str:
    return CUSTOMERS[key][0]


@pytest.fixture
def staff(make_user):
    return {
        "am1": make_user(Role.ACCOUNT_MANAGER, username="am1", branch="B01S1"),
        "am2": make_user(Role.ACCOUNT_MANAGER, username="am2", branch="B02S1"),
        "bm1": make_user(Role.BRANCH_MANAGER, username="bm1", branch="B01"),
        "ho": make_user(Role.PRODUCT_OPERATOR, username="ho_operator", branch="HO"),
        "approver": make_user(Role.BUDGET_APPROVER, username="approver", branch="HO"),
    }


@pytest.fixture
def world(org, staff):
    """Every customer with one row of each kind of per-customer data."""
    today = today_in_shanghai()
    benefit = BenefitFactory(code="LOUNGE")
    task = TaskFactory()
    tier = Tier.objects.filter(scheme__status="ACTIVE").order_by("rank").first()
    batch = EventBatch.objects.create(received=4, accepted=4, duplicates=0, rejected=0)
    managers = {"am1": staff["am1"], "am2": staff["am2"]}
    rows: dict[str, dict] = {}
    for key, (number, branch) in CUSTOMERS.items():
        member = MemberFactory(
            member_no=number,
            name=f"客户{number}",
            branch=org[branch],
            account_manager=managers.get(key),
        )
        author = managers.get(key, staff["bm1"])
        rows[key] = {
            "member": member,
            "grant": BenefitGrant.objects.create(
                member=member,
                benefit=benefit,
                budget=benefit.budget,
                source=GrantSource.MANUAL,
                cost_fen=benefit.unit_cost_fen,
                idempotency_key=f"idor-{number}",
                expires_on=today + timedelta(days=30),
            ),
            "points": PointsEntry.objects.create(
                member=member,
                kind=PointsEntryKind.EARN,
                points=100,
                remaining=100,
                business_date=today,
                idempotency_key=f"idor-points-{number}",
            ),
            "tier_change": TierChange.objects.create(
                member=member, to_tier=tier, cause=TierChangeCause.INITIAL, business_date=today
            ),
            "override": TierOverride.objects.create(
                member=member,
                tier=tier,
                reason="VIP",
                expires_on=today + timedelta(days=30),
                requested_by=author,
            ),
            "event": MemberEvent.objects.create(
                event_id=f"idor-ev-{number}",
                member=member,
                type="SIGN_IN",
                occurred_at=batch.received_at,
                occurred_on=today,
                batch=batch,
                received_at=batch.received_at,
            ),
            "progress": TaskProgress.objects.create(
                member=member,
                task=task,
                period_key="once",
                period_start=today,
                period_end=today,
                value=1,
                stage_at_start="ACTIVE",
            ),
            "completion": TaskCompletion.objects.create(
                member=member,
                task=task,
                campaign=task.campaign,
                period_key="once",
                reward_status=RewardStatus.NO_REWARD,
                stage_at_start="ACTIVE",
            ),
            "grant_request": ManualGrantRequest.objects.create(
                member=member,
                benefit=benefit,
                budget=benefit.budget,
                reason=f"complaint of {number}",
                requested_by=author,
            ),
            "note": BenefitFeedback.objects.create(
                member=member,
                benefit=benefit,
                useful=False,
                reason=f"note on {number}",
                author=author,
            ),
        }
    return rows


def _with_admin_entry(user):
    """The same user, also a budget approver: the only way an account or branch manager gets
    into the admin (`portal.access_admin`); their member scope stays their own."""
    user.groups.add(Group.objects.get(name=str(Role.BUDGET_APPROVER)))
    if hasattr(user, "_role_cache"):
        del user._role_cache
    return user


# --- pages ---------------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["am1", "am2", "bm1", "ho"])
def test_customer_list_page_shows_exactly_the_scope(client, staff, world, who):
    client.force_login(staff[who])

    response = client.get("/members/")

    assert response.status_code == 200
    assert {m.member_no for m in response.context["page"].object_list} == SCOPE[who]
    for number in ALL - SCOPE[who]:
        assert number not in response.content.decode()


def test_head_office_roles_get_no_work_lists_over_the_whole_bank(client, staff, world):
    client.force_login(staff["ho"])

    response = client.get("/")

    assert response.status_code == 200
    assert response.context["lists"] == []


@pytest.mark.parametrize("who", ["am1", "am2", "bm1"])
def test_workbench_lists_and_counts_only_the_scope(client, staff, world, who):
    Member.objects.update(lifecycle_stage="DORMANT", registered_at=timezone.now())
    client.force_login(staff[who])

    response = client.get("/")

    page = response.content.decode()
    by_name = {worklist["name"]: worklist for worklist in response.context["lists"]}
    for name in ("dormant", "new"):
        assert by_name[name]["count"] == len(SCOPE[who])
        assert {member.member_no for member in by_name[name]["rows"]} == SCOPE[who]
    for number in ALL - SCOPE[who]:
        assert number not in page


@pytest.mark.parametrize("who", ["am1", "am2", "bm1"])
@pytest.mark.parametrize("customer", list(CUSTOMERS))
def test_notes_are_written_only_on_customers_in_scope(client, staff, world, who, customer):
    client.force_login(staff[who])
    number = _number(customer)

    response = client.post(f"/members/{number}/notes/", {"text": "called"})

    if number in SCOPE[who]:
        assert response.status_code == 302
        assert FollowUpNote.objects.filter(member__member_no=number, author=staff[who]).exists()
    else:
        assert response.status_code == 404
        assert not FollowUpNote.objects.filter(member__member_no=number).exists()


@pytest.mark.parametrize("customer", list(CUSTOMERS))
def test_benefit_feedback_is_recorded_only_for_customers_in_scope(client, staff, world, customer):
    client.force_login(staff["am1"])
    number = _number(customer)
    before = BenefitFeedback.objects.filter(member__member_no=number).count()

    response = client.post(
        f"/members/{number}/feedback/",
        {"benefit": BenefitFactory().pk, "useful": "no", "reason": "never flies"},
    )

    after = BenefitFeedback.objects.filter(member__member_no=number).count()
    if number in SCOPE["am1"]:
        assert (response.status_code, after) == (302, before + 1)
    else:
        assert (response.status_code, after) == (404, before)


def test_a_note_cannot_be_closed_through_another_customers_url(client, staff, world):
    theirs = FollowUpNote.objects.create(
        member=Member.objects.get(member_no=_number("am2")),
        author=staff["am2"],
        text="due",
        due_on=today_in_shanghai(),
    )
    client.force_login(staff["am1"])

    for number in (_number("am1"), _number("am2")):
        response = client.post(f"/members/{number}/notes/{theirs.pk}/done/")
        assert response.status_code == 404
    theirs.refresh_from_db()
    assert theirs.done_at is None


@pytest.mark.parametrize("who", ["am1", "am2", "bm1", "ho"])
@pytest.mark.parametrize("customer", list(CUSTOMERS))
def test_customer_page_opens_in_scope_and_is_404_outside(client, staff, world, who, customer):
    client.force_login(staff[who])
    number = _number(customer)

    response = client.get(f"/members/{number}/")

    if number in SCOPE[who]:
        assert response.status_code == 200
    else:
        assert response.status_code == 404
        assert f"客户{number}" not in response.content.decode()


def test_account_manager_cannot_request_a_tier_override_for_another_customer(client, staff, world):
    client.force_login(staff["am1"])
    tier = world["am2"]["override"].tier

    response = client.post(
        f"/members/{_number('am2')}/override/",
        {"tier": tier.pk, "reason": "x", "expires_on": today_in_shanghai() + timedelta(days=9)},
    )

    assert response.status_code == 404
    assert TierOverride.objects.filter(member=world["am2"]["member"]).count() == 1


def test_branch_manager_cannot_decide_an_override_in_another_branch(client, staff, world):
    client.force_login(staff["bm1"])
    override = world["am2"]["override"]

    response = client.post(f"/members/overrides/{override.pk}/decide/", {"approve": "on"})

    assert response.status_code == 404
    override.refresh_from_db()
    assert override.status == "PENDING" and override.decided_by is None


@pytest.mark.parametrize(("who", "customer"), [("am1", "am2"), ("am1", "b01"), ("bm1", "am2")])
def test_revealing_a_customer_outside_the_scope_is_404_and_not_audited(
    client, staff, world, who, customer
):
    client.force_login(staff[who])

    response = client.post(f"/members/{_number(customer)}/reveal/", {"reason": "curious"})

    assert response.status_code == 404
    assert world[customer]["member"].phone not in response.content.decode()
    assert not AuditEntry.objects.filter(action="member.reveal").exists()


@pytest.mark.parametrize(("who", "customer"), [("am1", "am2"), ("am1", "b01"), ("bm1", "b02")])
def test_recording_an_opt_out_outside_the_scope_is_404_and_changes_nothing(
    client, staff, world, who, customer
):
    client.force_login(staff[who])

    response = client.post(f"/members/{_number(customer)}/opt-out/", {"opted_out": "1"})

    assert response.status_code == 404
    assert not Member.objects.get(member_no=_number(customer)).marketing_opt_out


def _csv_member_numbers(response) -> set[str]:
    lines = b"".join(response.streaming_content).decode("utf-8-sig").splitlines()
    return {line.split(",")[0] for line in lines[1:]}


@pytest.mark.parametrize("who", ["bm1", "ho"])
def test_member_export_holds_exactly_the_scope(client, staff, world, who):
    client.force_login(staff[who])

    response = client.get("/members/export.csv")

    assert response.status_code == 200
    assert _csv_member_numbers(response) == SCOPE[who]


@pytest.mark.parametrize("who", ["bm1", "ho"])
def test_segment_export_holds_only_the_segment_in_the_scope(client, staff, world, who):
    everyone = SegmentFactory(rules=[])
    client.force_login(staff[who])

    response = client.get(f"/members/segments/{everyone.pk}/export.csv")

    assert response.status_code == 200
    assert _csv_member_numbers(response) == SCOPE[who]


@pytest.mark.parametrize("url", ["/members/export.csv", "/members/segments/{pk}/export.csv"])
def test_account_managers_export_nothing(client, staff, world, url):
    client.force_login(staff["am1"])

    response = client.get(url.format(pk=SegmentFactory().pk))

    assert response.status_code == 403
    assert not AuditEntry.objects.filter(action__endswith=".export").exists()


# --- API -------------------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["am1", "am2", "bm1", "ho"])
def test_staff_member_list_api_returns_exactly_the_scope(api_client_for, staff, world, who):
    response = api_client_for(staff[who]).get("/api/v1/members/")

    assert response.status_code == 200
    assert {row["member_no"] for row in response.json()["results"]} == SCOPE[who]


@pytest.mark.parametrize("who", ["am1", "am2", "bm1", "ho"])
@pytest.mark.parametrize("customer", list(CUSTOMERS))
def test_member_centre_api_is_404_outside_the_scope(api_client_for, staff, world, who, customer):
    number = _number(customer)

    response = api_client_for(staff[who]).get(f"/api/v1/members/{number}/")

    if number in SCOPE[who]:
        assert response.status_code == 200
        assert response.json()["member_no"] == number
    else:
        assert response.status_code == 404
        assert "grants" not in response.json()


@pytest.mark.parametrize("who", ["am1", "bm1"])
def test_redeeming_another_branchs_grant_is_404_and_changes_nothing(
    api_client_for, staff, world, who
):
    client = api_client_for(staff[who])
    theirs = world["am2"]["grant"]
    own_number = _number("am1")

    by_their_number = client.post(f"/api/v1/members/{_number('am2')}/grants/{theirs.pk}/redeem/")
    by_own_number = client.post(f"/api/v1/members/{own_number}/grants/{theirs.pk}/redeem/")

    assert by_their_number.status_code == 404
    assert by_own_number.status_code == 404
    theirs.refresh_from_db()
    assert theirs.status == GrantStatus.GRANTED and theirs.redeemed_at is None


def test_account_manager_redeems_their_own_customers_grant(api_client_for, staff, world):
    grant = world["am1"]["grant"]

    response = api_client_for(staff["am1"]).post(
        f"/api/v1/members/{_number('am1')}/grants/{grant.pk}/redeem/"
    )

    assert response.status_code == 200
    assert response.json()["status"] == GrantStatus.REDEEMED


# --- admin -------------------------------------------------------------------------------------

#: admin list URL -> the row kind of `world` it lists
ADMIN_PAGES = {
    "/admin/members/member/": "member",
    "/admin/members/pointsentry/": "points",
    "/admin/members/tierchange/": "tier_change",
    "/admin/members/tieroverride/": "override",
    "/admin/benefits/benefitgrant/": "grant",
    "/admin/benefits/benefitfeedback/": "note",
    "/admin/campaigns/memberevent/": "event",
    "/admin/campaigns/taskcompletion/": "completion",
}
#: who enters the admin for the test: managers as budget approvers too, head office as is
ADMIN_USERS = ["am1", "bm1", "ho"]


def _admin_user(staff, who):
    return staff[who] if who == "ho" else _with_admin_entry(staff[who])


def _member_no(row) -> str:
    return row.member_no if isinstance(row, Member) else row.member.member_no


@pytest.mark.parametrize("who", ADMIN_USERS)
@pytest.mark.parametrize("url", list(ADMIN_PAGES))
def test_admin_lists_only_rows_of_customers_in_scope(client, staff, world, who, url):
    client.force_login(_admin_user(staff, who))

    response = client.get(url)

    if response.status_code == 403:  # the page's action is head office only (member events…)
        assert who != "ho"
        return
    assert response.status_code == 200
    assert {_member_no(row) for row in response.context["cl"].result_list} == SCOPE[who]


@pytest.mark.parametrize("who", ADMIN_USERS)
@pytest.mark.parametrize("url", list(ADMIN_PAGES))
@pytest.mark.parametrize("customer", list(CUSTOMERS))
def test_admin_change_page_of_a_row_outside_the_scope_does_not_open(
    client, staff, world, who, url, customer
):
    client.force_login(_admin_user(staff, who))
    row = world[customer][ADMIN_PAGES[url]]

    response = client.get(f"{url}{row.pk}/change/")

    if response.status_code == 403:
        assert who != "ho"
        return
    if _number(customer) in SCOPE[who]:
        assert response.status_code == 200
    else:
        assert response.status_code == 302  # the admin's "does not exist" redirect
        assert response["Location"] == "/admin/"
        followed = client.get(f"{url}{row.pk}/change/", follow=True).content.decode()
        assert f"客户{_number(customer)}" not in followed


def test_admin_search_finds_no_customer_outside_the_scope(client, staff, world):
    client.force_login(_with_admin_entry(staff["am1"]))

    for url in ["/admin/members/member/", "/admin/benefits/benefitgrant/"]:
        response = client.get(url, {"q": _number("am2")})
        assert list(response.context["cl"].result_list) == []


def _member_lookup(model) -> str | None:
    """How a registered model reaches the member it is about (None: it is not about one)."""
    if model is Member:
        return "member_no"
    for field in model._meta.get_fields():
        if isinstance(field, models.ForeignKey) and field.related_model is Member:
            return f"{field.name}__member_no"
    return None


MEMBER_ADMINS = sorted(
    (
        (model, model_admin)
        for model, model_admin in admin.site._registry.items()
        if _member_lookup(model)
    ),
    key=lambda pair: pair[0]._meta.label,
)


@pytest.mark.parametrize("who", ["am1", "am2", "bm1", "ho"])
@pytest.mark.parametrize(
    ("model", "model_admin"), MEMBER_ADMINS, ids=[m._meta.label for m, _a in MEMBER_ADMINS]
)
def test_every_admin_about_members_is_scoped_by_member_scope(staff, world, who, model, model_admin):
    """Not only the pages a role can open today: every model admin whose rows belong to a
    customer narrows its queryset to the user's scope, so a new role combination or a new
    admin cannot widen it."""
    request = RequestFactory().get("/admin/")
    request.user = staff[who]

    seen = set(model_admin.get_queryset(request).values_list(_member_lookup(model), flat=True))

    assert seen == SCOPE[who], model._meta.label


def test_budget_approvers_queue_of_manual_grants_is_bank_wide(staff, world):
    """A budget approver decides manual grant requests from every branch (maker-checker); to
    everyone else the requests are scoped like the customers."""
    request = RequestFactory().get("/admin/")
    request.user = staff["approver"]

    queue = admin.site._registry[ManualGrantRequest].get_queryset(request)

    assert {grant_request.member.member_no for grant_request in queue} == ALL


# --- every surface is covered ------------------------------------------------------------------

#: url names that show or change one customer's data, each tested above
CUSTOMER_URLS = {
    "members:detail",
    "members:override-request",
    "members:reveal",
    "members:opt-out",
    "members:note-add",
    "members:note-done",
    "members:feedback",
    "api-member-centre",
    "api-grant-redeem",
}

#: url names of member exports, each tested above
EXPORT_URLS = {"members:export", "members:segment-export"}


def _walk(patterns, namespaces: tuple[str, ...] = (), prefix: str = ""):
    for entry in patterns:
        if isinstance(entry, URLResolver):
            namespace = (entry.namespace,) if entry.namespace else ()
            yield from _walk(
                entry.url_patterns, namespaces + namespace, prefix + str(entry.pattern)
            )
        else:
            assert isinstance(entry, URLPattern)
            yield prefix + str(entry.pattern), ":".join([*namespaces, entry.name or "?"]), entry


def test_no_url_exports_members_or_shows_one_customer_untested():
    for route, name, pattern in _walk(get_resolver().url_patterns):
        if route.startswith("admin/"):
            continue  # every admin about members: test_every_admin_about_members_is_scoped…
        view = getattr(pattern.callback, "cls", pattern.callback)
        action = getattr(view, "action_required", None)
        if "export" in route or action == "members.export_members":
            assert name in EXPORT_URLS, (
                f"{route}: a member export needs IDOR tests here (scoped by member_scope)"
            )
        if "member_no" in route:
            assert name in CUSTOMER_URLS, f"{route}: a customer URL without IDOR tests here"
