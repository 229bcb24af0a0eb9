"""Reads of the members app, already scoped to what the user may see.

Pages, the API and exports call these, so scoping and masking cannot drift apart.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from django.db import connection
from django.db.models import BooleanField, ExpressionWrapper, Q, QuerySet
from django.db.models.expressions import RawSQL
from django.http import Http404
from django.utils import timezone

from portal.choices import Role
from portal.clock import today_in_shanghai
from portal.crypto import personal_digests
from portal.models import JobRun
from portal.money import fen_to_decimal
from portal.permissions import user_can

from .choices import SchemeStatus, TierChangeCause, TierMethod
from .models import (
    FeedBatch,
    FollowUpNote,
    Member,
    MemberMonthlyStat,
    PointsEntry,
    Segment,
    Tier,
    TierOverride,
    TierScheme,
)
from .segments import segment_filter
from .tiers import TierPlan, tier_explain
from .worklists import WORK_LISTS

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


# --- search by a full ID or phone number ---------------------------------------------------

_ID_NUMBER_TYPED = re.compile(r"^(\d{17}[\dX]|\d{15})$", re.ASCII)
#: a mainland mobile number, with or without the +86 / 0086 / 86 country code
_MOBILE_TYPED = re.compile(r"^(?:\+86|0086|86)?(1[3-9]\d{9})$", re.ASCII)
#: what people type between the digits of a number: spaces, hyphens, dots, brackets
_NUMBER_SEPARATORS = re.compile(r"[\s\-().]")


def personal_number_parse(text: str) -> tuple[str, str] | None:
    """("id_number" | "phone", the number normalised) when `text` is shaped like a full ID
    number (18 characters, or 15 digits) or a mainland mobile number however it is typed
    (``139 0000 0001``, ``+86 139-0000-0001``: the 11 digits); None for anything else."""
    compact = _NUMBER_SEPARATORS.sub("", (text or "").strip()).upper()
    mobile = _MOBILE_TYPED.match(compact)
    if mobile:  # before the ID number: 0086 and a mobile number are 15 digits too
        return "phone", mobile.group(1)
    if _ID_NUMBER_TYPED.match(compact):
        return "id_number", compact
    return None


def looks_like_personal_number(text: str) -> bool:
    """Is `text` a full ID or mobile number (searched only by roles that may reveal, and
    never written back into a page or a link)?"""
    return personal_number_parse(text) is not None


def personal_number_q(text: str) -> Q | None:
    """The condition matching the stored phone or ID number `text` is exactly, or None when
    `text` is shaped like neither. The one place a search string meets those columns: call
    it only through `members.services.personal_search.member_personal_search`, which
    decides who may search by them, audits and throttles."""
    parsed = personal_number_parse(text)
    if parsed is None:
        return None
    field, number = parsed
    # encrypted at rest: the keyed hash of the normalised number, under every key (a
    # rotation in progress leaves some rows on the previous key's hash)
    return Q(**{f"{field}_digest__in": personal_digests(number, purpose=field)})


def member_list(
    *, user, filters: MemberFilters | None = None, found: Q | None = None
) -> QuerySet[Member]:
    """The scoped member list, filtered; `q` matches the member number (exactly, any case)
    or part of the name, never a phone or ID number. A search by those is the audited,
    throttled `member_personal_search`: the condition it returns is `found`, matched
    besides the member number and name."""
    filters = filters or MemberFilters()
    members = member_scope(user=user).select_related("branch", "account_manager", "tier")
    if filters.tier:
        members = members.filter(tier__code=filters.tier)
    if filters.q:
        condition = member_search_q(filters.q)
        if found is not None:
            condition |= found
        members = members.filter(condition)
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
        segment = Segment.objects.filter(code=filters.segment).first()
        members = members.filter(segment_filter(segment)) if segment else members.none()
    if filters.worklist in WORK_LISTS:
        members = members.filter(WORK_LISTS[filters.worklist].condition(today=today_in_shanghai()))
    return members.order_by("member_no")


def member_search_q(text: str) -> Q:
    """A search by member number (exactly, any case) or part of the name."""
    text = text.strip()
    return Q(member_no__iexact=text) | Q(name__icontains=text)


def member_get(*, user, member_no: str) -> Member:
    """One member in the user's scope; 404 (not 403) otherwise, so guessing reveals nothing."""
    try:
        return (
            member_scope(user=user)
            .select_related("branch", "account_manager", "tier__scheme", "basis")
            .get(member_no=member_no)
        )
    except Member.DoesNotExist:
        raise Http404("No such member.") from None


def member_monthly_stats(*, member: Member, months: int = 12) -> list[MemberMonthlyStat]:
    """The member's latest monthly statistics, oldest first."""
    stats = list(MemberMonthlyStat.objects.filter(member=member).order_by("-month")[:months])
    return list(reversed(stats))


#: PostgreSQL advisory-lock class of running feed imports: an import holds the session lock
#: (this class, its batch id) from the moment its LOADING batch is committed until it ends,
#: and the database drops it when the process dies, so a lock that is gone means the
#: process is gone (`members.services.feeds`).
FEED_RUNNING_LOCK_CLASS = 7_302_000
#: the advisory lock's second key is an int4
FEED_RUNNING_LOCK_IDS = 2**31
#: On SQLite (development) there are no advisory locks: a LOADING batch older than this is
#: taken for interrupted.
FEED_LOADING_STALE_AFTER = timedelta(hours=2)

_FEED_PROCESS_ALIVE_SQL = (
    "EXISTS (SELECT 1 FROM pg_locks l WHERE l.locktype = 'advisory' "
    f"AND l.classid = {FEED_RUNNING_LOCK_CLASS}::oid "
    f"AND l.objid = (members_feedbatch.id %% {FEED_RUNNING_LOCK_IDS})::oid "
    "AND l.objsubid = 2 AND l.granted)"
)


def feed_batch_process_alive():
    """An expression: is the import of this batch still running (only meaningful while it
    is LOADING)?"""
    if connection.vendor == "postgresql":
        # a constant statement: no value from outside goes into it
        return RawSQL(_FEED_PROCESS_ALIVE_SQL, [], output_field=BooleanField())  # noqa: S611
    return ExpressionWrapper(
        Q(started_at__gte=timezone.now() - FEED_LOADING_STALE_AFTER), output_field=BooleanField()
    )


def feed_batch_list() -> QuerySet[FeedBatch]:
    """Feed batches, newest first, each with `process_alive` so a LOADING batch whose
    process died shows as INTERRUPTED (`FeedBatch.status_shown`)."""
    return (
        FeedBatch.objects.select_related("imported_by")
        .annotate(process_alive=feed_batch_process_alive())
        .order_by("-started_at", "-id")
    )


def measure_text(method: str, value: int) -> str | int:
    """MADA amounts are strings with 2 decimals (CNY); points are integers (API.md)."""
    return f"{fen_to_decimal(value):.2f}" if method == TierMethod.MADA else int(value)


@dataclass(frozen=True)
class TierStanding:
    """Where a member stands, from what the last recompute stored: the tier held, the next
    one and the gap to it, and the downgrade protection when the basis is below the tier's
    threshold. Amounts are in the scheme's units (fen of MADA, or points): `value()` turns
    them into CNY or points."""

    tier: Tier | None
    since: date | None
    method: str = ""
    next_tier: Tier | None = None
    #: the gap to the next tier (0 when the basis already reaches it)
    missing: int = 0
    months_below: int = 0
    downgrade_after_months: int = 0
    #: below the tier's threshold by this much (None: not below, or never graded)
    keep_tier_missing: int | None = None

    def value(self, units: int) -> Decimal | int:
        """`units` as people count them: CNY for a MADA scheme, points otherwise."""
        return fen_to_decimal(units) if self.method == TierMethod.MADA else int(units)


def member_tier_standing(*, member: Member) -> TierStanding:
    """The member's tier, the next tier with the gap to it and the protection (the member
    centre's figures and the customer page's, one rule)."""
    tier = member.tier
    if tier is None:
        return TierStanding(tier=None, since=None)
    scheme = tier.scheme
    basis = member.tier_basis or 0
    next_tier = Tier.objects.filter(scheme=scheme, rank__gt=tier.rank).order_by("rank").first()
    below = member.tier_basis is not None and basis < tier.threshold
    return TierStanding(
        tier=tier,
        since=member.tier_since,
        method=scheme.method,
        next_tier=next_tier,
        missing=max(0, next_tier.threshold - basis) if next_tier else 0,
        months_below=member.tier_months_below,
        downgrade_after_months=scheme.downgrade_after_months,
        keep_tier_missing=tier.threshold - basis if below else None,
    )


def member_tier_status(*, member: Member) -> dict:
    """Tier, next tier and downgrade protection as the member centre (API.md) shows them,
    from what the last recompute stored: codes, and amounts as measure_text writes them."""
    standing = member_tier_standing(member=member)
    tier, next_tier = standing.tier, standing.next_tier
    if tier is None:
        return {"tier": None, "tier_since": None, "next_tier": None, "protection": None}
    protection = None
    if standing.keep_tier_missing is not None:
        protection = {
            "months_below": standing.months_below,
            "downgrade_after_months": standing.downgrade_after_months,
            "keep_tier_needs": measure_text(standing.method, tier.threshold),
            "missing": measure_text(standing.method, standing.keep_tier_missing),
        }
    return {
        "tier": {"code": tier.code, "name": tier.name, "rank": tier.rank},
        "tier_since": standing.since,
        "next_tier": None
        if next_tier is None
        else {
            "code": next_tier.code,
            "measure": standing.method,
            "missing": measure_text(standing.method, standing.missing),
        },
        "protection": protection,
    }


def last_tier_recompute_date() -> date | None:
    """The latest business date the nightly tier recompute graded (None: never)."""
    return (
        JobRun.objects.filter(kind="tier_recompute", status__in=["SUCCEEDED", "WARNING"])
        .order_by("-business_date")
        .values_list("business_date", flat=True)
        .first()
    )


def member_tier_explanation(*, member: Member):
    """The engine's explanation of the member's tier for the latest business date graded."""
    last = last_tier_recompute_date()
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


def member_points_entries(*, member: Member, limit: int = 20):
    """The member's latest points ledger entries (newest first)."""
    return list(PointsEntry.objects.filter(member=member).order_by("-id")[:limit])


# --- the account manager's workbench -------------------------------------------------------

#: how many rows each workbench list shows (its "all" link opens the full, paginated list)
WORKBENCH_ROWS = 10
#: a list's count stops here ("1,000+"): counting a million-member scope would cost a scan
WORKBENCH_COUNT_CAP = 1000
#: the work lists, in the order the workbench shows them
WORKBENCH_LISTS = tuple(WORK_LISTS)


def member_worklist(*, user, name: str, today) -> QuerySet[Member]:
    """One of the account manager's work lists (`members.worklists`) over their scoped
    customers, in the order they act on it."""
    work_list = WORK_LISTS[name]
    return (
        member_scope(user=user)
        .select_related("tier", "branch", "basis")
        .filter(work_list.condition(today=today))
        .order_by(*work_list.ordering)
    )


def capped_count(queryset: QuerySet, cap: int = WORKBENCH_COUNT_CAP) -> tuple[int, bool]:
    """(count, capped): counts at most `cap` + 1 rows, so a huge scope stays cheap."""
    found = queryset.order_by().values("pk")[: cap + 1].count()
    return min(found, cap), found > cap


def followups_due(*, user, today, within_days: int = 7):
    """The user's open follow-up notes due within a week (overdue first), on customers still
    in their scope."""
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
    return FollowUpNote.objects.filter(member=member).select_related("author")


#: how long the workbench lists the manual tiers a scheme switch ended
SCHEME_ENDED_DAYS = 30


def overrides_ended_by_scheme(*, user, today) -> QuerySet[TierOverride]:
    """The manual tiers (in force or asked for) of the user's customers that a tier scheme
    switch ended in the last `SCHEME_ENDED_DAYS` days, newest first: the account manager
    decides whether to ask again under the new scheme."""
    return (
        TierOverride.objects.filter(
            end_cause=TierChangeCause.SCHEME_CHANGE,
            ended_on__gte=today - timedelta(days=SCHEME_ENDED_DAYS),
            member__in=member_scope(user=user),
        )
        .select_related("member__tier", "tier")
        .order_by("-ended_on", "-id")
    )


def tier_scheme_scheduled() -> TierScheme | None:
    """The approved tier scheme waiting for its effective night (at most one)."""
    return TierScheme.objects.filter(status=SchemeStatus.SCHEDULED).first()
