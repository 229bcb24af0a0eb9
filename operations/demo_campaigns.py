"""The demo bank's task campaigns: a monthly activity programme, a reactivation campaign
for dormant members, one waiting for approval and one draft, plus three weeks of member
events sent through `events_ingest`, the code behind `POST /api/v1/events/`.

The reactivation campaign holds out 20 % of its audience (`campaigns.holdout`): its
audience is recorded as on the eve of its window, and the demo's dormant members come back
more often when offered it (35 %) than when held out (15 %), so that its effect page and
the dashboard have a real, significant uplift to show, measured night by night.

Campaigns are launched the real way (submitted by the product operator, approved by the
budget approver, both audited), so the approvals and the audit trail have something to show.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from django.utils import timezone

from benefits.models import Benefit, Budget
from campaigns.choices import CampaignApproval
from campaigns.holdout import Holdout
from campaigns.models import Campaign, Task, TaskStep
from campaigns.services import campaign_outcomes_record, campaign_submit, events_ingest
from campaigns.services.outcomes import campaign_audience_record
from members.models import Member, Segment, Tier
from members.services import lifecycle_recompute
from portal.approvals import approval_decide, approval_pending_for
from portal.clock import SHANGHAI
from portal.models import Department, User

#: the share of the reactivation campaign's audience held out
WAKE_HOLDOUT = 20
#: how often a dormant member comes back in the demo's three weeks: offered the reactivation
#: campaign, held out of it
COMES_BACK_OFFERED, COMES_BACK_HELD_OUT = 0.35, 0.15

#: the demo segment: code, name, description
DEMO_SEGMENT = ("DORMANT_WEALTH", "沉睡的财富客户", "Dormant members with MADA ≥ 50,000.00")


def _at(day: date, rng: random.Random, now: datetime) -> str:
    moment = datetime.combine(day, time(rng.randint(7, 22), rng.randint(0, 59)), tzinfo=SHANGHAI)
    return min(moment, now - timedelta(minutes=1)).isoformat()


def demo_campaigns(
    *,
    rng: random.Random,
    as_of: date,
    staff: dict[str, User],
    say: Callable[[str], None],
    budget_fen: int = 30_000_000,
) -> dict:
    """Create the demo campaigns, charged to a year budget of `budget_fen` (sized to the bank
    by the caller), and replay three weeks of member events (idempotent: campaigns are found
    by code, events by their event_id)."""
    retail = Department.objects.get(code="RETAIL")
    digital = Department.objects.get(code="DIGITAL")
    operator, approver = staff["operator"], staff["approver"]
    month_start = as_of.replace(day=1)
    window_start = month_start - timedelta(days=30)
    ends_on = month_start + timedelta(days=90)
    # the budget's period holds every campaign window charged to it (benefits.rules)
    years = sorted({window_start.year, ends_on.year})
    budget, _ = Budget.objects.update_or_create(
        code=f"CAMPAIGN-{as_of.year}",
        defaults={
            "name": "任务活动预算 " + "–".join(str(year) for year in years),
            "department": digital,
            "period_start": date(years[0], 1, 1),
            "period_end": date(years[-1], 12, 31),
            "amount_fen": budget_fen,
            "alert_percents": [80, 95],
        },
    )
    segment, _ = Segment.objects.update_or_create(
        code=DEMO_SEGMENT[0],
        defaults={
            "name": DEMO_SEGMENT[1],
            "description": DEMO_SEGMENT[2],
            "department": retail,
            "rules": [
                {"field": "lifecycle_stage", "op": "in", "value": ["DORMANT", "CHURNED"]},
                {"field": "mada", "op": "gte", "value": "50000.00"},
            ],
            "created_by": operator,
        },
    )
    benefits = {b.code: b for b in Benefit.objects.filter(code__in=["CASHBACK_10", "DINING_HALF"])}
    gold_and_up = list(Tier.objects.filter(scheme__code="DEFAULT_MADA", rank__gte=1))

    def campaign(code, name, description, department, start, end, holdout_share=0):
        found = Campaign.objects.filter(code=code).first()
        if found:
            return found, False
        return (
            Campaign.objects.create(
                code=code,
                name=name,
                description=description,
                department=department,
                budget=budget,
                starts_on=start,
                ends_on=end,
                created_by=operator,
                holdout_share=holdout_share,
                # drawn from the seed, so that the same seed holds out the same members
                holdout_key=f"{rng.getrandbits(128):032x}",
            ),
            True,
        )

    def task(parent, position, name, event_type, measure, target, recurrence, difficulty, **kw):
        steps = kw.pop("steps", ())
        offered_tiers = kw.pop("offered_tiers", ())
        created = Task.objects.create(
            campaign=parent,
            position=position,
            name=name,
            event_type=event_type,
            measure=measure,
            target=Decimal(target),
            recurrence=recurrence,
            difficulty=difficulty,
            **kw,
        )
        created.offered_tiers.set(offered_tiers)
        for step_no, (step_target, points, benefit) in enumerate(steps, start=1):
            TaskStep.objects.create(
                task=created,
                step_no=step_no,
                target=Decimal(step_target),
                reward_points=points,
                reward_benefit=benefits.get(benefit),
            )
        return created

    code = f"C{as_of:%Y%m}"
    activity, new = campaign(
        f"{code}-ACT", "月度活跃计划", "每日签到、连续登录、基金定投阶梯和刷卡任务。",
        digital, window_start, ends_on,
    )  # fmt: skip
    if new:
        task(activity, 1, "每日签到", "SIGN_IN", "COUNT", "1", "DAILY", "EASY", reward_points=5)
        task(activity, 2, "一周连续登录5天", "LOGIN", "CONSECUTIVE_DAYS", "5", "WEEKLY",
             "MEDIUM", reward_points=50)  # fmt: skip
        task(activity, 3, "本月基金申购阶梯", "FUND_PURCHASE", "AMOUNT_SUM", "10000", "MONTHLY",
             "HARD", steps=[("10000", 100, None), ("50000", 600, None),
                            ("200000", 3000, "DINING_HALF")])  # fmt: skip
        task(activity, 4, "本月刷卡5笔(满50元)", "CARD_SPEND", "COUNT", "5", "MONTHLY",
             "MEDIUM", min_event_amount=Decimal("50"), reward_benefit=benefits["CASHBACK_10"],
             max_rewards_per_period=500)  # fmt: skip
        task(activity, 5, "绑定信用卡", "BIND_CARD", "COUNT", "1", "ONCE", "EASY",
             reward_points=200)  # fmt: skip
        campaign_submit(campaign=activity, actor=operator)
        _launch_approve(activity, approver, "预算充足，同意上线")
    wake, new = campaign(
        f"{code}-WAKE", "沉睡客户唤醒", "沉睡客户连续登录3天即得500积分。",
        retail, window_start, ends_on, holdout_share=WAKE_HOLDOUT,
    )  # fmt: skip
    if new:
        wake.target_stages = ["DORMANT", "CHURNED"]
        wake.save(update_fields=["target_stages"])
        task(wake, 1, "连续登录3天", "LOGIN", "CONSECUTIVE_DAYS", "3", "ONCE", "EASY",
             reward_points=500, max_rewards_per_member=1)  # fmt: skip
        task(wake, 2, "唤醒后首笔基金申购", "FUND_PURCHASE", "AMOUNT_SUM", "1000", "ONCE",
             "MEDIUM", reward_points=300, offered_tiers=gold_and_up)  # fmt: skip
        campaign_submit(campaign=wake, actor=operator)
        _launch_approve(wake, approver, "面向沉睡客户，同意")
        # its audience as the night before its first day saw it (stages as of that night)
        eve = window_start - timedelta(days=1)
        lifecycle_recompute(business_date=eve)
        campaign_audience_record(campaign_id=wake.pk, on=eve)
    payroll, new = campaign(
        f"{code}-PAY", "代发工资季", "代发工资客户连续三个月代发得积分。",
        retail, month_start + timedelta(days=35), ends_on,
    )  # fmt: skip
    if new:
        task(payroll, 1, "本月代发工资", "PAYROLL", "AMOUNT_SUM", "3000", "MONTHLY", "EASY",
             reward_points=100)  # fmt: skip
        campaign_submit(campaign=payroll, actor=operator)
    referral, new = campaign(
        f"{code}-REF", "推荐有礼", "推荐好友开户，阶梯奖励。", digital, month_start, ends_on
    )
    if new:
        referral.segments.set([segment])
        task(referral, 1, "推荐好友", "REFERRAL", "COUNT", "1", "MONTHLY", "MEDIUM",
             steps=[("1", 100, None), ("3", 500, None)])  # fmt: skip
    say("campaigns: 2 active, 1 waiting for approval, 1 draft")

    # Stages as the night before would have them, so the reactivation task finds its members.
    lifecycle_recompute(business_date=as_of - timedelta(days=1))
    holdout = Holdout.of(wake)
    events = _demo_events(
        rng,
        as_of,
        Member.objects.values_list("member_no", "lifecycle_stage"),
        held_out=holdout.holds_out if holdout else (lambda member_no: False),
    )
    client = staff["mobile_banking"]
    accepted = completions = 0
    report_every = 100_000 if len(events) > 200_000 else len(events) + 1
    for start in range(0, len(events), 500):
        result = events_ingest(events=events[start : start + 500], client=client)
        accepted += result.accepted
        completions += result.completions
        if (start + 500) % report_every < 500 and start + 500 < len(events):
            say(f"member events {start + 500:,}/{len(events):,}")
    say(f"member events: {accepted:,} accepted, {completions:,} task completions")
    # the nights the reactivation campaign was measured against its holdout
    day = max(wake.starts_on, as_of - timedelta(days=45))
    while day < as_of:
        campaign_outcomes_record(business_date=day)
        day += timedelta(days=1)
    say(f"campaign {wake.code}: {WAKE_HOLDOUT}% held out, measured up to {as_of - timedelta(1)}")
    return {"events": accepted, "completions": completions}


def _launch_approve(campaign, approver, comment: str) -> None:
    """The approver decides the launch, as in the approvals inbox."""
    approval_decide(
        approval=approval_pending_for(kind=CampaignApproval.CAMPAIGN_LAUNCH, obj=campaign),
        approve=True,
        actor=approver,
        comment=comment,
    )


def _demo_events(
    rng: random.Random, as_of: date, members, *, held_out: Callable[[str], bool]
) -> list[dict]:
    """Three weeks of app activity: most active members sign in and log in on many days,
    some buy funds or spend on their card; a third of dormant members come back for a few
    days (fewer of those the reactivation campaign holds out). Deterministic for a seed and
    date."""
    now = timezone.now()
    days = [as_of - timedelta(days=n) for n in range(20, -1, -1)]
    events: list[dict] = []

    def add(member_no, kind, day, amount=None):
        event = {
            "event_id": f"demo-{member_no}-{kind}-{day:%Y%m%d}-{len(events)}",
            "member_no": member_no,
            "type": kind,
            "occurred_at": _at(day, rng, now),
            "channel": rng.choice(["MOBILE", "MOBILE", "WECHAT"]),
        }
        if amount is not None:
            event["amount"] = amount
        events.append(event)

    for member_no, stage in members:
        if stage in ("DORMANT", "CHURNED"):
            comes_back = COMES_BACK_HELD_OUT if held_out(member_no) else COMES_BACK_OFFERED
            if rng.random() < comes_back:  # on some day of the three weeks, for a few days
                streak = rng.choice([1, 2, 3, 3])
                first = rng.randrange(len(days) - streak + 1)
                for day in days[first : first + streak]:
                    add(member_no, "LOGIN", day)
                if rng.random() < 0.3:
                    day = days[first + streak - 1]
                    add(member_no, "FUND_PURCHASE", day, f"{rng.randint(1, 20) * 1000}.00")
            continue
        if rng.random() > 0.45:
            continue
        keen = rng.random()
        for day in days:
            if rng.random() < keen:
                add(member_no, "SIGN_IN", day)
            if rng.random() < keen * 0.8:
                add(member_no, "LOGIN", day)
        for _ in range(rng.randint(0, 6)):
            add(
                member_no,
                "CARD_SPEND",
                rng.choice(days),
                f"{rng.randint(20, 800)}.{rng.randint(0, 99):02d}",
            )
        if rng.random() < 0.25:
            for _ in range(rng.randint(1, 3)):
                add(
                    member_no,
                    "FUND_PURCHASE",
                    rng.choice(days),
                    f"{rng.choice([5, 10, 20, 50, 100])}000.00",
                )
        if rng.random() < 0.05:
            add(member_no, "BIND_CARD", rng.choice(days))
        if rng.random() < 0.1:
            add(member_no, "PAYROLL", days[-10], f"{rng.randint(4, 30)}000.00")
    rng.shuffle(events)
    return events
