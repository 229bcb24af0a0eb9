"""Member-event ingestion benchmark on PostgreSQL: accepted events per second through
`POST /api/v1/events/` (see bench/README.md and bench/EVENTS_RESULTS.md).

    .venv/bin/python bench/events.py \
        [--database-url postgres://postgres@127.0.0.1:5432/portal_bench_events] \
        [--members 100000] [--batches 40] [--batch-size 500] [--workers 1,2,4] \
        [--singles 500] [--budgets 1] [--seed 20261126] [--profile FILE] [--no-profile]

Creates the database if missing, migrates, truncates member, campaign and benefit data and
builds its world: `--members` members loaded with COPY (tiers and lifecycle stages spread
like a retail bank's: most ACTIVE, some AT_RISK, DORMANT, NEW), 10 ACTIVE campaigns of 5
tasks each created through the ORM (every event type, COUNT / AMOUNT_SUM /
CONSECUTIVE_DAYS, DAILY / WEEKLY / MONTHLY / ONCE, five 3-step ladders, campaigns and
tasks aimed at a stage or at tiers, points on every task and a benefit on a few), charged
to `--budgets` budgets too large to run out, and a SYSTEM-role user with an API token
(scope events-write).

Every request goes through the real stack in-process: django.test.Client → middleware →
API token authentication → MatrixPermission → EventBatchView → events_ingest. Then:

  (1) throughput: `--batches` batches of `--batch-size` valid, distinct events (a realistic
      type mix, members weighted by how active their stage is, occurred in the last three
      days), after 2 warm-up batches per process, posted by 1, 2 and 4 worker PROCESSES
      (multiprocessing "spawn", each with django.setup() and its own connection, released
      together) — the batches are split between the processes. Accepted events/s = accepted
      / wall time. Every response must accept the whole batch;
  (2) replay: batches already posted, sent again (all duplicates);
  (3) latency: `--singles` single-event POSTs one after another, p50 / p99.

It prints a table, the completions and rewards issued in each run, the ratio to the goal
(≥ 3,000 accepted events/s on this machine) and PASS/FAIL. Below the goal (or with
`--profile`) it profiles one batch: its SQL statements grouped by kind with their share of
the request (execute_wrapper, no profiler), then cProfile's view by phase and function.
Progress goes to stderr, the report to stdout; exit status 1 on FAIL (goal missed, a batch
not fully accepted, or a request error).
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing
import os
import platform
import random
import re
import statistics
import sys
import tempfile
import time
from collections import Counter, defaultdict
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from bench_common import django_setup, ensure_database

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/portal_bench_events"
GOAL_EVENTS_PER_SECOND = 3_000
DEFAULT_PROFILE = os.path.join(tempfile.gettempdir(), "bench_events.prof")
WARMUP_BATCHES = 2
REPLAY_BATCHES = 10
ENDPOINT = "/api/v1/events/"
PREFIX = "BENCH_EV"

#: lifecycle stage → (share of members, relative chance that an event comes from one)
STAGES = {
    "ACTIVE": (0.68, 1.0),
    "AT_RISK": (0.10, 0.4),
    "DORMANT": (0.12, 0.1),
    "NEW": (0.06, 1.0),
    "REACTIVATED": (0.03, 1.0),
    "CHURNED": (0.01, 0.05),
}
#: tier code (DEFAULT_MADA) → share of members
TIERS = {"STANDARD": 0.62, "GOLD": 0.28, "SUNFLOWER": 0.09, "PRIVATE": 0.01}
#: event type → share of events (app traffic: mostly logins and sign-ins)
EVENT_MIX = {
    "LOGIN": 34,
    "SIGN_IN": 26,
    "CARD_SPEND": 22,
    "FUND_PURCHASE": 8,
    "PAYROLL": 4,
    "BIND_CARD": 3,
    "REFERRAL": 3,
}
FUND_AMOUNTS = [1_000, 2_000, 5_000, 10_000, 20_000, 50_000, 100_000, 200_000, 500_000]
FUND_WEIGHTS = [20, 15, 20, 15, 12, 9, 5, 3, 1]

# Worker processes inherit the parent's start, so every progress line counts from it.
_STARTED = float(os.environ.setdefault("BENCH_EVENTS_STARTED", str(time.time())))


def progress(message: str) -> None:
    print(f"[{time.time() - _STARTED:6.1f}s] {message}", file=sys.stderr, flush=True)


# --- database ------------------------------------------------------------------------------


# --- the world: members (COPY), campaigns and tasks (ORM), a system client -----------------


MEMBER_COLUMNS = (
    "id, member_no, name, phone, id_number, registered_at, status, channels, credit_risk, "
    "lifecycle_stage, stage_since, last_active_on, points_balance, tier_id, tier_since, "
    "computed_tier_id, computed_since, tier_months_below, created_at, updated_at"
)


def _pick(rng: random.Random, shares: dict[str, float]) -> str:
    roll, total = rng.random(), 0.0
    for key, share in shares.items():
        total += share
        if roll < total:
            return key
    return key


def member_lines(n: int, seed: int, tier_ids: dict[str, int], today: date):
    """COPY text lines for members 1..n: stage, tier and last activity consistent with each
    other (an AT_RISK member was last active 30-89 days ago, a DORMANT one 90-364 …)."""
    rng = random.Random(seed)
    now = datetime.now(UTC).isoformat()
    stage_shares = {stage: share for stage, (share, _) in STAGES.items()}
    last_active_days = {
        "ACTIVE": (1, 29),
        "AT_RISK": (30, 89),
        "DORMANT": (90, 364),
        "NEW": (1, 10),
        "REACTIVATED": (1, 20),
        "CHURNED": (365, 700),
    }
    for i in range(1, n + 1):
        stage = _pick(rng, stage_shares)
        tier = tier_ids[_pick(rng, TIERS)]
        if stage == "NEW":
            registered = today - timedelta(days=rng.randint(1, 29))
        else:
            registered = today - timedelta(days=rng.randint(120, 3000))
        low, high = last_active_days[stage]
        last_active = max(today - timedelta(days=rng.randint(low, high)), registered)
        stage_since = (today - timedelta(days=rng.randint(1, 60))).isoformat()
        tier_since = (today - timedelta(days=rng.randint(30, 700))).isoformat()
        registered_at = datetime(
            registered.year, registered.month, registered.day, rng.randrange(24), tzinfo=UTC
        ).isoformat()
        yield (
            f"{i}\tM{i:09d}\tBench member {i}\t139{i:08d}\t1101011980{i:08d}\t{registered_at}\t"
            f"ACTIVE\t[]\tf\t{stage}\t{stage_since}\t{last_active.isoformat()}\t0\t{tier}\t"
            f"{tier_since}\t{tier}\t{tier_since}\t0\t{now}\t{now}\n"
        )


def load_members(url: str, n: int, seed: int, tier_ids: dict[str, int], today: date) -> None:
    """Truncate member, campaign and benefit data (and the audit log grants write to), then
    COPY n members."""
    import psycopg

    with psycopg.connect(url) as conn:
        tables = [
            row[0]
            for row in conn.execute(
                "SELECT DISTINCT table_name FROM information_schema.columns "
                "WHERE table_schema = 'public' AND column_name = 'member_id' ORDER BY 1"
            )
        ]
        progress(f"truncating members_member, campaigns, benefits, {len(tables)} member tables")
        conn.execute(
            "TRUNCATE members_member, members_feedbatch, campaigns_campaign, "
            "campaigns_eventbatch, benefits_budget, benefits_benefit, portal_auditentry, "
            f"{', '.join(tables)} RESTART IDENTITY CASCADE"
        )
        started = time.perf_counter()
        copy_sql = f"COPY members_member ({MEMBER_COLUMNS}) FROM STDIN"
        with conn.cursor() as cur, cur.copy(copy_sql) as copy:
            block: list[str] = []
            for index, line in enumerate(member_lines(n, seed, tier_ids, today), start=1):
                block.append(line)
                if len(block) >= 20_000:
                    copy.write("".join(block))
                    block.clear()
                    progress(f"  COPY members_member: {index:,} rows")
            copy.write("".join(block))
        conn.execute(
            "SELECT setval(pg_get_serial_sequence('members_member', 'id'), %s)", [max(n, 1)]
        )
        conn.commit()
        progress(f"  {n:,} members loaded in {time.perf_counter() - started:.1f} s")
    with psycopg.connect(url, autocommit=True) as conn:
        # Each run starts from these activity dates (see reset_activity).
        conn.execute("DROP TABLE IF EXISTS bench_events_last_active")
        conn.execute(
            "CREATE TABLE bench_events_last_active AS SELECT id, last_active_on FROM members_member"
        )
        conn.execute("VACUUM ANALYZE members_member")


#: what accepted events write; emptied before each run so that the runs compare like with like
ACTIVITY_TABLES = (
    "campaigns_memberevent, campaigns_eventbatch, campaigns_taskprogress, "
    "campaigns_taskcompletion, campaigns_taskcapcounter, members_pointsentry, "
    "members_memberactivityday, members_membermonthlystat, benefits_budgetentry, "
    "benefits_benefitgrant, portal_auditentry"
)


def reset_activity(url: str) -> None:
    """Back to the world as built: no events, progress, completions, points or grants; the
    members' activity dates and points balances and the budgets as they were loaded."""
    import psycopg

    started = time.perf_counter()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"TRUNCATE {ACTIVITY_TABLES} RESTART IDENTITY CASCADE")
        conn.execute(
            "UPDATE members_member m SET points_balance = 0, last_active_on = s.last_active_on "
            "FROM bench_events_last_active s WHERE m.id = s.id AND (m.points_balance <> 0 "
            "OR m.last_active_on IS DISTINCT FROM s.last_active_on)"
        )
        conn.execute("UPDATE benefits_budget SET consumed_fen = 0 WHERE consumed_fen <> 0")
        conn.execute("VACUUM ANALYZE members_member")
        conn.execute("VACUUM ANALYZE benefits_budget")
    progress(f"  reset to the world as built ({time.perf_counter() - started:.1f} s)")


# (name, event type, measure, target, recurrence, points, extras). Extras: steps (target,
# points, benefit code or None), min (minimum event amount), benefit (task reward),
# tiers (offered tier codes), stages (offered stages), per_member / per_period (caps).
CAMPAIGNS = [
    ("ACT", "月度活跃计划", {}, [
        ("每日签到", "SIGN_IN", "COUNT", "1", "DAILY", 5, {}),
        ("一周连续登录5天", "LOGIN", "CONSECUTIVE_DAYS", "5", "WEEKLY", 50, {}),
        ("本月签到满20次", "SIGN_IN", "COUNT", "20", "MONTHLY", 200, {}),
        ("本月刷卡5笔(满50元)", "CARD_SPEND", "COUNT", "5", "MONTHLY", 0,
         {"min": "50", "benefit": "CASHBACK", "per_period": 1_000_000}),
        ("绑定信用卡", "BIND_CARD", "COUNT", "1", "ONCE", 200, {}),
    ]),
    ("FUND", "基金申购季", {}, [
        ("本月基金申购阶梯", "FUND_PURCHASE", "AMOUNT_SUM", "10000", "MONTHLY", 0,
         {"steps": [("10000", 100, None), ("50000", 600, None), ("200000", 3000, "DINING")]}),
        ("首次申购基金", "FUND_PURCHASE", "COUNT", "1", "ONCE", 100, {}),
        ("每周定投(满500元)", "FUND_PURCHASE", "COUNT", "1", "WEEKLY", 20, {"min": "500"}),
        ("本月申购3笔", "FUND_PURCHASE", "COUNT", "3", "MONTHLY", 150, {}),
        ("每周登录3次", "LOGIN", "COUNT", "3", "WEEKLY", 10, {}),
    ]),
    ("WAKE", "沉睡客户唤醒", {"stages": ["DORMANT"]}, [
        ("连续登录3天", "LOGIN", "CONSECUTIVE_DAYS", "3", "ONCE", 500, {"per_member": 1}),
        ("唤醒后首笔申购", "FUND_PURCHASE", "AMOUNT_SUM", "1000", "ONCE", 300,
         {"tiers": ["GOLD", "SUNFLOWER", "PRIVATE"]}),
        ("回归签到", "SIGN_IN", "COUNT", "1", "ONCE", 100, {}),
        ("回归刷卡满500元", "CARD_SPEND", "AMOUNT_SUM", "500", "ONCE", 200, {}),
        ("回归绑卡", "BIND_CARD", "COUNT", "1", "ONCE", 300, {}),
    ]),
    ("PAY", "代发工资季", {}, [
        ("本月代发工资", "PAYROLL", "AMOUNT_SUM", "3000", "MONTHLY", 100, {}),
        ("代发工资阶梯", "PAYROLL", "AMOUNT_SUM", "5000", "MONTHLY", 0,
         {"steps": [("5000", 50, None), ("10000", 100, None), ("20000", 200, None)]}),
        ("本月刷卡10笔", "CARD_SPEND", "COUNT", "10", "MONTHLY", 100, {}),
        ("每日登录", "LOGIN", "COUNT", "1", "DAILY", 2, {}),
        ("代发客户绑卡", "BIND_CARD", "COUNT", "1", "ONCE", 100, {}),
    ]),
    ("CARD", "刷卡节", {}, [
        ("单周刷卡满1000元", "CARD_SPEND", "AMOUNT_SUM", "1000", "WEEKLY", 50, {}),
        ("刷卡笔数阶梯", "CARD_SPEND", "COUNT", "3", "MONTHLY", 0,
         {"steps": [("3", 30, None), ("10", 100, None), ("30", 500, None)]}),
        ("每日刷卡", "CARD_SPEND", "COUNT", "1", "DAILY", 3, {}),
        ("连续刷卡3天", "CARD_SPEND", "CONSECUTIVE_DAYS", "3", "WEEKLY", 30, {}),
        ("本月刷卡满5000元", "CARD_SPEND", "AMOUNT_SUM", "5000", "MONTHLY", 0,
         {"benefit": "CASHBACK"}),
    ]),
    ("REF", "推荐有礼", {}, [
        ("推荐好友阶梯", "REFERRAL", "COUNT", "1", "MONTHLY", 0,
         {"steps": [("1", 100, None), ("3", 500, None), ("5", 1000, None)]}),
        ("首次推荐", "REFERRAL", "COUNT", "1", "ONCE", 200, {}),
        ("本月登录5次", "LOGIN", "COUNT", "5", "MONTHLY", 20, {}),
        ("本月签到10次", "SIGN_IN", "COUNT", "10", "MONTHLY", 30, {}),
        ("每周推荐", "REFERRAL", "COUNT", "1", "WEEKLY", 50, {}),
    ]),
    ("GOLD", "金卡专享", {"tiers": ["GOLD", "SUNFLOWER", "PRIVATE"]}, [
        ("本月申购满5万", "FUND_PURCHASE", "AMOUNT_SUM", "50000", "MONTHLY", 500, {}),
        ("本月刷卡满3000元", "CARD_SPEND", "AMOUNT_SUM", "3000", "MONTHLY", 100, {}),
        ("连续登录7天", "LOGIN", "CONSECUTIVE_DAYS", "7", "MONTHLY", 100, {}),
        ("每日签到", "SIGN_IN", "COUNT", "1", "DAILY", 10, {}),
        ("本月代发", "PAYROLL", "COUNT", "1", "MONTHLY", 50, {}),
    ]),
    ("NEW", "新客礼", {"stages": ["NEW"]}, [
        ("新客绑卡", "BIND_CARD", "COUNT", "1", "ONCE", 300, {}),
        ("连续签到3天", "SIGN_IN", "CONSECUTIVE_DAYS", "3", "ONCE", 100, {}),
        ("首笔申购满1000元", "FUND_PURCHASE", "AMOUNT_SUM", "1000", "ONCE", 200, {}),
        ("首月刷卡3笔", "CARD_SPEND", "COUNT", "3", "ONCE", 100, {}),
        ("每日登录", "LOGIN", "COUNT", "1", "DAILY", 5, {}),
    ]),
    ("RISK", "流失预警挽留", {"stages": ["AT_RISK"]}, [
        ("每日登录", "LOGIN", "COUNT", "1", "DAILY", 10, {}),
        ("一周连续签到3天", "SIGN_IN", "CONSECUTIVE_DAYS", "3", "WEEKLY", 50, {}),
        ("本月申购满5000元", "FUND_PURCHASE", "AMOUNT_SUM", "5000", "MONTHLY", 200, {}),
        ("一周刷卡3笔", "CARD_SPEND", "COUNT", "3", "WEEKLY", 30, {}),
        ("本月代发满3000元", "PAYROLL", "AMOUNT_SUM", "3000", "MONTHLY", 100, {}),
    ]),
    ("SUN", "金葵花私享", {}, [
        ("私享申购阶梯", "FUND_PURCHASE", "AMOUNT_SUM", "100000", "MONTHLY", 0,
         {"steps": [("100000", 1000, None), ("500000", 5000, None),
                    ("1000000", 10000, "DINING")],
          "tiers": ["SUNFLOWER", "PRIVATE"]}),
        ("每周登录", "LOGIN", "COUNT", "1", "WEEKLY", 20, {"tiers": ["SUNFLOWER", "PRIVATE"]}),
        ("本月刷卡满1万元", "CARD_SPEND", "AMOUNT_SUM", "10000", "MONTHLY", 300,
         {"tiers": ["SUNFLOWER", "PRIVATE"]}),
        ("一周连续签到5天", "SIGN_IN", "CONSECUTIVE_DAYS", "5", "WEEKLY", 50,
         {"tiers": ["SUNFLOWER", "PRIVATE"]}),
        ("推荐高净值好友", "REFERRAL", "COUNT", "1", "MONTHLY", 500,
         {"tiers": ["SUNFLOWER", "PRIVATE"]}),
    ]),
]  # fmt: skip


def build_campaigns(today: date, budgets: int) -> dict:
    """10 ACTIVE campaigns × 5 tasks (windows from 30 days ago to 60 days ahead), their
    budgets (room for 10 billion CNY each: never exhausted), two benefits and the system
    client that posts events with an API token scoped to events-write."""
    from django.contrib.auth.models import Group

    from benefits.models import Benefit, Budget
    from campaigns.models import Campaign, Task, TaskStep
    from members.models import Tier
    from portal.choices import Role
    from portal.models import Department, User
    from portal.services import api_token_issue

    department, _ = Department.objects.get_or_create(code=PREFIX, defaults={"name": "Bench"})
    operator, _ = User.objects.get_or_create(
        username="bench_events_operator", defaults={"department": department}
    )
    system, _ = User.objects.get_or_create(
        username="bench_events_system", defaults={"department": department}
    )
    system.groups.set([Group.objects.get(name=str(Role.SYSTEM))])
    token = api_token_issue(user=system, name="bench", scopes=["events-write"], actor=None)[1]

    budget_rows = [
        Budget.objects.create(
            code=f"{PREFIX}-{i}",
            name=f"Bench campaign budget {i}",
            department=department,
            period_start=today - timedelta(days=365),
            period_end=today + timedelta(days=365),
            amount_fen=1_000_000_000_000,  # 10,000,000,000.00 CNY
        )
        for i in range(budgets)
    ]
    benefits = {
        code: Benefit.objects.create(
            code=f"{PREFIX}-{code}",
            name=name,
            name_en=code.title(),
            category=code,
            unit_cost_fen=cost,
            department=department,
            budget=budget_rows[0],
            validity_days=30,
        )
        for code, name, cost in (("CASHBACK", "刷卡返现10元", 1_000), ("DINING", "餐饮半价", 5_000))
    }
    tiers = {t.code: t for t in Tier.objects.filter(scheme__code="DEFAULT_MADA")}
    tasks = steps = 0
    for number, (code, name, targeting, task_specs) in enumerate(CAMPAIGNS):
        campaign = Campaign.objects.create(
            code=f"{PREFIX}-{code}",
            name=name,
            department=department,
            budget=budget_rows[number % budgets],
            starts_on=today - timedelta(days=30),
            ends_on=today + timedelta(days=60),
            target_stages=targeting.get("stages", []),
            status="ACTIVE",
            created_by=operator,
        )
        campaign.target_tiers.set([tiers[t] for t in targeting.get("tiers", [])])
        for position, spec in enumerate(task_specs, start=1):
            task_name, event_type, measure, target, recurrence, points, extra = spec
            task = Task.objects.create(
                campaign=campaign,
                position=position,
                name=task_name,
                event_type=event_type,
                measure=measure,
                target=Decimal(target),
                recurrence=recurrence,
                reward_points=points,
                reward_benefit=benefits[extra["benefit"]] if "benefit" in extra else None,
                min_event_amount=Decimal(extra.get("min", "0")),
                offered_stages=extra.get("stages", []),
                max_rewards_per_member=extra.get("per_member"),
                max_rewards_per_period=extra.get("per_period"),
            )
            task.offered_tiers.set([tiers[t] for t in extra.get("tiers", [])])
            for step_no, (step_target, step_points, benefit) in enumerate(
                extra.get("steps", ()), start=1
            ):
                TaskStep.objects.create(
                    task=task,
                    step_no=step_no,
                    target=Decimal(step_target),
                    reward_points=step_points,
                    reward_benefit=benefits[benefit] if benefit else None,
                )
                steps += 1
            tasks += 1
    progress(f"  {len(CAMPAIGNS)} campaigns, {tasks} tasks, {steps} ladder steps, "
             f"{budgets} budget(s)")  # fmt: skip
    return {"token": token, "tasks": tasks}


# --- events --------------------------------------------------------------------------------


class EventSource:
    """Valid events as a mobile-banking system sends them: distinct event_ids, a realistic
    type mix, members weighted by how active their stage is, occurred in the last 3 days."""

    def __init__(self, seed: int, prefix: str) -> None:
        from members.models import Member

        self.rng = random.Random(seed)
        self.prefix = prefix
        self.count = 0
        self.members: list[str] = []
        weights: list[float] = []
        for member_no, stage in Member.objects.values_list("member_no", "lifecycle_stage"):
            self.members.append(member_no)
            weights.append(STAGES.get(stage, (0, 1.0))[1])
        self.cum_weights = list(_accumulate(weights))
        self.types = list(EVENT_MIX)
        self.type_weights = list(_accumulate(EVENT_MIX.values()))

    def event(self, now: datetime) -> dict:
        rng = self.rng
        kind = rng.choices(self.types, cum_weights=self.type_weights)[0]
        self.count += 1
        body = {
            "event_id": f"{self.prefix}-{self.count:07d}",
            "member_no": rng.choices(self.members, cum_weights=self.cum_weights)[0],
            "type": kind,
            "occurred_at": (now - timedelta(seconds=rng.randint(60, 3 * 86400))).isoformat(),
            "channel": rng.choices(["MOBILE", "WECHAT", "ONLINE"], [7, 2, 1])[0],
        }
        if kind == "CARD_SPEND":
            body["amount"] = f"{min(rng.lognormvariate(5.0, 1.0), 50_000):.2f}"
        elif kind == "FUND_PURCHASE":
            body["amount"] = f"{rng.choices(FUND_AMOUNTS, FUND_WEIGHTS)[0]:.2f}"
        elif kind == "PAYROLL":
            body["amount"] = f"{rng.randint(3_000, 30_000)}.00"
        return body

    def batch(self, size: int) -> bytes:
        now = datetime.now(UTC)
        return json.dumps({"events": [self.event(now) for _ in range(size)]}).encode()


def _accumulate(values):
    total = 0.0
    for value in values:
        total += value
        yield total


def api_client(token: str):
    from django.test import Client

    return Client(HTTP_AUTHORIZATION=f"Token {token}")


def post(client, body: bytes) -> dict:
    response = client.post(ENDPOINT, data=body, content_type="application/json")
    if response.status_code != 200:
        raise RuntimeError(f"HTTP {response.status_code}: {response.content[:300]!r}")
    return response.json()


class DeadlockRetries(logging.Handler):
    """Counts events_ingest's "retried after a deadlock" warnings."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0

    def emit(self, record) -> None:
        if "deadlock" in record.getMessage():
            self.count += 1


# --- one worker process --------------------------------------------------------------------


def worker(url, index, phase, batches, size, seed, token, gate, out):
    """Post warm-up batches, wait for the others, then post `batches` timed batches."""
    try:
        django_setup(url)
        from django.db import connection

        retries = DeadlockRetries()
        logging.getLogger("campaigns.services").addHandler(retries)
        source = EventSource(seed + 1000 * index, f"{phase}-w{index}")
        client = api_client(token)
        for _ in range(WARMUP_BATCHES):
            post(client, source.batch(size))
        bodies = [source.batch(size) for _ in range(batches)]
        gate.wait(timeout=1800)
        started = time.time()
        accepted = duplicates = rejected = 0
        problems: list[str] = []
        seconds: list[float] = []
        for number, body in enumerate(bodies):
            began = time.perf_counter()
            try:
                result = post(client, body)
            except Exception as exc:  # recorded; the run fails but goes on
                problems.append(f"{phase} w{index} batch {number}: {exc!r}"[:300])
                continue
            finally:
                seconds.append(time.perf_counter() - began)
            accepted += result["accepted"]
            duplicates += result["duplicates"]
            rejected += len(result["rejected"])
            if (number + 1) % 10 == 0 or number + 1 == len(bodies):
                progress(f"  {phase} worker {index}: {number + 1}/{len(bodies)} batches")
            if result["accepted"] != size:
                problems.append(
                    f"{phase} w{index} batch {number}: accepted {result['accepted']} of {size} "
                    f"(duplicates {result['duplicates']}, rejected {result['rejected'][:2]})"
                )
        finished = time.time()
        connection.close()
        out.put({"index": index, "accepted": accepted, "duplicates": duplicates,
                 "rejected": rejected, "started": started, "finished": finished,
                 "seconds": seconds, "problems": problems, "retries": retries.count,
                 "error": None})  # fmt: skip
    except Exception as exc:  # reported, never silently lost
        out.put({"index": index, "accepted": 0, "duplicates": 0, "rejected": 0,
                 "started": 0.0, "finished": 0.0, "seconds": [], "problems": [],
                 "retries": 0, "error": repr(exc)})  # fmt: skip


def deadlocks() -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_force_next_flush()")
        cursor.execute("SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()")
        return int(cursor.fetchone()[0])


def rewards_between(started: float, finished: float) -> dict:
    """What the events of a timed run set off: batches, completions and their rewards."""
    from django.db.models import Count, Sum

    from campaigns.models import EventBatch, TaskCompletion

    window = (datetime.fromtimestamp(started, UTC), datetime.fromtimestamp(finished, UTC))
    batches = EventBatch.objects.filter(received_at__range=window).aggregate(
        n=Count("id"), accepted=Sum("accepted"), completions=Sum("completions")
    )
    status = dict(
        TaskCompletion.objects.filter(completed_at__range=window)
        .values_list("reward_status")
        .annotate(n=Count("id"))
    )
    return {
        "batches": batches["n"],
        "accepted": batches["accepted"] or 0,
        "completions": batches["completions"] or 0,
        "by_status": status,
    }


class BackendStates:
    """Samples pg_stat_activity of the workers' connections (every 0.1 s, own connection):
    on the CPU or disk in PostgreSQL, waiting for a row lock, or idle — Python at work, inside
    the batch's transaction or between requests."""

    def __init__(self, url: str) -> None:
        import psycopg

        self.conn = psycopg.connect(url, autocommit=True)
        self.samples: Counter[str] = Counter()
        self.waiting: Counter[str] = Counter()  # statement kinds seen waiting for a lock

    def sample(self) -> None:
        rows = self.conn.execute(
            "SELECT state, wait_event_type, query FROM pg_stat_activity WHERE datname = "
            "current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
        ).fetchall()
        for state, wait, query in rows:
            if state == "active" and wait == "Lock":
                self.samples["lock wait"] += 1
                self.waiting[statement_kind(query or "?")] += 1
            elif state == "active":
                self.samples["in PostgreSQL"] += 1
            elif state and state.startswith("idle in transaction"):
                self.samples["Python, in transaction"] += 1
            else:
                self.samples["Python, outside a transaction"] += 1

    def shares(self) -> dict[str, float]:
        total = sum(self.samples.values()) or 1
        return {key: value / total for key, value in self.samples.items()}

    def close(self) -> None:
        self.conn.close()


def run_phase(url, *, workers: int, batches: int, size: int, seed: int, token: str) -> dict:
    import queue
    import threading

    from django.db import connection

    name = f"p{workers}"
    reset_activity(url)
    ctx = multiprocessing.get_context("spawn")
    gate = ctx.Barrier(workers + 1)  # the parent too: it samples from the release on
    out = ctx.Queue()
    shares = [batches // workers + (1 if i < batches % workers else 0) for i in range(workers)]
    before = deadlocks()
    connection.close()  # the children open their own
    processes = [
        ctx.Process(target=worker, args=(url, i, name, shares[i], size, seed, token, gate, out))
        for i in range(workers)
    ]
    progress(f"{workers} process(es): {WARMUP_BATCHES} warm-up batches each, then "
             f"{batches} timed batches of {size}")  # fmt: skip
    for process in processes:
        process.start()
    try:
        gate.wait(timeout=1800)
    except threading.BrokenBarrierError:
        progress("  a worker never reached the start (see its error)")
    states = BackendStates(url)
    results: list[dict] = []
    deadline = time.monotonic() + 3600
    while len(results) < workers and time.monotonic() < deadline:
        try:
            results.append(out.get(timeout=0.1))
        except queue.Empty:
            if len(results) == 0:  # only while every worker is still posting
                states.sample()
    states.close()
    for process in processes:
        process.join(timeout=60)
    errors = [r["error"] for r in results if r["error"]]
    problems = [p for r in results for p in r["problems"]]
    started = min((r["started"] for r in results if not r["error"]), default=0.0)
    finished = max((r["finished"] for r in results if not r["error"]), default=0.0)
    wall = finished - started
    accepted = sum(r["accepted"] for r in results)
    rate = accepted / wall if wall > 0 else 0.0
    batch_seconds = sorted(s for r in results for s in r["seconds"])
    rewards = rewards_between(started, finished) if wall > 0 else {}
    progress(f"{workers} process(es): {accepted:,} accepted in {wall:.1f} s = {rate:,.0f}/s; "
             f"{len(problems)} problem(s), {len(errors)} error(s)")  # fmt: skip
    return {
        "label": f"{workers} process{'es' if workers > 1 else ''}",
        "workers": workers,
        "batches": batches,
        "accepted": accepted,
        "duplicates": sum(r["duplicates"] for r in results),
        "rejected": sum(r["rejected"] for r in results),
        "seconds": wall,
        "rate": rate,
        "batch_p50": statistics.median(batch_seconds) if batch_seconds else 0.0,
        "batch_max": batch_seconds[-1] if batch_seconds else 0.0,
        "retries": sum(r["retries"] for r in results),
        "deadlocks": deadlocks() - before,
        "states": states.shares(),
        "lock_waits": states.waiting.most_common(3),
        "rewards": rewards,
        "problems": problems,
        "errors": errors,
    }


# --- in the parent: replay, latency, profile -----------------------------------------------


def run_replay(bodies: list[bytes], client, size: int) -> dict:
    """Batches the last run posted, sent again: every event must be a duplicate."""
    problems: list[str] = []
    started = time.perf_counter()
    duplicates = 0
    for number, body in enumerate(bodies):
        result = post(client, body)
        duplicates += result["duplicates"]
        if result["accepted"] or result["duplicates"] != size:
            problems.append(f"replay batch {number}: {result['accepted']} accepted, "
                            f"{result['duplicates']} duplicates of {size}")  # fmt: skip
    seconds = time.perf_counter() - started
    progress(f"replay: {duplicates:,} duplicates in {seconds:.2f} s")
    return {"duplicates": duplicates, "seconds": seconds, "rate": duplicates / seconds,
            "problems": problems}  # fmt: skip


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))]


def run_latency(source: EventSource, client, count: int) -> dict:
    """`count` single-event POSTs one after another; each must be accepted."""
    now = datetime.now(UTC)
    bodies = [json.dumps({"events": [source.event(now)]}).encode() for _ in range(count)]
    for _ in range(5):  # warm-up
        post(client, json.dumps({"events": [source.event(now)]}).encode())
    times: list[float] = []
    problems: list[str] = []
    for number, body in enumerate(bodies):
        began = time.perf_counter()
        result = post(client, body)
        times.append(time.perf_counter() - began)
        if result["accepted"] != 1:
            problems.append(f"single event {number}: {result}"[:200])
    progress(f"latency: {count} single events, p50 {percentile(times, 0.5) * 1000:.1f} ms")
    return {
        "count": count,
        "p50": percentile(times, 0.50),
        "p90": percentile(times, 0.90),
        "p99": percentile(times, 0.99),
        "max": max(times),
        "mean": statistics.fmean(times),
        "problems": problems,
    }


_TABLE = re.compile(r'(?:INSERT INTO|UPDATE|FROM)\s+"?(\w+)"?', re.IGNORECASE)


def statement_kind(sql: str) -> str:
    """A statement's verb and table, e.g. `UPDATE benefits_budget`, `SAVEPOINT`."""
    verb = sql.split(None, 1)[0].upper()
    if verb in ("SAVEPOINT", "RELEASE", "ROLLBACK"):
        return "SAVEPOINT / RELEASE"
    match = _TABLE.search(sql)
    if verb == "SELECT" and "FOR UPDATE" in sql.upper():
        verb = "SELECT … FOR UPDATE"
    return f"{verb} {match.group(1) if match else ''}".strip()


class StatementTimes:
    """Django execute_wrapper: time and count of every SQL statement, by kind."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.count: Counter[str] = Counter()

    def __call__(self, execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            kind = statement_kind(sql)
            self.seconds[kind] += time.perf_counter() - started
            self.count[kind] += 1


def profile_batch(source: EventSource, client, size: int, path: str) -> dict:
    """One batch with every SQL statement timed (no profiler: honest shares), then another
    under cProfile (saved to `path`) for where the Python time goes."""
    import cProfile
    import pstats

    from django.db import connection

    statements = StatementTimes()
    body = source.batch(size)
    with connection.execute_wrapper(statements):
        started = time.perf_counter()
        result = post(client, body)
        sql_request = time.perf_counter() - started
    single = StatementTimes()
    with connection.execute_wrapper(single):
        started = time.perf_counter()
        post(client, json.dumps({"events": [source.event(datetime.now(UTC))]}).encode())
        single_request = time.perf_counter() - started
    profiler = cProfile.Profile()
    body = source.batch(size)
    started = time.perf_counter()
    profiled = profiler.runcall(post, client, body)
    profiled_seconds = time.perf_counter() - started
    profiler.dump_stats(path)
    stats = pstats.Stats(path)
    phases: dict[str, float] = defaultdict(float)
    wanted = {
        "event_parse": "parse events (event_parse)",
        "_store_events": "store events (INSERT … ON CONFLICT)",
        "_record_activity": "activity days, monthly stat, last_active",
        "live_tasks": "live_tasks (read once per batch)",
        "segment_members": "segment_members",
        "_write_progress": "progress UPDATE … FROM json_to_recordset",
        "_advance_tasks": "_advance_tasks (progress: insert, lock, compute, write)",
        "_completions_record": "completions INSERT … ON CONFLICT",
        "reward_issue_one": "reward_issue_one (benefit, capped or over-budget rewards)",
        "budget_consume": "  of which budget_consume",
        "points_earn": "  of which points_earn",
        "grant_create": "  of which grant_create",
        "_cap_take_places": "  of which caps",
        "_points_rewards_issue": "points rewards as a set (ledger, balances, budget)",
        "authenticate": "DRF authentication",
        "events_ingest": "events_ingest (whole service)",
    }
    for (filename, _line, function), (_cc, _nc, _tt, cumulative, _callers) in stats.stats.items():
        ours = str(ROOT) in filename and ".venv" not in filename
        if function in wanted and (ours or "rest_framework/authentication" in filename):
            phases[wanted[function]] += cumulative
    return {
        "sql_request": sql_request,
        "sql_result": result,
        "statements": statements,
        "single": single,
        "single_request": single_request,
        "profiled_seconds": profiled_seconds,
        "profiled_result": profiled,
        "phases": phases,
        "path": path,
    }


def print_profile(profile: dict, size: int) -> None:
    import pstats

    statements: StatementTimes = profile["statements"]
    total = profile["sql_request"]
    sql_total = sum(statements.seconds.values())
    n_statements = sum(statements.count.values())
    print()
    print(f"PROFILE of one batch of {size} events (accepted {profile['sql_result']['accepted']}):"
          f" {total * 1000:.0f} ms for the request, {n_statements:,} SQL statements taking "
          f"{sql_total * 1000:.0f} ms ({100 * sql_total / total:.0f} %) — the rest is Python "
          "and COMMIT")  # fmt: skip
    print(f"  {'statement kind':<44} {'count':>6} {'ms':>8} {'share':>6}")
    for kind, seconds in sorted(statements.seconds.items(), key=lambda kv: -kv[1])[:18]:
        print(f"  {kind:<44} {statements.count[kind]:>6,} {seconds * 1000:>8.1f} "
              f"{100 * seconds / total:>5.1f}%")  # fmt: skip
    single: StatementTimes = profile["single"]
    print(
        f"  one single-event request: {profile['single_request'] * 1000:.1f} ms, "
        f"{sum(single.count.values())} SQL statements taking "
        f"{sum(single.seconds.values()) * 1000:.1f} ms: "
        + ", ".join(f"{kind} {n}" for kind, n in single.count.most_common(8))
    )
    seconds = profile["profiled_seconds"]
    print()
    print(
        f"cProfile of another batch ({seconds * 1000:.0f} ms under the profiler, which "
        f"inflates Python time; stats in {profile['path']}): cumulative time by phase"
    )
    for label, cumulative in sorted(profile["phases"].items(), key=lambda kv: -kv[1]):
        print(f"  {label:<48} {cumulative * 1000:>8.1f} ms {100 * cumulative / seconds:>5.1f}%")
    stats = pstats.Stats(profile["path"], stream=sys.stdout)
    print()
    print("top 20 functions by own time:")
    stats.sort_stats("tottime").print_stats(20)


# --- report --------------------------------------------------------------------------------


def machine() -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        version = cursor.fetchone()[0]
        cursor.execute("SHOW shared_buffers")
        buffers = cursor.fetchone()[0]
        cursor.execute("SHOW synchronous_commit")
        sync = cursor.fetchone()[0]
    try:
        with open("/proc/meminfo") as meminfo:
            memory = f"{int(meminfo.readline().split()[1]) / 1024 / 1024:.0f} GiB"
    except OSError:
        memory = "?"
    load = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"{os.cpu_count()} cores, {memory} RAM, load average {load}, PostgreSQL "
        f"{version.split()[0]} (shared_buffers {buffers}, synchronous_commit {sync}), "
        f"Python {platform.python_version()}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL))
    parser.add_argument("--members", type=int, default=100_000)
    parser.add_argument("--batches", type=int, default=40, help="timed batches per run")
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--workers", default="1,2,4", help="worker processes of each run")
    parser.add_argument("--singles", type=int, default=500, help="single-event POSTs timed")
    parser.add_argument("--budgets", type=int, default=1, help="campaign budgets (round robin)")
    parser.add_argument("--seed", type=int, default=20261126)
    parser.add_argument("--profile", metavar="FILE", help="always profile one batch, stats here")
    parser.add_argument("--no-profile", action="store_true", help="never profile")
    args = parser.parse_args()
    if not args.database_url.startswith(("postgres://", "postgresql://")):
        parser.error("the benchmark needs PostgreSQL")
    worker_counts = [int(w) for w in args.workers.split(",") if w.strip()]
    size = args.batch_size

    ensure_database(args.database_url, progress)
    django_setup(args.database_url)
    from django.core.management import call_command
    from django.db import connection

    from members.models import Member, Tier
    from portal.clock import today_in_shanghai

    progress("migrate")
    call_command("migrate", verbosity=0, interactive=False)
    today = today_in_shanghai()
    tier_ids = dict(Tier.objects.filter(scheme__code="DEFAULT_MADA").values_list("code", "pk"))
    connection.close()
    progress(f"population: {args.members:,} members")
    load_members(args.database_url, args.members, args.seed, tier_ids, today)
    world = build_campaigns(today, args.budgets)
    stages = Counter(Member.objects.values_list("lifecycle_stage", flat=True))

    runs = [
        run_phase(args.database_url, workers=w, batches=args.batches, size=size,
                  seed=args.seed, token=world["token"])
        for w in worker_counts
    ]  # fmt: skip

    # The same generator as the last run's first worker: the same event_ids, in order.
    last = worker_counts[-1]
    replay_source = EventSource(args.seed, f"p{last}-w0")
    share = args.batches // last + (1 if args.batches % last else 0)
    bodies = [replay_source.batch(size) for _ in range(min(REPLAY_BATCHES, WARMUP_BATCHES + share))]
    client = api_client(world["token"])
    progress(f"replay: {len(bodies)} batches of the last run posted again")
    replay = run_replay(bodies, client, size)
    source = EventSource(args.seed + 7, "single")
    progress(f"latency: {args.singles} single-event POSTs")
    latency = run_latency(source, client, args.singles)

    best = max(runs, key=lambda r: r["rate"])
    met = best["rate"] >= GOAL_EVENTS_PER_SECOND
    profile = None
    if args.profile or (not met and not args.no_profile):
        progress("profiling one batch")
        profile = profile_batch(source, client, size, args.profile or DEFAULT_PROFILE)

    # report
    print(f"Member events through POST {ENDPOINT} — {machine()}")
    print(
        f"world: {args.members:,} members ("
        + ", ".join(f"{k} {v:,}" for k, v in stages.most_common())
        + f"); {len(CAMPAIGNS)} ACTIVE campaigns × 5 = {world['tasks']} tasks, "
        f"{args.budgets} budget(s); batches of {size}, {args.batches} timed per run"
    )
    print()
    print(f"{'run':<16} {'accepted':>9} {'seconds':>8} {'events/s':>9} {'vs goal':>8} "
          f"{'batch p50':>10} {'batch max':>10} {'completions':>12} {'rewarded':>9} "
          f"{'deadlocks':>9}")  # fmt: skip
    for run in runs:
        rewards = run["rewards"]
        rewarded = rewards.get("by_status", {}).get("REWARDED", 0)
        print(
            f"{run['label']:<16} {run['accepted']:>9,} {run['seconds']:>8.1f} "
            f"{run['rate']:>9,.0f} {run['rate'] / GOAL_EVENTS_PER_SECOND:>7.2f}× "
            f"{run['batch_p50'] * 1000:>8.0f}ms {run['batch_max'] * 1000:>8.0f}ms "
            f"{rewards.get('completions', 0):>12,} {rewarded:>9,} "
            f"{run['deadlocks']:>4} ({run['retries']} retried)"
        )
    print(
        f"{'replay (dups)':<16} {replay['duplicates']:>9,} {replay['seconds']:>8.1f} "
        f"{replay['rate']:>9,.0f}   (all duplicates, 1 process)"
    )
    print()
    for run in runs:
        status = run["rewards"].get("by_status", {})
        if run["accepted"]:
            print(
                f"{run['label']}: per 1,000 accepted events "
                f"{1000 * run['rewards'].get('completions', 0) / run['accepted']:.0f} "
                "completions; rewards by status: "
                + ", ".join(f"{k} {v:,}" for k, v in sorted(status.items()))
            )
    print()
    kinds = [
        "in PostgreSQL",
        "lock wait",
        "Python, in transaction",
        "Python, outside a transaction",
    ]
    print("where the workers' database connections were (pg_stat_activity every 0.1 s):")
    for run in runs:
        shares = run["states"]
        print(f"  {run['label']:<14} " + ", ".join(
            f"{kind} {100 * shares.get(kind, 0):.0f} %" for kind in kinds))  # fmt: skip
        if run["lock_waits"]:
            print(f"  {'':<14} waiting for a lock in: " + ", ".join(
                f"{kind} ({count})" for kind, count in run["lock_waits"]))  # fmt: skip
    print()
    print(
        f"single-event latency ({latency['count']} POSTs, one at a time): p50 "
        f"{latency['p50'] * 1000:.1f} ms, p90 {latency['p90'] * 1000:.1f} ms, p99 "
        f"{latency['p99'] * 1000:.1f} ms, max {latency['max'] * 1000:.1f} ms, mean "
        f"{latency['mean'] * 1000:.1f} ms"
    )
    if len(runs) > 1:
        first = runs[0]["rate"] or 1
        print("scaling vs 1 process: " + ", ".join(
            f"{r['label']} {r['rate'] / first:.2f}×" for r in runs[1:]))  # fmt: skip

    problems = [p for r in runs for p in r["problems"]] + replay["problems"]
    problems += latency["problems"]
    errors = [e for r in runs for e in r["errors"]]
    if profile:
        print_profile(profile, size)
    print()
    print(
        f"GOAL ≥ {GOAL_EVENTS_PER_SECOND:,} accepted events/s: best run {best['label']} "
        f"{best['rate']:,.0f}/s = {best['rate'] / GOAL_EVENTS_PER_SECOND:.2f}× the goal → "
        + ("PASS" if met else f"FAIL (best configuration: {best['label']})")
    )
    print(
        "every batch fully accepted, every replay all duplicates: "
        + ("PASS" if not problems and not errors else f"FAIL ({len(problems) + len(errors)})")
    )
    for line in (errors + problems)[:20]:
        print(f"  {line}")
    ok = met and not problems and not errors
    print(f"RESULT: {'PASS' if ok else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
