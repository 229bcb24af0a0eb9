"""factory_boy factories for every model; tests build their world from these."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import factory
from django.contrib.auth.models import Group

from members.choices import FeedKind, FeedStatus
from members.models import FeedBatch, Member, MemberMonthlyStat, MemberTierBasis
from portal.choices import BranchLevel, Role
from portal.models import Branch, Department, JobRun, User

SHANGHAI = ZoneInfo("Asia/Shanghai")


class DepartmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Department
        django_get_or_create = ["code"]

    code = factory.Sequence(lambda n: f"D{n:02d}")
    name = factory.LazyAttribute(lambda o: f"Department {o.code}")


class BranchFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Branch
        django_get_or_create = ["code"]

    code = factory.Sequence(lambda n: f"B{n:03d}")
    name = factory.LazyAttribute(lambda o: f"Branch {o.code}")
    level = BranchLevel.BRANCH
    parent = None


class UserFactory(factory.django.DjangoModelFactory):
    """A staff user; `role=Role.X` puts them in that role's group."""

    class Meta:
        model = User
        django_get_or_create = ["username"]
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"staff{n}")
    branch = factory.SubFactory(BranchFactory)
    department = factory.SubFactory(DepartmentFactory)
    password = factory.PostGenerationMethodCall("set_password", "Pass-word-123")

    @factory.post_generation
    def role(self, create, extracted, **kwargs):
        if extracted:
            self.groups.add(Group.objects.get(name=str(extracted)))
        if create:
            self.save()


class MemberFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Member
        django_get_or_create = ["member_no"]
        skip_postgeneration_save = True  # the tier_basis hook writes its own row

    member_no = factory.Sequence(lambda n: f"M{n:07d}")
    name = factory.Sequence(lambda n: f"客户{n}")
    phone = factory.Sequence(lambda n: f"138{n:08d}")
    id_number = factory.Sequence(lambda n: f"110101199001{n:06d}")
    registered_at = datetime(2024, 1, 2, 9, 0, tzinfo=SHANGHAI)
    branch = factory.SubFactory(BranchFactory)
    account_manager = None

    @factory.post_generation
    def tier_basis(member, create, extracted, **kwargs):  # noqa: N805 (factory_boy's hook)
        """`tier_basis=…` as the nightly leaves it: a row of `MemberTierBasis`."""
        if create and extracted is not None:
            member.basis, _new = MemberTierBasis.objects.update_or_create(
                member=member, defaults={"value": extracted}
            )


class MemberMonthlyStatFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = MemberMonthlyStat

    member = factory.SubFactory(MemberFactory)


class FeedBatchFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = FeedBatch

    kind = FeedKind.ASSETS
    file_name = factory.Sequence(lambda n: f"assets_{n}.csv")
    checksum = factory.Sequence(lambda n: f"{n:064d}")
    status = FeedStatus.LOADED
    started_at = factory.LazyFunction(lambda: datetime.now(SHANGHAI))


class JobRunFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = JobRun

    kind = "feed_check"
    # one running run per step and date: each run of the factory is of an earlier date
    business_date = factory.Sequence(lambda n: datetime.now(SHANGHAI).date() - timedelta(days=n))


__all__ = [
    "BranchFactory",
    "DepartmentFactory",
    "FeedBatchFactory",
    "JobRunFactory",
    "MemberFactory",
    "MemberMonthlyStatFactory",
    "Role",
    "UserFactory",
]


# --- benefits ------------------------------------------------------------------------------


class BudgetFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "benefits.Budget"

    code = factory.Sequence(lambda n: f"BUD{n:03d}")
    name = factory.LazyAttribute(lambda o: f"Budget {o.code}")
    department = factory.SubFactory(DepartmentFactory)
    # the calendar years around today: a factory campaign's window (today ± 60 days) lies
    # inside it, as a campaign's window must lie inside its budget's period
    period_start = factory.LazyFunction(
        lambda: (datetime.now(SHANGHAI).date() - timedelta(days=90)).replace(month=1, day=1)
    )
    period_end = factory.LazyFunction(
        lambda: (datetime.now(SHANGHAI).date() + timedelta(days=90)).replace(month=12, day=31)
    )
    amount_fen = 100_000_00


class BenefitFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "benefits.Benefit"

    code = factory.Sequence(lambda n: f"BEN{n:03d}")
    name = factory.Sequence(lambda n: f"权益{n}")
    name_en = factory.Sequence(lambda n: f"Benefit {n}")
    category = "GIFT"
    unit_cost_fen = 10_000
    department = factory.SubFactory(DepartmentFactory)
    budget = factory.SubFactory(BudgetFactory)


# --- campaigns and segments ------------------------------------------------------------------


def _today():
    return datetime.now(SHANGHAI).date()


class SegmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "members.Segment"

    code = factory.Sequence(lambda n: f"SEG{n:03d}")
    name = factory.Sequence(lambda n: f"Segment {n}")
    department = factory.SubFactory(DepartmentFactory)
    rules = factory.LazyFunction(list)


class CampaignFactory(factory.django.DjangoModelFactory):
    """An ACTIVE campaign whose window runs from 60 days ago to 60 days ahead."""

    class Meta:
        model = "campaigns.Campaign"

    code = factory.Sequence(lambda n: f"C{n:04d}")
    name = factory.Sequence(lambda n: f"活动{n}")
    department = factory.SubFactory(DepartmentFactory)
    budget = factory.SubFactory(BudgetFactory)
    starts_on = factory.LazyFunction(lambda: _today() - timedelta(days=60))
    ends_on = factory.LazyFunction(lambda: _today() + timedelta(days=60))
    status = "ACTIVE"
    created_by = factory.SubFactory(UserFactory)
    # nobody held out unless a test asks (the product's default is 10 %: tests/campaigns/
    # test_holdout.py); a test counting on one member's progress should not lose it to chance
    holdout_share = 0


class TaskFactory(factory.django.DjangoModelFactory):
    """Sign in once: 100 points."""

    class Meta:
        model = "campaigns.Task"

    campaign = factory.SubFactory(CampaignFactory)
    name = factory.Sequence(lambda n: f"任务{n}")
    event_type = "SIGN_IN"
    measure = "COUNT"
    target = Decimal("1")
    recurrence = "ONCE"
    reward_points = 100


class TaskStepFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "campaigns.TaskStep"

    task = factory.SubFactory(TaskFactory)
    step_no = 1
    target = Decimal("1")
    reward_points = 10
