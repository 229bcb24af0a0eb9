"""Demo governance data: requests waiting in the approvals inbox and account managers'
follow-up notes, so that every role finds something to act on after `seed_demo`."""

from __future__ import annotations

import random
from datetime import date, timedelta
from decimal import Decimal

from benefits.models import Benefit, Budget, ManualGrantRequest
from benefits.services import budget_increase_request, manual_grant
from members.models import FollowUpNote, Member, Tier
from members.services import tier_override_request

NOTES = [
    "电话回访：理财产品下月到期，约到网点面谈续作",
    "客户关注基金定投，发送产品资料",
    "提醒客户绑定工资卡以提升活跃度",
    "客户反映贵宾厅权益使用不便，已记录反馈",
    "沉睡客户，尝试微信联系，推荐签到任务",
]


def demo_governance(*, rng: random.Random, as_of: date, staff: dict, say) -> dict:
    """Follow-up notes for every account manager (some due this week, one overdue), a manual
    tier override waiting for the branch manager, a manual grant (waiting for the budget
    approver when above the limit), and a budget increase waiting for the budget approver."""
    notes = 0
    for username, user in staff.items():
        if not username.startswith("am_"):
            continue
        customers = list(
            Member.objects.filter(account_manager=user).order_by("lifecycle_stage", "member_no")[:6]
        )
        for index, member in enumerate(customers):
            due = as_of + timedelta(days=index - 1) if index < 4 else None
            FollowUpNote.objects.create(
                member=member, author=user, text=rng.choice(NOTES), due_on=due
            )
            notes += 1
    am = staff.get("am_b01s1")
    requests = 0
    member = Member.objects.filter(account_manager=am).exclude(tier=None).first() if am else None
    if member is not None:
        higher = (
            Tier.objects.filter(scheme=member.tier.scheme, rank__gt=member.tier.rank)
            .order_by("rank")
            .first()
        )
        if higher is not None:
            tier_override_request(
                member=member,
                tier=higher,
                reason="客户下月将转入大额存款，申请提前享受等级权益",
                expires_on=as_of + timedelta(days=90),
                actor=am,
            )
            requests += 1
        lounge = Benefit.objects.filter(code="HEALTH_CHECK").first()
        if lounge is not None:
            made = manual_grant(
                member=member, benefit=lounge, reason="投诉安抚，赠送年度体检", actor=am
            )
            requests += isinstance(made, ManualGrantRequest)  # above the limit: waits
    budget = Budget.objects.order_by("code").first()
    if budget is not None and "admin" in staff:
        budget_increase_request(
            budget=budget,
            amount=(budget.amount * Decimal("1.2")).quantize(Decimal("0.01")),
            actor=staff["admin"],
            reason="四季度活动超出预期，申请追加预算",
        )
        requests += 1
    say(f"governance: {notes} follow-up notes, {requests} requests waiting for approval")
    return {"notes": notes, "requests": requests}
