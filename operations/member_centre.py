"""The member centre (API.md, `GET /api/v1/members/{member_no}/`): what mobile banking shows
a member, composed from every domain. No personal data."""

from __future__ import annotations

from benefits.selectors import member_grants
from campaigns.selectors import member_tasks
from members.models import Member
from members.selectors import member_tier_status

__all__ = ["member_centre"]


def member_centre(*, member: Member) -> dict:
    """The member centre payload of API.md: tier, next tier and protection (members), points,
    current tasks (campaigns) and benefit grants (benefits)."""
    return {
        "member_no": member.member_no,
        **member_tier_status(member=member),
        "lifecycle_stage": member.lifecycle_stage,
        "points_balance": member.points_balance,
        "tasks": member_tasks(member=member),
        "grants": member_grants(member=member),
    }
