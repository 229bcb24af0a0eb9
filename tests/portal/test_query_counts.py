"""Every list page renders with a number of queries that does not grow with the data: each
page is rendered over a small world, the world grows tenfold, and the page must not run more
queries than before (an N+1 shows up as a failure naming the page)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta

import pytest
from django.urls import reverse

from benefits.services import grant_create
from members.models import FeedRejection, PointsEntry, Tier, TierChange, TierScheme
from portal.choices import Role
from portal.clock import today_in_shanghai
from tests.factories import (
    BenefitFactory,
    BudgetFactory,
    CampaignFactory,
    FeedBatchFactory,
    JobRunFactory,
    MemberFactory,
    MemberMonthlyStatFactory,
    TaskFactory,
)


def assert_flat_queries(client, url: str, grow: Callable[[int], None], assert_max) -> None:
    """Render `url` after `grow(3)`, then after `grow(27)` more: no more queries the second
    time (the first render is warmed once so caches of the first request don't count)."""
    grow(3)
    assert client.get(url).status_code == 200
    with assert_max(500) as small:
        assert client.get(url).status_code == 200
    grow(27)
    with assert_max(len(small.captured_queries)):
        assert client.get(url).status_code == 200


@pytest.fixture
def am(org, make_user, client):
    user = make_user(Role.ACCOUNT_MANAGER, username="am_qc", branch="B01S1")
    client.force_login(user)
    return user


def test_customer_list(client, org, am, django_assert_max_num_queries):
    tier = Tier.objects.filter(scheme__status="ACTIVE").first()

    def grow(n: int) -> None:
        for _ in range(n):
            MemberFactory(branch=org["B01S1"], account_manager=am, tier=tier)

    assert_flat_queries(client, reverse("members:list"), grow, django_assert_max_num_queries)


def test_customer_page_with_history_ledger_grants_and_notes(
    client, org, am, django_assert_max_num_queries
):
    from members.models import FollowUpNote

    member = MemberFactory(branch=org["B01S1"], account_manager=am)
    tiers = list(Tier.objects.filter(scheme__status="ACTIVE").order_by("rank"))
    benefit = BenefitFactory()
    months = [date(2025, m, 1) for m in range(1, 13)] + [date(2026, m, 1) for m in range(1, 13)]
    counter = {"n": 0}

    def grow(n: int) -> None:
        for _ in range(n):
            i = counter["n"] = counter["n"] + 1
            TierChange.objects.create(
                member=member,
                from_tier=tiers[i % 2],
                to_tier=tiers[(i + 1) % 2],
                cause="RECOMPUTE",
                business_date=date(2026, 1, 1) + timedelta(days=i),
            )
            PointsEntry.objects.create(
                member=member,
                kind="EARN",
                points=10,
                remaining=10,
                business_date=date(2026, 1, 1),
                idempotency_key=f"qc-{i}",
            )
            grant_create(
                member=member,
                benefit=benefit,
                budget=benefit.budget,
                source="MANUAL",
                idempotency_key=f"qc-grant-{i}",
                expires_on=today_in_shanghai() + timedelta(days=30),
                actor=None,
            )
            FollowUpNote.objects.create(member=member, author=am, text=f"note {i}")
            if i <= len(months):
                MemberMonthlyStatFactory(member=member, month=months[i - 1])
            TaskFactory(campaign=CampaignFactory())

    assert_flat_queries(
        client,
        reverse("members:detail", args=[member.member_no]),
        grow,
        django_assert_max_num_queries,
    )


@pytest.fixture
def head_office(make_user, client):
    def login(role: Role):
        user = make_user(role, branch="HO")
        client.force_login(user)
        return user

    return login


def test_feed_batches_and_rejected_rows(
    client, head_office, make_user, django_assert_max_num_queries
):
    head_office(Role.PRODUCT_OPERATOR)
    assert_flat_queries(
        client,
        reverse("members:feeds"),
        lambda n: [
            FeedBatchFactory(imported_by=make_user(Role.PRODUCT_OPERATOR)) for _ in range(n)
        ],
        django_assert_max_num_queries,
    )
    batch = FeedBatchFactory(rejected=1)

    def grow(n: int) -> None:
        start = FeedRejection.objects.filter(batch=batch).count()
        FeedRejection.objects.bulk_create(
            FeedRejection(batch=batch, line_no=start + i + 2, reason="bad date", raw="x")
            for i in range(n)
        )

    assert_flat_queries(
        client, reverse("members:feed-detail", args=[batch.pk]), grow, django_assert_max_num_queries
    )


def test_job_runs(client, head_office, make_user, django_assert_max_num_queries):
    head_office(Role.ADMINISTRATOR)

    assert_flat_queries(
        client,
        reverse("jobruns"),
        lambda n: [
            JobRunFactory(counts={"rows": i}, triggered_by=make_user(Role.ADMINISTRATOR))
            for i in range(n)
        ],
        django_assert_max_num_queries,
    )


def test_tier_scheme_simulation(client, org, head_office, django_assert_max_num_queries):
    head_office(Role.PRODUCT_OPERATOR)
    scheme = TierScheme.objects.get(code="DEFAULT_POINTS")

    assert_flat_queries(
        client,
        reverse("members:scheme-simulate", args=[scheme.pk]),
        lambda n: [MemberFactory(branch=org["B01S1"]) for _ in range(n)],
        django_assert_max_num_queries,
    )


def _admin_rows(model: str) -> Callable[[int], None]:
    def grow(n: int) -> None:
        for _ in range(n):
            if model == "budget":
                BudgetFactory()
            elif model == "benefit":
                BenefitFactory()
            elif model == "campaign":
                TaskFactory(campaign=CampaignFactory())
            elif model == "benefitgrant":
                benefit = BenefitFactory()
                grant_create(
                    member=MemberFactory(),
                    benefit=benefit,
                    budget=benefit.budget,
                    source="MANUAL",
                    idempotency_key=f"adm-{benefit.pk}",
                    expires_on=today_in_shanghai() + timedelta(days=9),
                    actor=None,
                )
            elif model == "member":
                MemberFactory()
            elif model == "tierchange":
                tiers = Tier.objects.filter(scheme__status="ACTIVE").order_by("rank")
                TierChange.objects.create(
                    member=MemberFactory(),
                    to_tier=tiers[0],
                    cause="INITIAL",
                    business_date=date(2026, 1, 1),
                )

    return grow


@pytest.mark.parametrize(
    ("app", "model"),
    [
        ("benefits", "budget"),
        ("benefits", "benefit"),
        ("benefits", "benefitgrant"),
        ("campaigns", "campaign"),
        ("members", "member"),
        ("members", "tierchange"),
    ],
)
def test_admin_lists(client, make_user, app, model, django_assert_max_num_queries):
    client.force_login(make_user(None, is_superuser=True, is_staff=True, branch="HO"))

    assert_flat_queries(
        client,
        reverse(f"admin:{app}_{model}_changelist"),
        _admin_rows(model),
        django_assert_max_num_queries,
    )
