"""Member pages: the scoped customer list and its exports, the opt-out, a manual tier
request and its decision, feed batches and the scheme simulation (the customer 360 page is
composed in `operations`)."""

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpResponseBadRequest, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.cache import add_never_cache_headers
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from portal.approvals import approval_decide, approval_pending_for
from portal.clock import today_in_shanghai
from portal.csv_export import csv_response
from portal.decorators import action_required
from portal.errors import DomainError
from portal.middleware import client_ip
from portal.paging import query_without
from portal.permissions import user_can

from .choices import MemberApproval
from .exports import CsvExport, member_export, segment_export
from .feeds import looks_like_id_number
from .forms import DecisionForm, MemberFilterForm, OptOutForm, TierOverrideForm
from .models import Segment, TierOverride, TierScheme
from .selectors import MemberFilters, feed_batch_list, member_get, member_list, member_scope
from .services import member_marketing_opt_out_set, tier_override_request, tier_simulate

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
        except DomainError as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, _("Request sent: a branch manager must approve it."))
    else:
        messages.error(request, form.errors.as_text())
    return redirect("members:detail", member_no=member.member_no)


@require_POST
@action_required("members.approve_tier_override")
def tier_override_decide_view(request, pk: int):
    """The customer page's door to a manual tier request: the approval engine decides."""
    override = get_object_or_404(
        TierOverride.objects.filter(member__in=member_scope(user=request.user)), pk=pk
    )
    form = DecisionForm(request.POST)
    form.is_valid()
    try:
        approval_decide(
            approval=approval_pending_for(kind=MemberApproval.TIER_OVERRIDE, obj=override),
            approve=form.cleaned_data.get("approve", False),
            actor=request.user,
            comment=form.cleaned_data.get("comment", ""),
        )
    except DomainError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, _("Decision recorded."))
    return redirect("members:detail", member_no=override.member.member_no)


@action_required("members.simulate_tier_scheme")
def scheme_simulate_view(request, pk: int):
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
