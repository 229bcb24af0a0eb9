"""`manage.py seed_demo` (API.md, "Commands"; README "Demo logins"): a believable demo bank
that is the same bank for the same seed and as-of date.

Seeding is small here (60 members, three months of daily feeds up to 2026-11-25). The tests
of `TestSeededBank` share one bank seeded in a transaction that is rolled back after them;
the determinism test seeds three times, each inside a savepoint it rolls back.
"""

from __future__ import annotations

import calendar
import io
import re
from collections.abc import Iterator
from datetime import date, timedelta

import pytest
from django.contrib.auth import authenticate
from django.core.management import call_command
from django.db import transaction
from django.db.models import Count, Sum
from django.http import HttpRequest
from django.test import override_settings

from members.choices import FeedKind, FeedStatus
from members.models import FeedBatch, Member, MemberMonthlyStat
from portal.choices import BranchLevel, Role
from portal.models import ApiToken, Branch, User, api_key_digest
from tests.factories import MemberFactory
from tests.reference import ensure_reference_data

pytestmark = pytest.mark.django_db

AS_OF = date(2026, 11, 26)
MEMBERS = 60
#: the demo logins of README.md, "Demo logins"
DEMO_USERNAMES = {
    "admin",
    "operator",
    "approver",
    "auditor",
    "bm_b01",
    "bm_b02",
    "bm_b03",
    "am_b01s1",
    "am_b01s2",
    "am_b02s1",
    "am_b02s2",
    "am_b03s1",
    "am_b03s2",
    "mobile_banking",
}
ID_WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
ID_CHECK = "10X98765432"
CHINESE_NAME = re.compile(r"^[\u4e00-\u9fff]{2,4}$")
MOBILE_PHONE = re.compile(r"^1[3-9]\d{9}$")
PASSWORD_LINE = re.compile(r"password for all: (?P<password>\S+?)\)")
FAST_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def seed(*args: str, members: int = MEMBERS, seed: int = 7) -> str:
    """Run seed_demo for AS_OF and return what it printed on stdout."""
    out, err = io.StringIO(), io.StringIO()
    call_command(
        "seed_demo",
        "--members",
        str(members),
        "--seed",
        str(seed),
        "--as-of",
        AS_OF.isoformat(),
        *args,
        stdout=out,
        stderr=err,
    )
    return out.getvalue()


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    """seed_demo sets 14 demo passwords; the production hasher would spend seconds on it."""
    settings.PASSWORD_HASHERS = FAST_HASHERS


@pytest.fixture(scope="class")
def seeded(django_db_setup, django_db_blocker) -> Iterator[str]:
    """One demo bank for all the tests of a class: seeded inside a transaction that is rolled
    back after the class (each test runs in a savepoint of it), so nothing leaks out."""
    with (
        django_db_blocker.unblock(),
        override_settings(PASSWORD_HASHERS=FAST_HASHERS),
        transaction.atomic(),
    ):
        ensure_reference_data()  # a transactional test on this worker may have flushed it
        output = seed()
        yield output
        transaction.set_rollback(True)


def gb11643_check_digit(body: str) -> str:
    """The check character of a resident ID number (GB 11643-1999, ISO 7064 MOD 11-2)."""
    return ID_CHECK[sum(int(d) * w for d, w in zip(body, ID_WEIGHTS, strict=True)) % 11]


def bank_fingerprint() -> tuple:
    """What makes two demo banks the same bank: the people and their money per month."""
    people = tuple(
        Member.objects.order_by("member_no").values_list(
            "member_no",
            "name",
            "phone",
            "id_number",
            "birth_date",
            "branch__code",
            "account_manager__username",
            "tier__code",
        )
    )
    money = tuple(
        MemberMonthlyStat.objects.values("month")
        .annotate(assets=Sum("financial_day_sum_fen"), spend=Sum("consumption_amount_fen"))
        .order_by("month")
        .values_list("month", "assets", "spend")
    )
    return people, money


def fingerprint_of_seed(seed_value: int) -> tuple:
    """Seed into the current database, take the fingerprint, then roll the seed back, so the
    next seed starts from the same empty bank (as two fresh databases would)."""
    savepoint = transaction.savepoint()
    try:
        seed(seed=seed_value)
        return bank_fingerprint()
    finally:
        transaction.savepoint_rollback(savepoint)


# --- an empty database: determinism and --if-empty -----------------------------------------


def test_seed_demo_gives_the_same_bank_for_the_same_seed_and_another_for_another_seed():
    first = fingerprint_of_seed(7)
    again = fingerprint_of_seed(7)
    other = fingerprint_of_seed(8)

    assert first[0] and first[1]
    assert again == first
    assert other[0] != first[0]
    assert other[1] != first[1]


def test_seed_demo_if_empty_does_nothing_when_members_exist():
    MemberFactory(member_no="M9999999")

    output = seed("--if-empty")

    assert "nothing to do" in output
    assert list(Member.objects.values_list("member_no", flat=True)) == ["M9999999"]
    assert not FeedBatch.objects.exists()
    assert not User.objects.filter(username__in=DEMO_USERNAMES).exists()


class TestSeededBank:
    """One demo bank, `seed_demo --members 60 --seed 7 --as-of 2026-11-26`."""

    # organisation and staff

    def test_seed_demo_creates_head_office_three_branches_and_six_sub_branches(self, seeded):
        levels = dict(
            Branch.objects.values_list("level").annotate(n=Count("id")).values_list("level", "n")
        )
        assert levels == {
            BranchLevel.HEAD_OFFICE: 1,
            BranchLevel.BRANCH: 3,
            BranchLevel.SUB_BRANCH: 6,
        }
        head_office = Branch.objects.get(level=BranchLevel.HEAD_OFFICE)
        assert head_office.parent is None
        for branch in Branch.objects.filter(level=BranchLevel.BRANCH):
            assert branch.parent == head_office
            assert Branch.objects.filter(parent=branch, level=BranchLevel.SUB_BRANCH).count() == 2

    def test_seed_demo_creates_staff_of_every_role_who_can_log_in_with_the_printed_password(
        self, seeded, client
    ):
        password = PASSWORD_LINE.search(seeded)["password"]
        staff = User.objects.filter(username__in=DEMO_USERNAMES).prefetch_related("groups")

        assert {user.username for user in staff} == DEMO_USERNAMES
        roles = {group.name for user in staff for group in user.groups.all()}
        assert roles == set(Role.values)
        for user in staff:
            credentials = {"username": user.username, "password": password}
            if user.has_role(Role.SYSTEM):  # the API token only (portal/accounts.py)
                assert not user.has_usable_password(), user.username
                assert authenticate(HttpRequest(), **credentials) is None, user.username
                continue
            assert authenticate(HttpRequest(), **credentials) == user, user.username
            assert client.login(request=HttpRequest(), **credentials), user.username
            client.logout()

    def test_seed_demo_places_account_managers_in_sub_branches_and_branch_managers_in_branches(
        self,
        seeded,
    ):
        for manager in User.objects.filter(groups__name=Role.ACCOUNT_MANAGER):
            assert manager.branch.level == BranchLevel.SUB_BRANCH
            assert manager.username == f"am_{manager.branch.code.lower()}"
        for manager in User.objects.filter(groups__name=Role.BRANCH_MANAGER):
            assert manager.branch.level == BranchLevel.BRANCH
        assert User.objects.get(username="admin").is_superuser

    # members

    def test_seed_demo_members_have_chinese_names_phones_and_well_formed_id_numbers(self, seeded):
        members = list(Member.objects.all())

        assert len(members) == MEMBERS
        assert len({m.member_no for m in members}) == MEMBERS
        for member in members:
            assert CHINESE_NAME.match(member.name), member.name
            assert MOBILE_PHONE.match(member.phone), member.phone
            id_number = member.id_number
            assert len(id_number) == 18 and id_number[:17].isdigit(), id_number
            assert id_number[17] == gb11643_check_digit(id_number[:17]), id_number
            assert id_number[6:14] == f"{member.birth_date:%Y%m%d}", (id_number, member.birth_date)

    def test_seed_demo_assigns_members_to_sub_branches_and_their_account_managers(self, seeded):
        members = list(Member.objects.select_related("branch", "account_manager__branch"))

        assert all(m.branch.level == BranchLevel.SUB_BRANCH for m in members)
        managed = [m for m in members if m.account_manager is not None]
        assert len(managed) >= MEMBERS * 3 // 4  # about 90 % have a manager
        account_managers = set(
            User.objects.filter(groups__name=Role.ACCOUNT_MANAGER).values_list("pk", flat=True)
        )
        for member in managed:
            assert member.account_manager_id in account_managers
            assert member.account_manager.branch == member.branch, member.member_no
        # the demo spreads customers over every sub-branch
        assert len({m.branch.code for m in members}) == 6

    # feeds, monthly statistics, tiers

    def test_seed_demo_imports_one_reconciling_feed_batch_per_kind_and_day(self, seeded):
        first_day, last_day = date(2026, 8, 26), AS_OF - timedelta(days=1)
        days = {first_day + timedelta(days=n) for n in range((last_day - first_day).days + 1)}
        batches = list(FeedBatch.objects.all())

        assert all(batch.status == FeedStatus.LOADED for batch in batches)
        assert all(batch.reconciles and batch.rejected == 0 for batch in batches), [
            (b.file_name, b.received, b.accepted, b.duplicates, b.rejected)
            for b in batches
            if not (b.reconciles and b.rejected == 0)
        ]
        member_batches = [b for b in batches if b.kind == FeedKind.MEMBERS]
        assert len(member_batches) == 1 and member_batches[0].accepted == MEMBERS
        for kind in (FeedKind.ASSETS, FeedKind.CONSUMPTION):
            of_kind = [b for b in batches if b.kind == kind]
            assert all(b.first_date == b.last_date for b in of_kind), kind
            assert sorted(b.first_date for b in of_kind) == sorted(days), kind
            assert all(b.accepted > 0 for b in of_kind), kind

    def test_seed_demo_fills_monthly_statistics_for_the_months_before_the_as_of_date(self, seeded):
        months = dict(
            MemberMonthlyStat.objects.values("month")
            .annotate(n=Count("id"))
            .values_list("month", "n")
        )

        # three months of daily feeds up to the day before the as-of date: 2026-08-26 … 11-25
        assert set(months) == {
            date(2026, 8, 1),
            date(2026, 9, 1),
            date(2026, 10, 1),
            date(2026, 11, 1),
        }
        for month in (date(2026, 9, 1), date(2026, 10, 1)):  # the complete months
            assert months[month] == MEMBERS
            days = calendar.monthrange(month.year, month.month)[1]
            stats = MemberMonthlyStat.objects.filter(month=month)
            assert all(stat.asset_days == days for stat in stats), month
            assert stats.aggregate(s=Sum("financial_day_sum_fen"))["s"] > 0
        assert not MemberMonthlyStat.objects.filter(month__gte=date(2026, 12, 1)).exists()

    def test_seed_demo_grades_the_members_into_tiers(self, seeded):
        assert not Member.objects.filter(tier__isnull=True).exists()
        assert Member.objects.values("tier").distinct().count() >= 2

    def test_seed_demo_if_empty_on_a_seeded_bank_changes_nothing(self, seeded):
        before = (bank_fingerprint(), FeedBatch.objects.count())

        output = seed("--if-empty", seed=8)

        assert "nothing to do" in output
        assert (bank_fingerprint(), FeedBatch.objects.count()) == before

    def test_seed_demo_prints_the_demo_logins_the_password_and_the_api_token(self, seeded):
        assert f"Seeded {MEMBERS} members" in seeded
        assert PASSWORD_LINE.search(seeded)["password"] == "Demo-2026!"  # README.md
        login_lines = {
            line.split()[0]: line
            for line in seeded.splitlines()
            if line.startswith("  ") and line.split()[0] in DEMO_USERNAMES
        }
        assert set(login_lines) == DEMO_USERNAMES
        assert Role.ACCOUNT_MANAGER.value in login_lines["am_b01s1"]
        assert Role.SYSTEM.value in login_lines["mobile_banking"]
        key = re.search(r"API token of mobile_banking: (\S+)", seeded)[1]
        token = ApiToken.objects.get(user__username="mobile_banking", revoked_at__isnull=True)
        assert token.key_digest == api_key_digest(key)
