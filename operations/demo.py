"""A believable demo bank for `seed_demo`: organisation, staff of every role, members with
Chinese names and three months of asset and consumption feeds.

Members and feeds are written as CSV files and loaded through `feed_import`, the same code
that loads the data warehouse's files. Everything is drawn from `random.Random(seed)` and
the as-of date, so a seed and a date always give the same bank.
"""

from __future__ import annotations

import calendar
import io
import random
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from django.contrib.auth.models import Group
from django.db import connection, transaction
from django.utils import timezone

from benefits.models import Benefit, BenefitGrant, Budget, TierEntitlement
from benefits.services import entitlement_grants_run
from members.choices import FeedKind, FeedStatus
from members.models import FeedBatch, Member, Tier
from members.services import feed_import, lifecycle_recompute, tier_recompute
from portal.choices import ApiScope, BranchLevel, Role
from portal.clock import SHANGHAI
from portal.models import ApiToken, AuditEntry, Branch, Department, User
from portal.periods import add_months
from portal.services import api_token_issue, api_token_revoke, audit_context, audit_record

from .dashboard.snapshot import kpi_snapshot_compute
from .demo_campaigns import demo_campaigns
from .demo_governance import demo_governance

#: of every demo staff login; the system integration account has none (its API token only)
DEMO_PASSWORD = "Demo-2026!"  # noqa: S105 - printed once by seed_demo; demo data only

DEPARTMENTS = [
    ("RETAIL", "零售银行部"),
    ("WEALTH", "财富管理部"),
    ("CARD", "信用卡中心"),
    ("DIGITAL", "数字渠道部"),
]
BRANCHES = [
    # code, name, level, parent
    ("HO", "总行", BranchLevel.HEAD_OFFICE, None),
    ("B01", "北京分行", BranchLevel.BRANCH, "HO"),
    ("B02", "上海分行", BranchLevel.BRANCH, "HO"),
    ("B03", "深圳分行", BranchLevel.BRANCH, "HO"),
    ("B01S1", "朝阳支行", BranchLevel.SUB_BRANCH, "B01"),
    ("B01S2", "海淀支行", BranchLevel.SUB_BRANCH, "B01"),
    ("B02S1", "浦东支行", BranchLevel.SUB_BRANCH, "B02"),
    ("B02S2", "静安支行", BranchLevel.SUB_BRANCH, "B02"),
    ("B03S1", "福田支行", BranchLevel.SUB_BRANCH, "B03"),
    ("B03S2", "南山支行", BranchLevel.SUB_BRANCH, "B03"),
]
SUB_BRANCHES = [code for code, _, level, _ in BRANCHES if level == BranchLevel.SUB_BRANCH]

# username, (surname, given name), role, branch, department
STAFF = [
    ("admin", ("李", "明远"), Role.ADMINISTRATOR, "HO", "DIGITAL"),
    ("operator", ("周", "敏"), Role.PRODUCT_OPERATOR, "HO", "RETAIL"),
    ("approver", ("吴", "磊"), Role.BUDGET_APPROVER, "HO", "RETAIL"),
    ("auditor", ("郑", "洁"), Role.RISK_AUDITOR, "HO", "RETAIL"),
    ("bm_b01", ("陈", "刚"), Role.BRANCH_MANAGER, "B01", "RETAIL"),
    ("bm_b02", ("林", "芳"), Role.BRANCH_MANAGER, "B02", "RETAIL"),
    ("bm_b03", ("黄", "伟"), Role.BRANCH_MANAGER, "B03", "RETAIL"),
    *[
        (f"am_{code.lower()}", (name[0], name[1:]), Role.ACCOUNT_MANAGER, code, "WEALTH")
        for code, name in zip(
            SUB_BRANCHES, ["张丽", "王强", "刘洋", "杨静", "赵磊", "孙悦"], strict=True
        )
    ],
    # a system account is named for the system, not a person
    ("mobile_banking", ("", "手机银行"), Role.SYSTEM, "HO", "DIGITAL"),
]
#: the demo client system: (username it acts as, name, scopes)
DEMO_API_CLIENT = (
    "mobile_banking",
    "Mobile banking",
    [ApiScope.EVENTS_WRITE, ApiScope.MEMBERS_READ, ApiScope.GRANTS_REDEEM],
)
HEAD_OFFICE_ROLES = {Role.PRODUCT_OPERATOR, Role.BUDGET_APPROVER, Role.RISK_AUDITOR}

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾萧田董潘袁蔡蒋余于杜叶程魏苏吕丁任沈姚卢"  # noqa: E501
GIVEN = (
    "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍红梅鑫波斌宇浩凯晨欣怡佳琪雪婷俊峰辉宁"
)
PHONE_PREFIXES = [
    "138",
    "139",
    "136",
    "135",
    "158",
    "159",
    "186",
    "187",
    "188",
    "131",
    "177",
    "199",
]
REGION_CODES = ["110105", "110108", "310115", "310106", "440304", "440305", "320102", "330106"]
ID_WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
ID_CHECK = "10X98765432"

# (category, share of members holding it, typical balance as a share of their wealth)
HOLDINGS = [
    ("TIME", 0.30, 0.45),
    ("WEALTH", 0.12, 0.35),
    ("FUND", 0.10, 0.20),
    ("INSURANCE", 0.05, 0.10),
    ("BOND", 0.02, 0.15),
    ("MORTGAGE", 0.10, 1.5),
    ("LOAN", 0.05, 0.3),
]


def id_number_for(region: str, birth: date, sequence: int) -> str:
    """A well-formed 18-character resident ID number (GB 11643 check digit)."""
    body = f"{region}{birth:%Y%m%d}{sequence:03d}"
    total = sum(int(digit) * weight for digit, weight in zip(body, ID_WEIGHTS, strict=True))
    return body + ID_CHECK[total % 11]


@dataclass
class DemoMember:
    member_no: str
    wealth: float  # financial assets, CNY
    holdings: dict[str, float]
    spend_rate: float  # probability of card spending on a day (before dormant_since)
    dormant_since: date | None  # stops spending and moves its money out on this day
    growth: float  # monthly drift of wealth
    events: dict[date, float] = field(default_factory=dict)  # big deposits


#: how often a member who goes dormant in the feed window spent on a day before that
DORMANT_SPEND_RATE = 0.3


def _months_back(as_of: date, months: int) -> date:
    """First day of the month `months` before `as_of`'s month (negative: after)."""
    return add_months(as_of.replace(day=1), -months)


def _same_day_months_back(as_of: date, months: int) -> date:
    """The same day of the month `months` earlier (clamped to that month's length)."""
    first = _months_back(as_of, months)
    return first.replace(day=min(as_of.day, calendar.monthrange(first.year, first.month)[1]))


def _draw_wealth(rng: random.Random) -> float:
    roll = rng.random()
    if roll < 0.002:
        return rng.uniform(10_000_000, 30_000_000)
    if roll < 0.04:
        return rng.uniform(500_000, 3_000_000)
    if roll < 0.30:
        return rng.uniform(50_000, 500_000)
    return rng.lognormvariate(9.3, 1.1)  # median ~11,000 CNY


@transaction.atomic
def demo_organisation() -> dict[str, User]:
    """Departments, the branch tree and one staff user per demo login (idempotent)."""
    departments = {
        code: Department.objects.update_or_create(code=code, defaults={"name": name})[0]
        for code, name in DEPARTMENTS
    }
    branches: dict[str, Branch] = {}
    for code, name, level, parent in BRANCHES:
        branch = Branch.objects.filter(code=code).first() or Branch(code=code)
        branch.name, branch.level = name, level
        branch.parent = branches.get(parent) if parent else None
        branch.save()
        branches[code] = branch
    staff: dict[str, User] = {}
    for username, (surname, given), role, branch_code, department_code in STAFF:
        user = User.objects.filter(username=username).first() or User(username=username)
        user.last_name, user.first_name = surname, given
        user.branch = branches[branch_code]
        user.department = departments[department_code]
        user.is_staff = role in HEAD_OFFICE_ROLES or role == Role.ADMINISTRATOR
        user.is_superuser = role == Role.ADMINISTRATOR
        if role == Role.SYSTEM:
            user.set_unusable_password()  # API token only (portal.accounts)
        else:
            user.set_password(DEMO_PASSWORD)
        user.save()
        user.groups.set([Group.objects.get(name=str(role))])
        staff[username] = user
    return staff


@transaction.atomic
def demo_api_token() -> str:
    """Issue the demo client system's API token (as `manage.py api_token_issue` does) and
    return its key; a demo token issued by an earlier seed is revoked."""
    username, name, scopes = DEMO_API_CLIENT
    user = User.objects.get(username=username)
    for earlier in ApiToken.objects.filter(user=user, name=name, revoked_at__isnull=True):
        api_token_revoke(token=earlier, actor=None, reason="seed_demo issued a new demo token")
    _token, key = api_token_issue(user=user, name=name, scopes=scopes, actor=None)
    return key


def _members_csv(rng: random.Random, count: int, as_of: date) -> tuple[bytes, list[DemoMember]]:
    out = io.StringIO()
    out.write(
        "member_no,name,phone,id_number,birth_date,registered_at,branch_code,"
        "manager_username,credit_risk\n"
    )
    people = []
    for n in range(1, count + 1):
        member_no = f"M{n:07d}"
        name = rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2))))
        phone = rng.choice(PHONE_PREFIXES) + f"{rng.randrange(10**8):08d}"
        birth = date(1950, 1, 1) + timedelta(days=rng.randrange(365 * 55))
        id_number = id_number_for(rng.choice(REGION_CODES), birth, rng.randrange(1000))
        if rng.random() < 0.05:  # recently joined: NEW in the lifecycle
            registered = as_of - timedelta(days=rng.randrange(1, 28))
        else:
            registered = as_of - timedelta(days=rng.randrange(120, 365 * 8))
        registered_at = datetime(
            registered.year, registered.month, registered.day, rng.randrange(8, 18), tzinfo=SHANGHAI
        ).isoformat()
        sub_branch = rng.choice(SUB_BRANCHES)
        manager = f"am_{sub_branch.lower()}" if rng.random() < 0.9 else ""
        credit_risk = "1" if rng.random() < 0.01 else "0"
        out.write(
            f"{member_no},{name},{phone},{id_number},{birth.isoformat()},{registered_at},"
            f"{sub_branch},{manager},{credit_risk}\n"
        )
        wealth = _draw_wealth(rng)
        holdings = {"DEMAND": 1.0}
        for category, share, weight in HOLDINGS:
            if rng.random() < share * (1.5 if wealth > 50_000 else 1.0):
                holdings[category] = weight * rng.uniform(0.5, 1.5)
        dormant_since = None
        if rng.random() < 0.12:
            dormant_since = as_of - timedelta(days=rng.randrange(35, 200))
        person = DemoMember(
            member_no=member_no,
            wealth=wealth,
            holdings=holdings,
            # one who goes quiet in the feed window spent before, so the lifecycle history
            # sees them turn at risk, then dormant (no draw: the same bank as before for
            # the members who stay active)
            spend_rate=DORMANT_SPEND_RATE if dormant_since else rng.uniform(0.05, 0.6),
            dormant_since=dormant_since,
            growth=rng.uniform(-0.08, 0.10),
        )
        if registered >= as_of - timedelta(days=28):
            person.wealth = rng.uniform(0, 20_000)
        if rng.random() < 0.08:  # a big deposit in the period: upgrade candidates
            person.events[
                _months_back(as_of, rng.randrange(0, 3)) + timedelta(days=rng.randrange(28))
            ] = rng.uniform(30_000, 600_000)
        people.append(person)
    return out.getvalue().encode("utf-8"), people


def _day_files(
    rng: random.Random, people: list[DemoMember], day: date, month_index: int
) -> tuple[bytes, bytes]:
    assets = io.StringIO()
    assets.write("member_no,date,category,balance\n")
    consumption = io.StringIO()
    consumption.write("member_no,date,amount,count\n")
    iso = day.isoformat()
    for person in people:
        wealth = person.wealth * (1 + person.growth) ** month_index
        for deposit_day, amount in person.events.items():
            if day >= deposit_day:
                wealth += amount
        if person.dormant_since and day >= person.dormant_since:
            wealth = min(wealth, 800.0)
        for category, weight in person.holdings.items():
            wobble = (int(person.member_no[1:]) * 31 + day.day) % 7 - 3
            balance = wealth * weight * (1 + 0.01 * wobble)
            if balance >= 0.01:
                assets.write(f"{person.member_no},{iso},{category},{balance:.2f}\n")
        spending = person.dormant_since is None or day < person.dormant_since
        if rng.random() < person.spend_rate and spending:
            count = rng.randint(1, 4)
            consumption.write(
                f"{person.member_no},{iso},{rng.uniform(20, 800) * count:.2f},{count}\n"
            )
    return assets.getvalue().encode("utf-8"), consumption.getvalue().encode("utf-8")


#: audit actions that mark a demo seed: started (organisation, members and feeds are then
#: committed file by file) and finished (everything after the feeds, in one transaction)
SEED_STARTED = "demo.seed_started"
SEED_FINISHED = "demo.seed_finished"
#: the feed messages that carry how many member rows were read so far
ROWS_READ = re.compile(r"([\d,]+) rows read")


@dataclass(frozen=True)
class DemoSeedPlan:
    """What one demo seed is: the same plan always gives the same bank."""

    members: int
    seed: int
    as_of: date
    months: int = 3

    def as_changes(self) -> dict:
        return {
            "members": self.members,
            "seed": self.seed,
            "as_of": self.as_of.isoformat(),
            "months": self.months,
        }

    @classmethod
    def from_changes(cls, changes: dict) -> DemoSeedPlan:
        return cls(
            members=int(changes["members"]),
            seed=int(changes["seed"]),
            as_of=date.fromisoformat(changes["as_of"]),
            months=int(changes.get("months", 3)),
        )

    def command(self) -> str:
        return (
            f"manage.py seed_demo --members {self.members} --seed {self.seed} "
            f"--as-of {self.as_of.isoformat()}"
        )


START_OVER = (
    "To start over, recreate the database (SQLite: delete the database file; PostgreSQL: "
    "dropdb and createdb), then run `manage.py migrate` and `manage.py seed_demo` again."
)


class DemoSeedRefused(Exception):
    """The database is not empty (or holds another unfinished seed): nothing was written."""


class DemoSeedUnfinished(DemoSeedRefused):
    """Another plan's seed is unfinished in this database: nothing was written."""


class DemoSeedStopped(Exception):
    """A seed stopped at `step`; what it committed can be resumed with the same plan."""

    def __init__(self, *, step: str, plan: DemoSeedPlan, cause: BaseException) -> None:
        kept = (
            "Nothing was written"
            if step == "organisation"
            else "The members and the feed files loaded so far are kept (each file is "
            "committed on its own); nothing of the steps after the feeds is"
        )
        why = f"{type(cause).__name__}: {cause}" if str(cause) else type(cause).__name__
        super().__init__(
            f"seed_demo stopped at step {step!r} ({why}). {kept}. Run `{plan.command()}` "
            f"again to continue from there (files already loaded are skipped). {START_OVER}"
        )
        self.step, self.plan = step, plan


def demo_seed_check(plan: DemoSeedPlan) -> bool:
    """Whether `plan` may seed this database: False for an empty one (a fresh seed), True to
    resume an unfinished seed of the same plan. A finished demo bank, members that no seed
    of this plan loaded, or another plan's unfinished seed raise `DemoSeedRefused`, saying
    how to go on: seeding twice would double the notes, grants and requests."""
    marks = AuditEntry.objects.filter(action__in=[SEED_STARTED, SEED_FINISHED]).order_by("pk")
    started = finished = None
    for mark in marks:
        if mark.action == SEED_STARTED:
            started, finished = mark, None
        else:
            finished = mark
    if finished is not None:
        done = DemoSeedPlan.from_changes(finished.changes)
        raise DemoSeedRefused(
            f"This database already holds a demo bank ({done.members:,} members, seed "
            f"{done.seed}, as of {done.as_of}); seed_demo seeds an empty database only, so "
            f"nothing was changed (`--if-empty` skips quietly). {START_OVER}"
        )
    if started is not None:
        unfinished = DemoSeedPlan.from_changes(started.changes)
        if unfinished == plan:
            return True
        raise DemoSeedUnfinished(
            f"An unfinished demo seed is in this database: run `{unfinished.command()}` to "
            f"finish it (files already loaded are skipped); nothing was changed. {START_OVER}"
        )
    count = Member.objects.count()
    if count:
        raise DemoSeedRefused(
            f"This database already has {count:,} members; seed_demo seeds an empty database "
            f"only, so nothing was changed (`--if-empty` skips quietly). {START_OVER}"
        )
    return False


def seed_demo_bank(
    *,
    members: int,
    seed: int,
    as_of: date,
    months: int = 3,
    progress: Callable[[str], None] | None = None,
) -> dict:
    """Create the demo bank with `months` months of daily feeds, up to the day before
    `as_of`, graded as if the nightly chain had run on the 2nd of every complete month.

    Only into an empty database, or to finish an unfinished seed of the same plan
    (`demo_seed_check`). Organisation, members and feeds are committed file by file, as the
    warehouse's files are; everything after them is one transaction. A failure raises
    `DemoSeedStopped` naming the step and the command that continues: a resumed seed skips
    the files already loaded and gives the same bank as an uninterrupted one."""
    say = progress or (lambda message: None)
    plan = DemoSeedPlan(members=members, seed=seed, as_of=as_of, months=months)
    resuming = demo_seed_check(plan)
    rng = random.Random(seed)
    if connection.vendor == "sqlite" and not connection.in_atomic_block:
        # Demo data can be re-seeded, so skip fsyncs while loading ~100 daily files.
        # (SQLite refuses the pragma inside a transaction, e.g. in a test.)
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA synchronous=OFF")
    step = "organisation"
    try:
        with transaction.atomic():
            staff = demo_organisation()
            audit_record(actor=None, action=SEED_STARTED, changes=plan.as_changes())
        if resuming:
            say(f"resuming the unfinished seed ({plan.command()}): loaded files are skipped")
        say(f"organisation: {len(BRANCHES)} branches, {len(staff)} staff users, an API token")
        step = "members"
        loaded = _loaded_files() if resuming else {}
        members_file, people = _members_csv(rng, members, as_of)
        accepted = _demo_feed(
            FeedKind.MEMBERS, members_file, f"members_{as_of:%Y%m%d}.csv", loaded,
            progress=_members_progress(say, members),
        )  # fmt: skip
        say(f"members: {accepted[0]:,} accepted, {accepted[1]:,} already there")
        step = "feeds"
        start = _same_day_months_back(as_of, months)
        total_rows = _demo_feeds(rng, people, start, as_of, loaded, say)
        step = "benefits, tiers, campaigns and governance"
        # One transaction; its bulk writes to tracked tables run in a history context (the
        # triggers are slow per row without one, STYLE.md "Known traps").
        with transaction.atomic(), audit_context(job=f"seed_demo {plan.command()}"):
            _tracked_bulk_writes()
            api_key, activity = _demo_after_feeds(
                rng=rng, staff=staff, start=start, as_of=as_of, members=members, say=say
            )
            audit_record(actor=None, action=SEED_FINISHED, changes=plan.as_changes())
    except DemoSeedRefused:
        raise
    except (Exception, KeyboardInterrupt) as exc:
        raise DemoSeedStopped(step=step, plan=plan, cause=exc) from exc
    return {
        "staff": staff,
        "api_token": api_key,
        "members": members,
        "feed_rows": total_rows,
        "first_day": start,
        "events": activity["events"],
    }


def _tracked_bulk_writes() -> None:
    """Let the history triggers of this transaction find `pgtrigger.ignore` set (to ignore
    nothing), as STYLE.md's "Known traps" measures: unset, every tracked row written takes
    the trigger's exception path."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT set_config('pgtrigger.ignore', '{}', true)")


def _loaded_files() -> dict[tuple[str, str], tuple[int, int, int]]:
    """(kind, file name) → (received, accepted, duplicates) of the files a seed loaded."""
    return {
        (kind, name): (received, accepted, duplicates)
        for kind, name, received, accepted, duplicates in FeedBatch.objects.filter(
            status=FeedStatus.LOADED
        ).values_list("kind", "file_name", "received", "accepted", "duplicates")
    }


def _demo_feed(
    kind: str,
    content: bytes,
    file_name: str,
    loaded: dict,
    progress: Callable[[str], None] | None = None,
) -> tuple[int, int, int]:
    """Load one demo file through `feed_import` (unless a resumed seed loaded it already);
    returns (accepted, duplicates, received)."""
    if (kind, file_name) in loaded:
        received, accepted, duplicates = loaded[kind, file_name]
        return accepted, duplicates, received
    batch = feed_import(kind=kind, file=io.BytesIO(content), file_name=file_name, progress=progress)
    return batch.accepted, batch.duplicates, batch.received


def _members_progress(say: Callable[[str], None], total: int) -> Callable[[str], None]:
    """The members feed's progress as `members 40,000/100,000` lines, about every tenth of
    the file and at least 10,000 rows apart (a small bank prints none)."""
    every = max(10_000, total // 10)
    shown = [0]

    def show(message: str) -> None:
        found = ROWS_READ.search(message)
        done = int(found[1].replace(",", "")) if found else 0
        if shown[0] + every <= done < total:
            shown[0] = done
            say(f"members {done:,}/{total:,}")

    return show


def _demo_feeds(
    rng: random.Random,
    people: list[DemoMember],
    start: date,
    as_of: date,
    loaded: dict,
    say: Callable[[str], None],
) -> int:
    """The daily asset and consumption files from `start` to the day before `as_of`;
    returns the rows received. A bigger bank reports every few days too."""
    days = (as_of - start).days
    every = 7 if len(people) >= 10_000 else days + 1
    day, total_rows = start, 0
    for done in range(1, days + 1):
        month_index = (day.year - start.year) * 12 + day.month - start.month
        assets, consumption = _day_files(rng, people, day, month_index)
        for kind, content in ((FeedKind.ASSETS, assets), (FeedKind.CONSUMPTION, consumption)):
            total_rows += _demo_feed(kind, content, f"{kind}_{day:%Y%m%d}.csv", loaded)[2]
        if day.day == calendar.monthrange(day.year, day.month)[1] or done == days:
            say(f"feeds: up to {day.isoformat()}, {total_rows:,} rows")
        elif done % every == 0:
            say(f"feeds {done}/{days} days: up to {day.isoformat()}, {total_rows:,} rows")
        day += timedelta(days=1)
    return total_rows


def _demo_after_feeds(
    *,
    rng: random.Random,
    staff: dict[str, User],
    start: date,
    as_of: date,
    members: int,
    say: Callable[[str], None],
) -> tuple[str, dict]:
    """Everything after the feeds (the caller's one transaction): the API token, benefits
    and budgets sized to the bank, tiers, entitlement grants, campaigns and governance."""
    api_key = demo_api_token()
    demo_benefits(as_of=as_of, members=members)
    say("benefits: catalogue, tier entitlements and budgets")
    # Grade the bank as if it had run every month of the feed window, so that tier history,
    # upgrades and downgrade protection are there to see on day one; and take the KPI
    # snapshots those nights would have taken, so that the dashboard's trends have a past.
    grading: list[date] = []
    basis = start if start.day == 1 else _months_back(start, -1)  # first complete month
    while _months_back(basis, -1) <= as_of:
        grading.append(_months_back(basis, -1) + timedelta(days=1))
        basis = _months_back(basis, -1)
    history = demo_kpi_history_dates(first=grading[0] if grading else as_of, as_of=as_of)
    for day in sorted({*grading, *history}):
        if day in grading:
            graded = tier_recompute(business_date=day)
            say(f"tiers as of {day}: {graded['changed']:,} changes")
        if day in history:
            _demo_kpi_snapshot(day)
    if history:
        say(f"KPI history: {len(history)} snapshots from {history[0]} to {history[-1]}")
    granted = _demo_grants_and_redemptions(rng, as_of)
    say(f"benefits: {granted:,} entitlement grants for this period, some already redeemed")
    activity = demo_campaigns(
        rng=rng,
        as_of=as_of,
        staff=staff,
        say=say,
        budget_fen=demo_budget_amounts(members)["campaign"],
    )
    demo_governance(rng=rng, as_of=as_of, staff=staff, say=say)
    if history:
        # the night before as_of again, now with its campaigns and grants
        kpi_snapshot_compute(business_date=history[-1])
    return api_key, activity


#: the demo's KPI history has a snapshot on each of this many days before the as-of date
KPI_HISTORY_LAST_DAYS = 7
#: and, before them, one every this many days and at every month-end
KPI_HISTORY_EVERY_DAYS = 7


def demo_kpi_history_dates(*, first: date, as_of: date) -> list[date]:
    """The business dates the demo takes KPI snapshots for, oldest first, from `first` (the
    first grading night) to the day before `as_of`: the first night, every month-end, one
    a week, and each of the last `KPI_HISTORY_LAST_DAYS` days (the nightly chain takes
    `as_of`'s own). About 15 for three months of feeds."""
    last = as_of - timedelta(days=1)
    if first > last:
        return []
    days = {first}
    day = last
    while day >= first:
        days.add(day)
        day -= timedelta(days=KPI_HISTORY_EVERY_DAYS)
    days.update(last - timedelta(days=n) for n in range(KPI_HISTORY_LAST_DAYS))
    month = first.replace(day=1)
    while month <= last:
        month_end = _months_back(month, -1) - timedelta(days=1)
        days.add(month_end)
        month = _months_back(month, -1)
    return sorted(day for day in days if first <= day <= last)


def _demo_kpi_snapshot(day: date) -> None:
    """The KPI snapshot of a past night: lifecycle stages as of that day (one UPDATE over
    the members, set-based), then the snapshot's fixed handful of GROUP BYs. Only the
    members' stages and tiers have a past here; what the seed creates later (campaigns,
    grants) is in the snapshots of the last night, taken again at the end."""
    lifecycle_recompute(business_date=day)
    kpi_snapshot_compute(business_date=day)


#: the demo's default bank, for which the base budgets below were chosen
BASE_MEMBERS = 2_000
#: budgets of the default bank in fen: the retail year and quarter (entitlements), the
#: campaigns' year. The quarter is 750.00 CNY per member; its entitlements need ~95 CNY.
BASE_BUDGET_FEN = {
    "annual": 500_000_000,
    "quarterly": 150_000_000,
    "campaign": 30_000_000,
}
#: budgets are rounded up to whole 10,000.00 CNY
BUDGET_ROUNDING_FEN = 1_000_000


def demo_budget_amounts(members: int) -> dict[str, int]:
    """The demo budgets (integer fen) for a bank of `members`: the default bank's amounts
    scaled by members / 2,000 (never below them), rounded up to 10,000.00 CNY — so a bank
    of any size has the same room per member as the default one."""
    scale = max(members, BASE_MEMBERS)
    amounts = {}
    for name, base in BASE_BUDGET_FEN.items():
        scaled = -(-base * scale // BASE_MEMBERS)  # ceiling, in integers
        amounts[name] = -(-scaled // BUDGET_ROUNDING_FEN) * BUDGET_ROUNDING_FEN
    return amounts


# code, zh-Hans, en, category, provider, unit cost (fen), validity days
BENEFITS = [
    (
        "TRANSFER_FEE",
        "跨行转账免手续费",
        "Free interbank transfer",
        "FEE_WAIVER",
        "本行",
        200,
        None,
    ),
    ("CASHBACK_10", "消费返现10元", "10 CNY cashback", "CASHBACK", "银联", 1_000, 30),
    ("DINING_HALF", "精选餐厅5折", "Half-price dining", "DINING", "美团", 4_000, None),
    ("LOUNGE", "机场贵宾厅", "Airport lounge", "LOUNGE", "龙腾出行", 15_000, None),
    ("HEALTH_CHECK", "年度体检", "Annual health check", "HEALTH", "美年大健康", 30_000, None),
    ("AIRPORT_CAR", "机场接送", "Airport transfer", "TRAVEL", "首汽约车", 20_000, None),
    ("BIRTHDAY_GIFT", "生日礼品", "Birthday gift", "GIFT", "本行", 5_000, None),
]
# tier code -> [(benefit code, quantity, period)]
ENTITLEMENTS = {
    "STANDARD": [("TRANSFER_FEE", 2, "MONTH")],
    "GOLD": [
        ("TRANSFER_FEE", 5, "MONTH"),
        ("CASHBACK_10", 1, "MONTH"),
        ("DINING_HALF", 1, "QUARTER"),
    ],
    "SUNFLOWER": [
        ("TRANSFER_FEE", 10, "MONTH"),
        ("DINING_HALF", 2, "QUARTER"),
        ("LOUNGE", 2, "QUARTER"),
        ("HEALTH_CHECK", 1, "YEAR"),
    ],
    "PRIVATE": [
        ("TRANSFER_FEE", 20, "MONTH"),
        ("LOUNGE", 6, "QUARTER"),
        ("HEALTH_CHECK", 2, "YEAR"),
        ("AIRPORT_CAR", 4, "YEAR"),
        ("BIRTHDAY_GIFT", 1, "YEAR"),
    ],
}


@transaction.atomic
def demo_benefits(*, as_of: date, members: int = BASE_MEMBERS) -> None:
    """A year budget of the retail department with a quarterly child budget (sized to the
    bank, `demo_budget_amounts`), the benefit catalogue and an entitlement matrix that
    differs from tier to tier (idempotent)."""
    amounts = demo_budget_amounts(members)
    retail = Department.objects.get(code="RETAIL")
    year_start, year_end = date(as_of.year, 1, 1), date(as_of.year, 12, 31)
    quarter = (as_of.month - 1) // 3
    q_start = date(as_of.year, 3 * quarter + 1, 1)
    q_end = _months_back(q_start, -3) - timedelta(days=1)
    annual, _ = Budget.objects.update_or_create(
        code=f"RETAIL-{as_of.year}",
        defaults={
            "name": f"零售权益年度预算 {as_of.year}",
            "department": retail,
            "period_start": year_start,
            "period_end": year_end,
            "amount_fen": amounts["annual"],
            "alert_percents": [80, 95],
        },
    )
    quarterly, _ = Budget.objects.update_or_create(
        code=f"RETAIL-{as_of.year}Q{quarter + 1}",
        defaults={
            "name": f"零售权益季度预算 {as_of.year}Q{quarter + 1}",
            "department": retail,
            "parent": annual,
            "period_start": q_start,
            "period_end": q_end,
            "amount_fen": amounts["quarterly"],
            "alert_percents": [80, 95],
        },
    )
    benefits = {}
    for code, name, name_en, category, provider, cost, validity in BENEFITS:
        benefits[code], _ = Benefit.objects.update_or_create(
            code=code,
            defaults={
                "name": name,
                "name_en": name_en,
                "category": category,
                "provider": provider,
                "unit_cost_fen": cost,
                "department": retail,
                "budget": quarterly,
                "validity_days": validity,
            },
        )
    tiers = {t.code: t for t in Tier.objects.filter(scheme__code="DEFAULT_MADA")}
    for tier_code, rows in ENTITLEMENTS.items():
        for benefit_code, quantity, period in rows:
            TierEntitlement.objects.update_or_create(
                benefit=benefits[benefit_code],
                tier=tiers[tier_code],
                defaults={"quantity": quantity, "period": period},
            )


#: share of each benefit's grants the demo marks as redeemed (low ones show in the demand
#: report as benefits nobody wants)
DEMO_REDEMPTION = {
    "TRANSFER_FEE": 0.7,
    "CASHBACK_10": 0.85,
    "DINING_HALF": 0.5,
    "LOUNGE": 0.35,
    "HEALTH_CHECK": 0.6,
    "AIRPORT_CAR": 0.1,
    "BIRTHDAY_GIFT": 0.05,
}


def _demo_grants_and_redemptions(rng: random.Random, as_of: date) -> int:
    """Grant this period's entitlements through the nightly service, then mark a share of
    them redeemed. (Demo history only: real redemptions go through `grant_redeem`.)"""
    counts = entitlement_grants_run(business_date=as_of)
    for code, share in DEMO_REDEMPTION.items():
        ids = list(
            BenefitGrant.objects.filter(benefit__code=code, status="GRANTED")
            .order_by("id")
            .values_list("id", flat=True)
        )
        chosen = [grant_id for grant_id in ids if rng.random() < share]
        for start in range(0, len(chosen), 5_000):
            BenefitGrant.objects.filter(pk__in=chosen[start : start + 5_000]).update(
                status="REDEEMED", redeemed_at=timezone.now()
            )
    return counts["granted"]
