"""Member pages: the scoped customer list, a customer's page, feed batches, tiers."""

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpResponseBadRequest, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.cache import add_never_cache_headers
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from campaigns.selectors import member_completions, member_tasks
from portal.csv_export import csv_response
from portal.decorators import action_required
from portal.middleware import client_ip
from portal.paging import query_without
from portal.permissions import user_can

from .exports import CsvExport, member_export, segment_export
from .feeds import looks_like_id_number
from .forms import (
    BenefitFeedbackForm,
    DecisionForm,
    FollowUpNoteForm,
    MemberFilterForm,
    OptOutForm,
    RevealForm,
    TierOverrideForm,
)
from .models import Segment, TierOverride, TierScheme
from .selectors import (
    MemberFilters,
    feed_batch_list,
    member_benefit_feedback,
    member_get,
    member_grant_list,
    member_list,
    member_monthly_stats,
    member_notes,
    member_points_entries,
    member_scope,
    member_tier_explanation,
    member_tier_history,
    member_tier_overrides,
    member_tier_status,
)
from .services import TierRuleError, tier_override_decide, tier_override_request, tier_simulate
from .services.personal import member_marketing_opt_out_set, member_personal_data_reveal

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
    # an exact ID match fits on one page; links never carry the number
    hidden = ["q"] if looks_like_id_number(request.GET.get("q", "")) else []
    query = query_without(request, "page", *hidden)
    # An exact ID-number search is never carried in a link, so it cannot be exported either.
    can_export = user_can(request.user, "members.export_members") and not looks_like_id_number(
        filters.q
    )
    return render(
        request,
        "members/member_list.html",
        {"form": form, "page": page, "query": query, "can_export": can_export},
    )


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


def _member_page(request, member, *, revealed=None, reveal_form=None, status: int = 200):
    """The customer page; `revealed` (full phone and ID number) only in a reveal's response."""
    can_request = user_can(request.user, "members.request_tier_override")
    can_reveal = user_can(request.user, "members.reveal_personal_data")
    can_write_notes = user_can(request.user, "members.write_notes")
    stats = member_monthly_stats(member=member)
    response = render(
        request,
        "members/member_detail.html",
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
            "overrides": member_tier_overrides(member=member),
            "override_form": TierOverrideForm() if can_request else None,
            "can_decide": user_can(request.user, "members.approve_tier_override"),
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


@require_POST
@action_required("members.record_opt_out")
def member_opt_out_view(request, member_no: str):
    member = member_get(user=request.user, member_no=member_no)
    form = OptOutForm(request.POST)
    if not form.is_valid():
        messages.error(request, form.errors.as_text())
    else:
        opted_out = form.cleaned_data["opted_out"]
        member_marketing_opt_out_set(
            member=member,
            opted_out=opted_out,
            actor=request.user,
            reason=form.cleaned_data["reason"],
        )
        messages.success(
            request,
            _("Recorded: the customer is left out of targeted campaigns and segment exports.")
            if opted_out
            else _("Recorded: the customer may be targeted by campaigns again."),
        )
    return redirect("members:detail", member_no=member.member_no)


def _csv_response(export: CsvExport) -> StreamingHttpResponse:
    response = csv_response(export.lines, export.filename)
    add_never_cache_headers(response)
    return response


@action_required("members.export_members")
def member_export_view(request):
    """The member list as filtered on the list page, as CSV (masked, scoped, audited)."""
    form = MemberFilterForm(request.GET or None)
    if form.is_bound and not form.is_valid():
        return HttpResponseBadRequest(form.errors.as_text(), content_type="text/plain")
    filters = MemberFilters(**form.cleaned_data) if form.is_bound else MemberFilters()
    return _csv_response(member_export(user=request.user, filters=filters, ip=client_ip(request)))


@action_required("members.export_members")
def segment_export_view(request, pk: int):
    """A segment's members in the user's scope, opted-out customers left out, as CSV."""
    segment = get_object_or_404(Segment, pk=pk)
    return _csv_response(segment_export(user=request.user, segment=segment, ip=client_ip(request)))


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
