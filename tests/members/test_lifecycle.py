"""Lifecycle stages for a business date D, row by row of API.md's lifecycle table.

Activity arrives the real way, as consumption feed rows imported through `import_csv`
(a row with count > 0 is activity, count 0 is not); the stage a member had before the run
and their status are set with the ORM, which is the clearest arrangement for those.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

import pytest

from members.choices import LifecycleStage, MemberStatus
from members.models import Member
from members.services import lifecycle_recompute
from portal.clock import SHANGHAI
from portal.periods import days_in
from tests.factories import MemberFactory

pytestmark = pytest.mark.django_db

D = date(2026, 10, 15)  # the business date; its last complete month is 2026-09
LONG_AGO = datetime(2024, 1, 2, 9, 0, tzinfo=SHANGHAI)

CHURNED = LifecycleStage.CHURNED
DORMANT = LifecycleStage.DORMANT
REACTIVATED = LifecycleStage.REACTIVATED
AT_RISK = LifecycleStage.AT_RISK
NEW = LifecycleStage.NEW
ACTIVE = LifecycleStage.ACTIVE


def days_before(days: int, business_date: date = D) -> date:
    return business_date - timedelta(days=days)


def registered(days_ago: int, at: time = time(9, 0)) -> datetime:
    """A registration `days_ago` calendar days before D, at local time `at` in Shanghai."""
    return datetime.combine(days_before(days_ago), at, tzinfo=SHANGHAI)


def spent(member_no: str, day: date, *, count: int = 1, amount: str = "88.00") -> str:
    """A consumption feed row: `member_no` paid `count` times by card on `day`."""
    return f"{member_no},{day.isoformat()},{amount},{count}"


def held(member_no: str, balance: str, *, month: str, category: str = "DEMAND") -> list[str]:
    """Assets feed rows: `member_no` holds `balance` in `category` every day of `month`."""
    start = date.fromisoformat(f"{month}-01")
    return [
        f"{member_no},{start.replace(day=d).isoformat()},{category},{balance}"
        for d in range(1, days_in(start) + 1)
    ]


@pytest.fixture
def load_consumption(import_csv):
    files = iter(range(1, 10_000))

    def load(*rows: str):
        text = "\n".join(["member_no,date,amount,count", *rows]) + "\n"
        batch = import_csv("consumption", text, name=f"consumption_{next(files)}.csv")
        assert batch.rejected == 0, list(batch.rejections.values_list("line_no", "reason"))
        return batch

    return load


@pytest.fixture
def load_assets(import_csv):
    files = iter(range(1, 10_000))

    def load(*row_lists: list[str]):
        rows = [row for row_list in row_lists for row in row_list]
        text = "\n".join(["member_no,date,category,balance", *rows]) + "\n"
        batch = import_csv("assets", text, name=f"assets_{next(files)}.csv")
        assert batch.rejected == 0, list(batch.rejections.values_list("line_no", "reason"))
        return batch

    return load


def run(business_date: date = D) -> dict:
    return lifecycle_recompute(business_date=business_date)


def stage_of(member_no: str) -> str:
    return Member.objects.get(member_no=member_no).lifecycle_stage


def stages() -> dict[str, tuple]:
    return {
        no: (stage, since)
        for no, stage, since in Member.objects.values_list(
            "member_no", "lifecycle_stage", "stage_since"
        )
    }


# --- days since the last activity ------------------------------------------------------------


@pytest.mark.parametrize(
    ("days_since_activity", "expected"),
    [
        (0, ACTIVE),
        (1, ACTIVE),
        (29, ACTIVE),
        (30, AT_RISK),
        (89, AT_RISK),
        (90, DORMANT),
        (364, DORMANT),
        (365, CHURNED),
        (500, CHURNED),
    ],
)
def test_days_since_last_card_activity_decide_the_stage(
    load_consumption, days_since_activity, expected
):
    MemberFactory(member_no="M1", registered_at=LONG_AGO)
    load_consumption(spent("M1", days_before(days_since_activity)))

    run()

    member = Member.objects.get(member_no="M1")
    assert member.last_active_on == days_before(days_since_activity)
    assert member.lifecycle_stage == expected


def test_the_latest_activity_counts_and_a_row_with_count_zero_is_not_activity(
    load_consumption,
):
    MemberFactory(member_no="SPENT_EARLIER", registered_at=LONG_AGO)
    MemberFactory(member_no="NEVER_SPENT", registered_at=LONG_AGO)
    load_consumption(
        spent("SPENT_EARLIER", days_before(200)),
        spent("SPENT_EARLIER", days_before(40), count=2),
        spent("SPENT_EARLIER", days_before(1), count=0, amount="0.00"),
        spent("NEVER_SPENT", days_before(1), count=0, amount="0.00"),
    )

    run()

    earlier = Member.objects.get(member_no="SPENT_EARLIER")
    assert (earlier.last_active_on, earlier.lifecycle_stage) == (days_before(40), AT_RISK)
    never = Member.objects.get(member_no="NEVER_SPENT")
    # no activity at all: the registration date (2024-01-02) is the last activity
    assert (never.last_active_on, never.lifecycle_stage) == (None, CHURNED)


def test_a_closed_member_is_churned_even_when_active_yesterday(load_consumption):
    MemberFactory(member_no="M1", registered_at=LONG_AGO, status=MemberStatus.CLOSED)
    load_consumption(spent("M1", days_before(1)))

    run()

    assert stage_of("M1") == CHURNED


# --- no activity: the registration date counts --------------------------------------------------


@pytest.mark.parametrize(
    "at",
    [time(0, 30), time(23, 30)],
    ids=["00:30-Shanghai-is-the-day-before-in-UTC", "23:30-Shanghai"],
)
@pytest.mark.parametrize(
    ("days_since_registration", "expected"),
    [
        (0, NEW),
        (29, NEW),
        (30, AT_RISK),
        (89, AT_RISK),
        (90, DORMANT),
        (364, DORMANT),
        (365, CHURNED),
    ],
)
def test_without_activity_the_registration_date_counts_as_last_active(
    days_since_registration, expected, at
):
    MemberFactory(member_no="M1", registered_at=registered(days_since_registration, at))

    run()

    assert stage_of("M1") == expected


@pytest.mark.parametrize(
    ("registration", "expected"),
    [
        (registered(0, time(0, 0)), NEW),
        (registered(29, time(0, 0)), NEW),
        (registered(30, time(23, 59)), ACTIVE),
        (registered(30, time(0, 0)), ACTIVE),
    ],
    ids=["today", "29-days", "30-days-late-evening", "30-days-midnight"],
)
def test_new_for_fewer_than_30_days_after_registration_then_active(
    load_consumption, registration, expected
):
    MemberFactory(member_no="M1", registered_at=registration)
    load_consumption(spent("M1", days_before(0)))

    run()

    assert stage_of("M1") == expected


# --- REACTIVATED ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stage_before", "days_since_activity", "expected"),
    [
        (DORMANT, 1, REACTIVATED),
        (DORMANT, 29, REACTIVATED),
        (DORMANT, 30, AT_RISK),  # not within 30 days
        (CHURNED, 1, REACTIVATED),
        (ACTIVE, 1, ACTIVE),  # only a dormant or churned member is reactivated
        (AT_RISK, 1, ACTIVE),
        (NEW, 1, ACTIVE),
    ],
)
def test_reactivated_when_a_dormant_or_churned_member_is_active_within_30_days(
    load_consumption, stage_before, days_since_activity, expected
):
    MemberFactory(
        member_no="M1",
        registered_at=LONG_AGO,
        lifecycle_stage=stage_before,
        stage_since=days_before(100),
    )
    load_consumption(spent("M1", days_before(days_since_activity)))

    run()

    member = Member.objects.get(member_no="M1")
    assert member.lifecycle_stage == expected
    assert member.stage_since == (D if expected != stage_before else days_before(100))


def test_reactivated_stays_for_30_days_after_the_run_that_gave_it(load_consumption):
    MemberFactory(
        member_no="M1",
        registered_at=LONG_AGO,
        lifecycle_stage=DORMANT,
        stage_since=days_before(100),
    )
    load_consumption(spent("M1", days_before(1)))  # one purchase, then nothing again
    seen = {}

    for day in (D, D + timedelta(days=1), D + timedelta(days=10), D + timedelta(days=29)):
        run(day)
        member = Member.objects.get(member_no="M1")
        seen[day] = (member.lifecycle_stage, member.stage_since)
    run(D + timedelta(days=30))

    # on D + 29 the last activity is 30 days old (AT_RISK by itself), yet it stays
    assert set(seen.values()) == {(REACTIVATED, D)}
    assert stage_of("M1") == AT_RISK


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"status": MemberStatus.CLOSED}, CHURNED),
        ({"last_active_on": days_before(90)}, DORMANT),
        ({"last_active_on": days_before(365)}, CHURNED),
    ],
    ids=["closed", "dormant", "churned"],
)
def test_reactivated_gives_way_to_the_rules_above_it(change, expected):
    reactivated_five_days_ago = {
        "registered_at": LONG_AGO,
        "lifecycle_stage": REACTIVATED,
        "stage_since": days_before(5),
        "last_active_on": days_before(1),
    }
    MemberFactory(member_no="M1", **{**reactivated_five_days_ago, **change})

    run()

    assert stage_of("M1") == expected


def test_reactivated_is_kept_over_at_risk(load_consumption, load_assets):
    MemberFactory(
        member_no="M1",
        registered_at=LONG_AGO,
        lifecycle_stage=REACTIVATED,
        stage_since=days_before(10),
    )
    load_consumption(spent("M1", days_before(40)))
    load_assets(held("M1", "20000.00", month="2026-08"))  # September: nothing

    run()

    assert stage_of("M1") == REACTIVATED


# --- AT_RISK by a falling MADA -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("august", "september", "expected"),
    [
        ("10000.00", "5000.00", AT_RISK),  # fell by exactly 50 %
        ("10000.00", "5000.01", ACTIVE),  # fell by a cent less than 50 %
        ("10000.00", "5100.00", ACTIVE),  # fell by 49 %
        ("20000.00", None, AT_RISK),  # no assets in September: MADA 0
        ("9999.99", None, ACTIVE),  # the month before was under 10,000.00
        ("10000.00", "12000.00", ACTIVE),  # rose
    ],
)
def test_at_risk_when_the_last_months_mada_fell_by_half(
    load_consumption, load_assets, august, september, expected
):
    MemberFactory(member_no="M1", registered_at=LONG_AGO)
    load_consumption(spent("M1", days_before(1)))
    rows = [held("M1", august, month="2026-08")]
    if september is not None:
        rows.append(held("M1", september, month="2026-09"))
    load_assets(*rows)

    run()

    assert stage_of("M1") == expected


def test_mada_drop_counts_financial_assets_only(load_consumption, load_assets):
    MemberFactory(member_no="M1", registered_at=LONG_AGO)
    load_consumption(spent("M1", days_before(1)))
    load_assets(
        held("M1", "10000.00", month="2026-08", category="TIME"),
        # the time deposit matured into a loan-sized mortgage: MADA fell to 0
        held("M1", "10000.00", month="2026-09", category="MORTGAGE"),
    )

    run()

    assert stage_of("M1") == AT_RISK


# --- re-running a date --------------------------------------------------------------------------


def test_running_the_same_date_again_changes_nothing(load_consumption, load_assets):
    MemberFactory(member_no="ACTIVE", registered_at=LONG_AGO)
    MemberFactory(member_no="QUIET", registered_at=LONG_AGO)
    MemberFactory(member_no="ASLEEP", registered_at=LONG_AGO)
    MemberFactory(member_no="GONE", registered_at=LONG_AGO)
    MemberFactory(member_no="BACK", registered_at=LONG_AGO, lifecycle_stage=DORMANT)
    MemberFactory(member_no="FELL", registered_at=LONG_AGO)
    MemberFactory(member_no="FRESH", registered_at=registered(3))
    MemberFactory(member_no="CLOSED", registered_at=LONG_AGO, status=MemberStatus.CLOSED)
    load_consumption(
        spent("ACTIVE", days_before(2)),
        spent("QUIET", days_before(45)),
        spent("ASLEEP", days_before(120)),
        spent("BACK", days_before(3)),
        spent("FELL", days_before(1)),
    )
    load_assets(held("FELL", "50000.00", month="2026-08"), held("FELL", "100.00", month="2026-09"))
    first = run()
    after_first = stages()
    assert {no: stage for no, (stage, _since) in after_first.items()} == {
        "ACTIVE": ACTIVE,
        "QUIET": AT_RISK,
        "ASLEEP": DORMANT,
        "GONE": CHURNED,
        "BACK": REACTIVATED,
        "FELL": AT_RISK,
        "FRESH": NEW,
        "CLOSED": CHURNED,
    }
    assert first["changed"] == 7  # FRESH was already NEW

    second = run()

    assert stages() == after_first
    assert second["changed"] == 0
    assert second["evaluated"] == 8
