"""Member pages: the scoped customer list, a customer's page, feed batches, tiers."""

from django.contrib import messages
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from campaigns.selectors import member_completions, member_tasks
from portal.decorators import action_required
from portal.permissions import user_can

from .feeds import looks_like_id_number
from .forms import DecisionForm, MemberFilterForm, TierOverrideForm
from .models import TierOverride, TierScheme
from .selectors import (
    MemberFilters,
    feed_batch_list,
    member_get,
    member_grant_list,
    member_list,
    member_monthly_stats,
    member_points_entries,
    member_scope,
    member_tier_explanation,
    member_tier_history,
    member_tier_overrides,
    member_tier_status,
)
from .services import TierRuleError, tier_override_decide, tier_override_request, tier_simulate

PAGE_SIZE = 25


@action_required("members.view_members")
def member_list_view(request):
    form = MemberFilterForm(request.GET or None)
    filters = MemberFilters(**form.cleaned_data) if form.is_valid() else MemberFilters()
    if looks_like_id_number(filters.q):
        # Matched, never shown: the search box is not refilled with an ID number.
        form = MemberFilterForm({**request.GET.dict(), "q": ""})
        form.is_valid()
    page = Paginator(member_list(user=request.user, filters=filters), PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    query = request.GET.copy()
    query.pop("page", None)
    if looks_like_id_number(query.get("q", "")):
        query.pop("q")  # an exact ID match fits on one page; links never carry the number
    return render(
        request,
        "members/member_list.html",
        {"form": form, "page": page, "query": query.urlencode()},
    )


@action_required("members.view_members")
def member_detail_view(request, member_no: str):
    member = member_get(user=request.user, member_no=member_no)
    can_request = user_can(request.user, "members.request_tier_override")
    return render(
        request,
        "members/member_detail.html",
        {
            "member": member,
            "stats": member_monthly_stats(member=member),
            "tier_status": member_tier_status(member=member),
            "explanation": member_tier_explanation(member=member),
            "history": member_tier_history(member=member),
            "overrides": member_tier_overrides(member=member),
            "override_form": TierOverrideForm() if can_request else None,
            "can_decide": user_can(request.user, "members.approve_tier_override"),
            "grants": member_grant_list(member=member),
            "tasks": member_tasks(member=member),
            "completions": member_completions(member=member),
            "points_entries": member_points_entries(member=member),
        },
    )


@require_POST
@action_required("members.request_tier_override")
def tier_override_request_view(request, member_no: str):
    member = member_get(user=request.user, member_no=member_no)
    form = TierOverrideForm(request.POST)
    if form.is_valid():
        try:
            tier_override_request(member=member, actor=request.user, **form.cleaned_data)
        except TierRuleError as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, _("Request sent: a branch manager must approve it."))
    else:
        messages.error(request, form.errors.as_text())
    return redirect("members:detail", member_no=member.member_no)


@require_POST
@action_required("members.approve_tier_override")
def tier_override_decide_view(request, pk: int):
    override = get_object_or_404(
        TierOverride.objects.filter(member__in=member_scope(user=request.user)), pk=pk
    )
    form = DecisionForm(request.POST)
    form.is_valid()
    try:
        tier_override_decide(
            override=override,
            approve=form.cleaned_data.get("approve", False),
            actor=request.user,
            comment=form.cleaned_data.get("comment", ""),
        )
    except TierRuleError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, _("Decision recorded."))
    return redirect("members:detail", member_no=override.member.member_no)


@action_required("members.simulate_tier_scheme")
def scheme_simulate_view(request, pk: int):
    from .feeds import today_in_shanghai

    scheme = get_object_or_404(TierScheme, pk=pk)
    result = tier_simulate(scheme=scheme, business_date=today_in_shanghai())
    new_codes = list(result["distribution"])
    old_codes = list(result["matrix"])
    rows = [
        (
            old,
            [result["matrix"][old].get(new, 0) for new in new_codes],
            sum(result["matrix"][old].values()),
        )
        for old in old_codes
    ]
    return render(
        request,
        "members/scheme_simulate.html",
        {"scheme": scheme, "result": result, "new_codes": new_codes, "rows": rows},
    )


@action_required("members.view_feeds")
def feed_list_view(request):
    page = Paginator(feed_batch_list(), 50).get_page(request.GET.get("page"))
    return render(request, "members/feed_list.html", {"page": page})


@action_required("members.view_feeds")
def feed_detail_view(request, pk: int):
    batch = get_object_or_404(feed_batch_list(), pk=pk)
    rejections = Paginator(batch.rejections.order_by("line_no"), 100).get_page(
        request.GET.get("page")
    )
    return render(request, "members/feed_detail.html", {"batch": batch, "page": rejections})
