"""The account manager's workbench (home page) and follow-up notes: the lists an account
manager acts on, over their own customers only, with a bounded number of queries."""

from __future__ import annotations

from datetime import datetime, time, timedelta

import pytest
from django.urls import reverse

from members.models import FollowUpNote
from members.worklists import active_tiers
from portal.choices import Role
from portal.clock import today_in_shanghai
from portal.models import AuditEntry
from tests.factories import BenefitFactory, MemberFactory


@pytest.fixture
def desk(org, make_user):
    """Two account managers of one sub-branch and a product operator."""
    return {
        "am": make_user(Role.ACCOUNT_MANAGER, username="am_li", branch="B01S1"),
        "other_am": make_user(Role.ACCOUNT_MANAGER, username="am_wang", branch="B01S1"),
        "po": make_user(Role.PRODUCT_OPERATOR, username="po", branch="HO"),
    }


def customer(desk, org, owner: str = "am", **fields):
    return MemberFactory(branch=org["B01S1"], account_manager=desk[owner], **fields)


def home(client, user) -> str:
    client.force_login(user)
    response = client.get(reverse("home"), HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 200
    return response.content.decode()


def section(page: str, name: str) -> str:
    start = page.index(f'id="list-{name}"')
    return page[start : page.index("</section>", start)]


def test_about_to_upgrade_lists_customers_within_ten_percent_of_the_next_tier(client, desk, org):
    base, second = active_tiers()[:2]
    near = customer(desk, org, tier=base, tier_basis=second.threshold - 123_456)
    far = customer(desk, org, tier=base, tier_basis=int(second.threshold * 0.5))
    not_mine = customer(desk, org, "other_am", tier=base, tier_basis=second.threshold - 1)

    upgrade = section(home(client, desk["am"]), "upgrade")

    assert near.member_no in upgrade
    assert far.member_no not in upgrade
    assert not_mine.member_no not in upgrade
    assert second.threshold * 0.1 > 123_456  # within 10 %
    assert "CNY 1,234.56" in upgrade  # still needed for the next tier (MADA), in English


def test_dormant_downgrade_and_new_lists_show_what_the_am_acts_on(client, desk, org):
    tiers = active_tiers()
    today = today_in_shanghai()
    sleeper = customer(desk, org, lifecycle_stage="DORMANT", last_active_on=today - timedelta(200))
    slipping = customer(
        desk, org, tier=tiers[2], tier_basis=tiers[1].threshold, tier_months_below=2
    )
    fresh = customer(
        desk,
        org,
        registered_at=datetime.combine(today.replace(day=1), time(9)).astimezone(),
        lifecycle_stage="NEW",
    )
    customer(desk, org, "other_am", lifecycle_stage="DORMANT")

    page = home(client, desk["am"])

    dormant = section(page, "dormant")
    assert sleeper.member_no in dormant and dormant.count("/members/M") == 1
    downgrade = section(page, "downgrade")
    assert slipping.member_no in downgrade and "<td>2</td>" in downgrade
    assert fresh.member_no in section(page, "new")


def test_unredeemed_benefits_expiring_soon_are_listed(client, desk, org):
    from benefits.services import grant_create

    member = customer(desk, org)
    lounge = BenefitFactory(name="机场贵宾厅", name_en="Airport lounge")
    grant_create(
        member=member,
        benefit=lounge,
        budget=lounge.budget,
        source="MANUAL",
        idempotency_key="soon",
        expires_on=today_in_shanghai() + timedelta(days=3),
        actor=None,
    )

    expiring = section(home(client, desk["am"]), "expiring")

    assert (
        member.member_no in expiring and "Airport lounge" in expiring
    )  # its English name, in English


def test_an_am_adds_a_follow_up_note_sees_it_due_and_marks_it_done(client, desk, org):
    member = customer(desk, org, name="张三")
    client.force_login(desk["am"])
    due = today_in_shanghai() + timedelta(days=2)

    client.post(
        reverse("members:note-add", args=[member.member_no]),
        {"text": "Call about the fund maturing", "due_on": due.isoformat()},
    )

    note = FollowUpNote.objects.get(member=member)
    assert (note.author, note.due_on, note.done_at) == (desk["am"], due, None)
    assert AuditEntry.objects.filter(action="note.add", actor=desk["am"]).exists()
    page = home(client, desk["am"])
    followups = page[page.index('id="followups"') :]
    assert "Call about the fund maturing" in followups and member.member_no in followups
    detail = client.get(reverse("members:detail", args=[member.member_no])).content.decode()
    assert "Call about the fund maturing" in detail

    client.post(reverse("members:note-done", args=[member.member_no, note.pk]), {"next": "home"})

    note.refresh_from_db()
    assert note.done_at is not None
    assert "Call about the fund maturing" not in home(client, desk["am"])


def test_notes_are_refused_outside_the_ams_customers_and_to_other_roles(client, desk, org):
    theirs = customer(desk, org, "other_am")
    mine = customer(desk, org)
    url = reverse("members:note-add", args=[theirs.member_no])

    client.force_login(desk["am"])
    assert client.post(url, {"text": "peek"}).status_code == 404
    client.force_login(desk["po"])
    assert (
        client.post(reverse("members:note-add", args=[mine.member_no]), {"text": "x"}).status_code
        == 403
    )
    assert not FollowUpNote.objects.exists()


def test_a_follow_up_date_in_the_past_is_refused_with_a_reason(client, desk, org):
    member = customer(desk, org)
    client.force_login(desk["am"])

    response = client.post(
        reverse("members:note-add", args=[member.member_no]),
        {"text": "late", "due_on": (today_in_shanghai() - timedelta(days=1)).isoformat()},
        HTTP_ACCEPT_LANGUAGE="en",
        follow=True,
    )

    assert "cannot be in the past" in response.content.decode()
    assert not FollowUpNote.objects.exists()


def test_only_the_author_closes_a_follow_up(client, desk, org, make_user):
    bm = make_user(Role.BRANCH_MANAGER, username="bm", branch="B01")
    member = customer(desk, org)
    client.force_login(desk["am"])
    client.post(reverse("members:note-add", args=[member.member_no]), {"text": "mine"})
    note = FollowUpNote.objects.get()

    client.force_login(bm)
    response = client.post(reverse("members:note-done", args=[member.member_no, note.pk]))

    assert response.status_code == 404
    note.refresh_from_db()
    assert note.done_at is None


def test_the_worklist_filter_of_the_customer_list_matches_the_workbench(client, desk, org):
    sleeper = customer(desk, org, lifecycle_stage="DORMANT")
    awake = customer(desk, org, lifecycle_stage="ACTIVE")
    client.force_login(desk["am"])

    page = client.get(reverse("members:list") + "?worklist=dormant").content.decode()

    assert sleeper.member_no in page and awake.member_no not in page


def test_the_workbench_costs_the_same_queries_for_3_or_30_customers(
    client, desk, org, django_assert_max_num_queries
):
    tiers = active_tiers()

    def populate(count: int) -> None:
        for number in range(count):
            customer(
                desk,
                org,
                lifecycle_stage="DORMANT" if number % 2 else "NEW",
                tier=tiers[number % 2],
                tier_basis=int(tiers[1].threshold * 0.95),
                tier_months_below=number % 3,
            )
            FollowUpNote.objects.create(
                member=desk["am"].pk and MemberFactory(account_manager=desk["am"]),
                author=desk["am"],
                text="x",
                due_on=today_in_shanghai(),
            )

    populate(3)
    client.force_login(desk["am"])
    with django_assert_max_num_queries(40) as few:
        client.get(reverse("home"))
    populate(27)
    with django_assert_max_num_queries(len(few.captured_queries)):
        client.get(reverse("home"))


@pytest.mark.parametrize("role", [r for r in Role if r != Role.SYSTEM])
def test_every_staff_role_gets_a_home_page(client, make_user, role):
    client.force_login(make_user(role))

    assert client.get(reverse("home")).status_code == 200
