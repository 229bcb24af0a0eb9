"""Reads of the members app, already scoped to what the user may see.

Pages, the API and exports call these, so scoping and masking cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import F, Q, QuerySet
from django.http import Http404

from portal.choices import Role
from portal.money import fen_to_decimal
from portal.permissions import user_can

from .choices import TierMethod
from .models import FeedBatch, Member, MemberMonthlyStat, Tier

#: Roles whose member scope is the whole bank.
HEAD_OFFICE_SCOPE = frozenset(
    {Role.PRODUCT_OPERATOR, Role.RISK_AUDITOR, Role.ADMINISTRATOR, Role.SYSTEM}
)


def member_scope(*, user) -> QuerySet[Member]:
    """Members `user` may see: an account manager their own customers, a branch manager
    their branch and everything below it, head-office roles everyone, others no one."""
    members = Member.objects.all()
    if not user_can(user, "members.view_members") and not user_can(
        user, "members.view_member_centre"
    ):
        return members.none()
    if user.is_superuser or any(user.has_role(role) for role in HEAD_OFFICE_SCOPE):
        return members
    condition = Q(pk__in=[])
    if user.has_role(Role.BRANCH_MANAGER) and user.branch_id:
        condition |= Q(branch__path__startswith=user.branch.path)
    if user.has_role(Role.ACCOUNT_MANAGER):
        condition |= Q(account_manager=user)
    return members.filter(condition)


@dataclass(frozen=True)
class MemberFilters:
    q: str = ""
    stage: str = ""
    status: str = ""
    branch: str = ""
    manager: str = ""
    tier: str = ""
    segment: str = ""
    worklist: str = ""


def member_list(*, user, filters: MemberFilters | None = None) -> QuerySet[Member]:
    """The scoped member list, filtered; `q` matches member_no or name, or an exact ID number
    (which is never shown, only matched)."""
    filters = filters or MemberFilters()
    members = member_scope(user=user).select_related("branch", "account_manager", "tier")
    if filters.tier:
        members = members.filter(tier__code=filters.tier)
    if filters.q:
        q = filters.q.strip()
        members = members.filter(
            Q(member_no__iexact=q) | Q(name__icontains=q) | Q(id_number=q.upper())
        )
    if filters.stage:
        members = members.filter(lifecycle_stage=filters.stage)
    if filters.status:
        members = members.filter(status=filters.status)
    if filters.branch:
        code = filters.branch
        members = members.filter(
            Q(branch__path__startswith=f"{code}/") | Q(branch__path__contains=f"/{code}/")
        )
    if filters.manager:
        members = members.filter(account_manager__username=filters.manager)
    if filters.segment:
        from .models import Segment

        segment = Segment.objects.filter(code=filters.segment).first()
        members = members.filter(segment.member_filter()) if segment else members.none()
    if filters.worklist in WORKBENCH_LISTS:
        from members.feeds import today_in_shanghai

        condition, _ordering = worklist_condition(filters.worklist, today=today_in_shanghai())
        members = members.filter(condition)
    return members.order_by("member_no")


def member_get(*, user, member_no: str) -> Member:
    """One member in the user's scope; 404 (not 403) otherwise, so guessing reveals nothing."""
    try:
        return (
            member_scope(user=user)
            .select_related("branch", "account_manager")
            .get(member_no=member_no)
        )
    except Member.DoesNotExist:
        raise Http404("No such member.") from None


def member_monthly_stats(*, member: Member, months: int = 12) -> list[MemberMonthlyStat]:
    """The member's latest monthly statistics, oldest first."""
    stats = list(MemberMonthlyStat.objects.filter(member=member).order_by("-month")[:months])
    return list(reversed(stats))


def feed_batch_list() -> QuerySet[FeedBatch]:
    return FeedBatch.objects.select_related("imported_by").order_by("-started_at", "-id")


def measure_text(method: str, value: int) -> str | int:
    """MADA amounts are strings with 2 decimals (CNY); points are integers (API.md)."""
    return f"{fen_to_decimal(value):.2f}" if method == TierMethod.MADA else int(value)


def member_tier_status(*, member: Member) -> dict:
    """Tier, next tier and downgrade protection as the member centre and the customer page
    show them, from what the last recompute stored."""
    tier = member.tier
    if tier is None:
        return {"tier": None, "tier_since": None, "next_tier": None, "protection": None}
    scheme = tier.scheme
    basis = member.tier_basis or 0
    next_tier = Tier.objects.filter(scheme=scheme, rank__gt=tier.rank).order_by("rank").first()
    protection = None
    if member.tier_basis is not None and basis < tier.threshold:
        protection = {
            "months_below": member.tier_months_below,
            "downgrade_after_months": scheme.downgrade_after_months,
            "keep_tier_needs": measure_text(scheme.method, tier.threshold),
            "missing": measure_text(scheme.method, tier.threshold - basis),
        }
    return {
        "tier": {"code": tier.code, "name": tier.name, "rank": tier.rank},
        "tier_since": member.tier_since,
        "next_tier": None
        if next_tier is None
        else {
            "code": next_tier.code,
            "measure": scheme.method,
            "missing": measure_text(scheme.method, max(0, next_tier.threshold - basis)),
        },
        "protection": protection,
    }


def member_centre(*, member: Member) -> dict:
    """The member centre payload of API.md. No personal data is included."""
    from campaigns.selectors import member_tasks

    return {
        "member_no": member.member_no,
        **member_tier_status(member=member),
        "lifecycle_stage": member.lifecycle_stage,
        "points_balance": member.points_balance,
        "tasks": member_tasks(member=member),
        "grants": member_grants(member=member),
    }


def member_grant_list(*, member: Member):
    """The member's benefits: redeemable ones, and those used or closed in the last 90 days."""
    from datetime import timedelta

    from benefits.models import BenefitGrant

    from .feeds import today_in_shanghai

    since = today_in_shanghai() - timedelta(days=90)
    return list(
        BenefitGrant.objects.filter(member=member, expires_on__gte=since)
        .select_related("benefit")
        .order_by("expires_on", "id")
    )


def member_grants(*, member: Member) -> list[dict]:
    """The grants of the member centre payload (API.md)."""
    grants = member_grant_list(member=member)
    return [
        {
            "id": grant.pk,
            "benefit": grant.benefit.code,
            "status": grant.status,
            "expires_at": grant.expires_on,
        }
        for grant in grants
    ]


def member_tier_explanation(*, member: Member):
    """The engine's explanation of the member's tier for the latest business date graded."""
    from portal.models import JobRun

    from .feeds import today_in_shanghai
    from .tiers import TierPlan, tier_explain

    last = (
        JobRun.objects.filter(kind="tier_recompute", status__in=["SUCCEEDED", "WARNING"])
        .order_by("-business_date")
        .values_list("business_date", flat=True)
        .first()
    )
    try:
        plan = TierPlan.active(last or today_in_shanghai())
    except LookupError:
        return None
    return tier_explain(member=member, plan=plan)


def member_tier_history(*, member: Member, limit: int = 24):
    return list(
        member.tier_changes.select_related("from_tier", "to_tier").order_by(
            "-business_date", "-id"
        )[:limit]
    )


def member_tier_overrides(*, member: Member):
    return list(
        member.tier_overrides.select_related("tier", "requested_by", "decided_by").order_by(
            "-requested_at"
        )[:10]
    )


def override_tier_choices():
    return list(Tier.objects.filter(scheme__status="ACTIVE").order_by("rank"))


def member_points_entries(*, member: Member, limit: int = 20):
    """The member's latest points ledger entries (newest first)."""
    from .models import PointsEntry

    return list(PointsEntry.objects.filter(member=member).order_by("-id")[:limit])


# --- the account manager's workbench -------------------------------------------------------

#: how many rows each workbench list shows (its "all" link opens the full, paginated list)
WORKBENCH_ROWS = 10
#: a list's count stops here ("1,000+"): counting a million-member scope would cost a scan
WORKBENCH_COUNT_CAP = 1000
#: "about to upgrade": the basis is within this share of the next tier's threshold
UPGRADE_NEAR_SHARE = 0.9
#: unredeemed grants expiring within this many days
EXPIRING_WITHIN_DAYS = 14

WORKBENCH_LISTS = ("upgrade", "downgrade", "dormant", "new")


def _near_upgrade_condition(tiers: list[Tier]) -> Q:
    """Members of each tier whose basis is ≥ 90 % of the next tier's threshold but below it
    (one OR of per-tier ranges: no per-member work)."""
    condition = Q(pk__in=[])
    for tier, next_tier in zip(tiers, tiers[1:], strict=False):
        floor = int(next_tier.threshold * UPGRADE_NEAR_SHARE)
        condition |= Q(
            tier=tier,
            tier_basis__gte=max(floor, tier.threshold),
            tier_basis__lt=next_tier.threshold,
        )
    return condition


def active_tiers() -> list[Tier]:
    return list(
        Tier.objects.filter(scheme__status="ACTIVE").select_related("scheme").order_by("rank")
    )


def worklist_condition(name: str, *, today) -> tuple[Q, list]:
    """The condition and the ordering of one of the account manager's action lists:
    `upgrade` (within 10 % of the next tier), `downgrade` (below their tier's threshold,
    protected for now; most months below first), `dormant` (longest inactive first), `new`
    (registered this month). Applied to a scoped queryset as a plain WHERE (no subquery)."""
    from datetime import datetime, time

    from django.utils import timezone

    if name == "upgrade":
        return _near_upgrade_condition(active_tiers()), ["-tier_basis", "member_no"]
    if name == "downgrade":
        return Q(tier_months_below__gt=0), ["-tier_months_below", "member_no"]
    if name == "dormant":
        return Q(lifecycle_stage="DORMANT"), [
            F("last_active_on").asc(nulls_first=True),
            "member_no",
        ]
    if name == "new":
        start = timezone.make_aware(datetime.combine(today.replace(day=1), time.min))
        return Q(registered_at__gte=start), ["-registered_at", "member_no"]
    raise ValueError(f"Unknown worklist {name!r}; known: {', '.join(WORKBENCH_LISTS)}.")


def member_worklist(*, user, name: str, today) -> QuerySet[Member]:
    """One of the account manager's action lists over their scoped customers, in the order
    they act on it (see `worklist_condition`)."""
    condition, ordering = worklist_condition(name, today=today)
    return (
        member_scope(user=user)
        .select_related("tier", "branch")
        .filter(condition)
        .order_by(*ordering)
    )


def capped_count(queryset: QuerySet, cap: int = WORKBENCH_COUNT_CAP) -> tuple[int, bool]:
    """(count, capped): counts at most `cap` + 1 rows, so a huge scope stays cheap."""
    found = queryset.order_by().values("pk")[: cap + 1].count()
    return min(found, cap), found > cap


def expiring_grants(*, user, today):
    """Unredeemed benefit grants of the user's customers expiring within 14 days, soonest
    first."""
    from datetime import timedelta

    from benefits.models import BenefitGrant

    return (
        BenefitGrant.objects.filter(
            member__in=member_scope(user=user),
            status="GRANTED",
            expires_on__gte=today,
            expires_on__lte=today + timedelta(days=EXPIRING_WITHIN_DAYS),
        )
        .select_related("member", "benefit")
        .order_by("expires_on", "id")
    )


def followups_due(*, user, today, within_days: int = 7):
    """The user's open follow-up notes due within a week (overdue first), on customers still
    in their scope."""
    from datetime import timedelta

    from .models import FollowUpNote

    return (
        FollowUpNote.objects.filter(
            author=user,
            done_at=None,
            due_on__lte=today + timedelta(days=within_days),
            member__in=member_scope(user=user),
        )
        .select_related("member")
        .order_by("due_on", "id")
    )


def member_notes(*, member: Member):
    from .models import FollowUpNote

    return FollowUpNote.objects.filter(member=member).select_related("author")


def member_benefit_feedback(*, member: Member):
    """What account managers said about benefits for this customer, newest first."""
    from benefits.models import BenefitFeedback

    return (
        BenefitFeedback.objects.filter(member=member)
        .select_related("benefit", "author")
        .order_by("-created_at", "-id")
    )
