"""The customer 360 page: one customer in the words of every domain — tier and why (members),
tasks and rewards (campaigns), benefits, redemptions and feedback (benefits), notes and
personal data (members) — composed here, above the domains."""

from django.shortcuts import render
from django.utils.cache import add_never_cache_headers
from django.views.decorators.http import require_POST

from benefits.forms import BenefitFeedbackForm
from benefits.selectors import member_benefit_feedback, member_grant_list
from campaigns.selectors import member_completions, member_tasks
from members.choices import MemberApproval, OverrideStatus
from members.forms import FollowUpNoteForm, RevealForm, TierOverrideForm
from members.models import TierOverride
from members.selectors import (
    member_get,
    member_monthly_stats,
    member_notes,
    member_points_entries,
    member_tier_explanation,
    member_tier_history,
    member_tier_overrides,
    member_tier_status,
)
from members.services import member_personal_data_reveal
from portal.approvals import approval_may_decide
from portal.choices import ApprovalStatus
from portal.decorators import action_required
from portal.middleware import client_ip
from portal.models import ApprovalRequest
from portal.permissions import user_can


@action_required("members.view_members")
def member_detail_view(request, member_no: str):
    member = member_get(user=request.user, member_no=member_no)
    return _member_page(request, member)


#: geometry of the 12-month MADA chart on the customer page (SVG user units)
TREND_WIDTH, TREND_HEIGHT, TREND_BAR = 600, 160, 36


def mada_trend(stats) -> list[dict]:
    """Bars of the monthly average daily assets over the months shown (oldest first)."""
    values = [stat.mada or 0 for stat in stats]
    top = max(values, default=0) or 1
    step = TREND_WIDTH / max(len(values), 1)
    bars = []
    for index, (stat, value) in enumerate(zip(stats, values, strict=True)):
        height = float(value) / float(top) * (TREND_HEIGHT - 20)
        bars.append(
            {
                "month": stat.month,
                "value": value,
                "x": round(index * step + (step - TREND_BAR) / 2, 1),
                "y": round(TREND_HEIGHT - 16 - height, 1),
                "height": round(height, 1),
                "label_x": round(index * step + step / 2, 1),
            }
        )
    return bars


def _decidable(overrides, user) -> set[int]:
    """The pending manual tier requests shown that `user` may decide (the engine's rules)."""
    pending = [str(o.pk) for o in overrides if o.status == OverrideStatus.PENDING]
    if not pending or not user_can(user, "members.approve_tier_override"):
        return set()
    requests = ApprovalRequest.objects.filter(
        kind=MemberApproval.TIER_OVERRIDE,
        object_type=TierOverride._meta.label_lower,
        object_id__in=pending,
        status=ApprovalStatus.PENDING,
    )
    return {
        int(approval.object_id)
        for approval in requests
        if approval_may_decide(approval=approval, user=user)
    }


def _member_page(request, member, *, revealed=None, reveal_form=None, status: int = 200):
    """The customer page; `revealed` (full phone and ID number) only in a reveal's response."""
    can_request = user_can(request.user, "members.request_tier_override")
    can_reveal = user_can(request.user, "members.reveal_personal_data")
    can_write_notes = user_can(request.user, "members.write_notes")
    stats = member_monthly_stats(member=member)
    overrides = member_tier_overrides(member=member)
    response = render(
        request,
        "operations/customer.html",
        {
            "member": member,
            "revealed": revealed,
            "reveal_form": (reveal_form or RevealForm()) if can_reveal else None,
            "can_opt_out": user_can(request.user, "members.record_opt_out"),
            "stats": stats,
            "mada_trend": mada_trend(stats),
            "notes": member_notes(member=member)[:50],
            "note_form": FollowUpNoteForm() if can_write_notes else None,
            "can_write_notes": can_write_notes,
            "feedback": member_benefit_feedback(member=member)[:20],
            "feedback_form": BenefitFeedbackForm()
            if user_can(request.user, "benefits.leave_feedback")
            else None,
            "tier_status": member_tier_status(member=member),
            "explanation": member_tier_explanation(member=member),
            "history": member_tier_history(member=member),
            "overrides": overrides,
            "decidable_overrides": _decidable(overrides, request.user),
            "override_form": TierOverrideForm() if can_request else None,
            "grants": member_grant_list(member=member),
            "tasks": member_tasks(member=member),
            "completions": member_completions(member=member),
            "points_entries": member_points_entries(member=member),
        },
        status=status,
    )
    if revealed:
        add_never_cache_headers(response)
    return response


@require_POST
@action_required("members.reveal_personal_data")
def member_reveal_view(request, member_no: str):
    """Show the full phone and ID number once, for a reason, audited. The values are in this
    response only (never in the session, never cached); with htmx just the fragment."""
    member = member_get(user=request.user, member_no=member_no)
    form = RevealForm(request.POST)
    revealed = None
    if form.is_valid():
        revealed = member_personal_data_reveal(
            member=member,
            actor=request.user,
            reason=form.cleaned_data["reason"],
            ip=client_ip(request),
        )
    if not request.htmx:
        return _member_page(
            request, member, revealed=revealed, reveal_form=form, status=200 if revealed else 400
        )
    # htmx swaps only 2xx responses: a missing reason comes back as a 200 fragment with the
    # error in place of the values.
    response = render(
        request,
        "members/_personal_data.html",
        {"member": member, "revealed": revealed, "reveal_form": form},
    )
    add_never_cache_headers(response)
    return response
