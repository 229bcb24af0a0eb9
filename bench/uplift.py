"""Benchmark: a campaign's uplift report at 1,000,000 members answers within a second.

Issue 18: "The report's query count does not grow with the audience size; at 1M members it
answers within a second (benchmark line)."

Set-up (not timed): `--members` members loaded with COPY (bench/nightly.py's population,
with monthly statistics for February to May 2025), a third of them dormant; a campaign
whose window is April 2025, followed up until 31 May, holding out `--share` % of everyone.

Measured, in one run:
1. recording the audience on the eve of the window (31 March): one INSERT … SELECT that
   draws every member's group with the keyed hash in SQL;
2. activity days, fund purchases (synthetic: dormant members offered come back with 25 %,
   held out with 20 %; the others are active with 60 %) — set-up, not timed;
3. the nightly outcomes of the campaign on 31 May (one grouped query over the audience);
4. the report (`campaigns.uplift.campaign_uplift`): its queries and its time, best and worst
   of `--repeat` runs.

Checks: the share held out is within ±1 percentage point; the outcome rows reconcile with
the audience; reactivated members per group equal an independent count (EXISTS per member);
the report reads one query. Exit status 1 when a goal or a check fails.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import date
from pathlib import Path

import bench_common
from bench_common import ensure_database
from nightly import populate, progress, timed

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/portal_bench_uplift"
STARTS_ON, ENDS_ON, FOLLOW_UP_DAYS = date(2025, 4, 1), date(2025, 4, 30), 31
EVE, MEASURED_ON = date(2025, 3, 31), date(2025, 5, 31)
GOAL_REPORT_SECONDS = 1.0


def _synthetic_behaviour(campaign_id: int) -> None:
    """Activity days and fund purchases in April and May, by group (set-based, seeded)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT setseed(0.18)")
        cursor.execute(
            """
            INSERT INTO members_memberactivityday (member_id, date, month)
            SELECT a.member_id, d.day, date_trunc('month', d.day)::date
            FROM campaigns_campaignaudience a
            CROSS JOIN LATERAL (
                SELECT (date '2025-04-01' + (random() * 60)::int) AS day
                FROM generate_series(1, 3)
            ) d
            WHERE a.campaign_id = %s
              AND random() < CASE
                  WHEN a.stage_at_launch NOT IN ('DORMANT', 'CHURNED') THEN 0.60
                  WHEN a.held_out THEN 0.20 ELSE 0.25 END
            ON CONFLICT DO NOTHING
            """,
            [campaign_id],
        )
        cursor.execute(
            """
            INSERT INTO campaigns_memberevent (event_id, member_id, type, amount_fen,
                occurred_at, occurred_on, channel, batch_id, received_at)
            SELECT 'bench-buy-' || a.member_id, a.member_id, 'FUND_PURCHASE',
                   1000 + (random() * 5000000)::bigint,
                   timestamptz '2025-04-15 10:00+08', date '2025-04-15', 'MOBILE', 0, now()
            FROM campaigns_campaignaudience a
            WHERE a.campaign_id = %s AND random() < 0.10
            ON CONFLICT DO NOTHING
            """,
            [campaign_id],
        )


def _independent_reactivated(campaign_id: int) -> dict[bool, int]:
    """Dormant members at launch with an activity day in the period, per group, counted
    another way (EXISTS per member) than the outcomes' grouped join."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT a.held_out, COUNT(*) FROM campaigns_campaignaudience a
            WHERE a.campaign_id = %s AND a.stage_at_launch IN ('DORMANT', 'CHURNED')
              AND EXISTS (SELECT 1 FROM members_memberactivityday d
                          WHERE d.member_id = a.member_id AND d.date BETWEEN %s AND %s)
            GROUP BY a.held_out
            """,
            [campaign_id, STARTS_ON, MEASURED_ON],
        )
        return {bool(held): count for held, count in cursor.fetchall()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=1_000_000)
    parser.add_argument("--share", type=int, default=10, help="holdout share, percent")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--seed", type=int, default=20250601)
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL))
    args = parser.parse_args()
    if not args.database_url.startswith(("postgres://", "postgresql://")):
        parser.error("the benchmark needs PostgreSQL (COPY)")

    ensure_database(args.database_url, progress)
    bench_common.django_setup(args.database_url)
    from django.core.management import call_command
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    progress("migrate")
    call_command("migrate", verbosity=0, interactive=False)

    from benefits.models import Budget
    from campaigns.models import Campaign, CampaignAudience, CampaignOutcome
    from campaigns.services.outcomes import campaign_audience_record, campaign_outcomes_record
    from campaigns.uplift import campaign_uplift
    from portal.models import Department, User

    n = args.members
    progress(f"population: {n:,} members")
    timed(
        "populate (generate + COPY + VACUUM ANALYZE)",
        lambda: populate(args.database_url, n, args.seed),
    )
    with connection.cursor() as cursor:  # a third dormant or churned, set-based
        cursor.execute("SET session_replication_role = replica")
        cursor.execute(
            "UPDATE members_member SET lifecycle_stage = CASE id % 6 WHEN 0 THEN 'DORMANT' "
            "WHEN 1 THEN 'CHURNED' ELSE 'ACTIVE' END"
        )
        cursor.execute("SET session_replication_role = DEFAULT")
        cursor.execute("TRUNCATE campaigns_campaignaudience, campaigns_campaignoutcome")

    department, _ = Department.objects.get_or_create(code="BENCH", defaults={"name": "Bench"})
    budget, _ = Budget.objects.update_or_create(
        code="BENCH-UPLIFT",
        defaults={
            "name": "Bench uplift",
            "department": department,
            "period_start": date(2025, 1, 1),
            "period_end": date(2025, 12, 31),
            "amount_fen": 10_000_000_00,
        },
    )
    author, _ = User.objects.get_or_create(username="bench-uplift")
    Campaign.objects.filter(code="BENCH-UPLIFT").delete()
    campaign = Campaign.objects.create(
        code="BENCH-UPLIFT",
        name="Bench uplift",
        department=department,
        budget=budget,
        starts_on=STARTS_ON,
        ends_on=ENDS_ON,
        follow_up_days=FOLLOW_UP_DAYS,
        holdout_share=args.share,
        status="ACTIVE",
        created_by=author,
    )

    _, record_seconds = timed(
        "record the audience (hash in SQL, one INSERT … SELECT)",
        lambda: campaign_audience_record(campaign_id=campaign.pk, on=EVE),
    )
    timed("synthetic activity and purchases (set-up)", lambda: _synthetic_behaviour(campaign.pk))
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE campaigns_campaignaudience")
        cursor.execute("ANALYZE members_memberactivityday")
    _, outcome_seconds = timed(
        "nightly outcomes on 2025-05-31 (one grouped query)",
        lambda: campaign_outcomes_record(business_date=MEASURED_ON),
    )

    timings, queries = [], 0
    for _ in range(args.repeat):
        with CaptureQueriesContext(connection) as captured:
            started = time.perf_counter()
            report = campaign_uplift(campaign=campaign, on=MEASURED_ON)
            timings.append(time.perf_counter() - started)
        queries = max(queries, len(captured))

    audience = CampaignAudience.objects.filter(campaign=campaign)
    total, held = audience.count(), audience.filter(held_out=True).count()
    rows = {row.held_out: row for row in CampaignOutcome.objects.filter(campaign=campaign)}
    direct = _independent_reactivated(campaign.pk)
    share_points = held / total * 100 if total else 0.0
    checks = [
        ("audience = members", total == n, f"{total:,} of {n:,}"),
        (
            f"share held out within ±1 point of {args.share}%",
            abs(share_points - args.share) <= 1.0,
            f"{share_points:.3f}%",
        ),
        (
            "outcome rows reconcile with the audience",
            rows[False].members + rows[True].members == total and rows[True].members == held,
            f"{rows[False].members:,} + {rows[True].members:,}",
        ),
        (
            "reactivated = an independent count",
            all(rows[group].reactivated == direct.get(group, 0) for group in (False, True)),
            f"{rows[False].reactivated:,} / {rows[True].reactivated:,}",
        ),
        ("the report reads one query", queries == 1, f"{queries}"),
    ]
    worst = max(timings)
    estimate = report.reactivation
    print(f"uplift benchmark — {n:,} members, {args.share}% held out, one run")
    print(f"  record the audience:            {record_seconds:8.2f} s")
    print(f"  nightly outcomes of a campaign: {outcome_seconds:8.2f} s")
    print(
        f"  report: best {min(timings) * 1000:.1f} ms, worst {worst * 1000:.1f} ms "
        f"of {args.repeat} ({queries} query)"
    )
    print(
        f"  reactivation {estimate.treatment:.4f} offered vs {estimate.holdout:.4f} held out: "
        f"uplift {estimate.difference * 100:+.2f} pp [{estimate.low * 100:+.2f}, "
        f"{estimate.high * 100:+.2f}] — {estimate.verdict} (true effect +5.00 pp)"
    )
    failed = False
    goal = worst <= GOAL_REPORT_SECONDS
    print(
        f"{'PASS' if goal else 'FAIL'} report at {n:,} members: {worst * 1000:.1f} ms "
        f"(goal ≤ {GOAL_REPORT_SECONDS * 1000:.0f} ms; the nightly count it reads took "
        f"{outcome_seconds:.2f} s, {outcome_seconds / worst:,.0f}× the report)"
    )
    failed |= not goal
    for label, ok, detail in checks:
        print(f"{'PASS' if ok else 'FAIL'} {label}: {detail}")
        failed |= not ok
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
