"""Member pages: the scoped customer list and its exports, the opt-out, a manual tier
request and its decision, feed batches and the scheme simulation (the customer 360 page is
composed in `operations`)."""

from django.contrib import messages
from django.core.files.uploadhandler import FileUploadHandler, StopUpload
from django.core.paginator import Paginator
from django.http import HttpResponseBadRequest, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.cache import add_never_cache_headers
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_POST

from portal.approvals import approval_decide, approval_pending_for
from portal.clock import today_in_shanghai
from portal.csv_export import csv_response
from portal.decorators import action_required
from portal.display import name_of
from portal.errors import DomainError
from portal.middleware import client_ip
from portal.paging import query_without
from portal.permissions import user_can

from .choices import FeedStatus, MemberApproval, SchemeStatus
from .exports import CsvExport, feed_rejections_export, member_export, segment_export
from .forms import (
    DecisionForm,
    FeedUploadForm,
    MemberFilterForm,
    OptOutForm,
    TierOverrideForm,
    feed_file_error_text,
    feed_upload_max_bytes,
    feed_upload_too_large_text,
)
from .models import Segment, Tier, TierOverride, TierScheme
from .selectors import (
    MemberFilters,
    feed_batch_list,
    looks_like_personal_number,
    member_get,
    member_list,
    member_scope,
)
from .services import (
    FeedFileError,
    feed_import,
    member_marketing_opt_out_set,
    tier_override_request,
    tier_override_withdraw,
    tier_simulate,
)
from .services.personal_search import member_personal_search

PAGE_SIZE = 25


@action_required("members.view_members")
def member_list_view(request):
    """The scoped customer list. A full ID or mobile number is searched only for a role that
    may reveal personal data — audited and throttled (`member_personal_search`), with an
    optional reason — and otherwise matches only member numbers and names, as the page says.
    """
    form = MemberFilterForm(request.GET or None)
    filters = MemberFilters(**form.cleaned_data) if form.is_valid() else MemberFilters()
    may_search_personal = user_can(request.user, "members.reveal_personal_data")
    personal = looks_like_personal_number(filters.q)
    found, notice = None, ""
    if personal:
        # Matched, never shown: the search box is not refilled with the number.
        form = MemberFilterForm({**request.GET.dict(), "q": ""})
        form.is_valid()
        try:
            found = member_personal_search(
                user=request.user,
                text=filters.q,
                reason=request.GET.get("reason", ""),
                ip=client_ip(request),
            )
        except DomainError as exc:
            notice = exc.message
    _tier_options_by_name(form)
    form.fields["q"].widget.attrs["placeholder"] = (
        _("Member no., name, full ID or mobile number")
        if may_search_personal
        else _("Member no. or name")
    )
    page = Paginator(
        member_list(user=request.user, filters=filters, found=found), PAGE_SIZE
    ).get_page(request.GET.get("page"))
    # an exact match fits on one page; links never carry the number, nor its reason
    hidden = ["q"] if looks_like_personal_number(request.GET.get("q", "")) else []
    query = query_without(request, "page", "reason", *hidden)
    # A search by a personal number is never carried in a link, so it cannot be exported.
    can_export = user_can(request.user, "members.export_members") and not personal
    return render(
        request,
        "members/member_list.html",
        {
            "form": form,
            "page": page,
            "query": query,
            "can_export": can_export,
            "may_search_personal": may_search_personal,
            "search_notice": notice,
        },
    )


def _tier_options_by_name(form: MemberFilterForm) -> None:
    """The tier filter's options by the tiers' names in the user's language (the values stay
    the codes the filter and the export link carry)."""
    names = {
        tier.code: name_of(tier)
        for tier in Tier.objects.filter(scheme__status=SchemeStatus.ACTIVE).only(
            "code", "name", "name_en"
        )
    }
    form.fields["tier"].choices = [
        (code, names.get(code, label)) for code, label in form.fields["tier"].choices
    ]


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
@action_required("members.request_tier_override")
def tier_override_withdraw_view(request, pk: int):
    """The requester takes back their manual tier request while it waits."""
    override = get_object_or_404(
        TierOverride.objects.filter(member__in=member_scope(user=request.user)), pk=pk
    )
    try:
        tier_override_withdraw(
            override=override, actor=request.user, reason=request.POST.get("reason", "")[:255]
        )
    except DomainError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, _("Request withdrawn."))
    return redirect("members:detail", member_no=override.member.member_no)


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
    names = _tier_names(scheme, {*new_codes, *old_codes})
    rows = [
        (
            names.get(old, old),
            [result["matrix"][old].get(new, 0) for new in new_codes],
            sum(result["matrix"][old].values()),
        )
        for old in old_codes
    ]
    distribution = [
        (names.get(code, code), count) for code, count in result["distribution"].items()
    ]
    new_names = [names.get(code, code) for code in new_codes]
    return render(
        request,
        "members/scheme_simulate.html",
        {
            "scheme": scheme,
            "result": result,
            "distribution": distribution,
            "new_names": new_names,
            "rows": rows,
        },
    )


def _tier_names(scheme: TierScheme, codes: set[str]) -> dict[str, str]:
    """Tier codes by name in the user's language: the simulated scheme's tiers, and the
    tiers held now (the active scheme's) for codes it does not have."""
    tiers = Tier.objects.filter(code__in=codes, scheme__status=SchemeStatus.ACTIVE)
    names = {tier.code: name_of(tier) for tier in tiers}
    names.update({tier.code: name_of(tier) for tier in scheme.tiers.filter(code__in=codes)})
    return names


def _feed_page_context(request, *, form: FeedUploadForm | None = None) -> dict:
    page = Paginator(feed_batch_list(), 50).get_page(request.GET.get("page"))
    can_import = user_can(request.user, "members.import_feed")
    if can_import and form is None:
        form = FeedUploadForm()
    return {
        "page": page,
        "can_import": can_import,
        "form": form if can_import else None,
        "max_bytes": feed_upload_max_bytes(),
    }


@action_required("members.view_feeds")
def feed_list_view(request):
    return render(request, "members/feed_list.html", _feed_page_context(request))


class FeedUploadLimit(FileUploadHandler):
    """Stops reading an upload that grows past the limit, before it fills the disk (a
    Content-Length can be missing or wrong)."""

    def __init__(self, request, limit: int) -> None:
        super().__init__(request)
        self.limit = limit
        self.exceeded = False

    def receive_data_chunk(self, raw_data, start):
        if start + len(raw_data) > self.limit:
            self.exceeded = True
            raise StopUpload(connection_reset=False)
        return raw_data

    def file_complete(self, file_size):
        return None


#: room for the form fields and multipart boundaries around the file itself
_UPLOAD_OVERHEAD_BYTES = 64 * 1024


@action_required("members.import_feed")
@csrf_exempt  # checked below, once the upload handlers are in place (Django's upload docs)
def feed_upload_view(request):
    """Upload one feed file on the feeds page and import it with the command's service."""
    if request.method != "POST":
        return redirect("members:feeds")
    limit = feed_upload_max_bytes()
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > limit + _UPLOAD_OVERHEAD_BYTES:
        # refused before a byte of the body is read; nothing is changed, so no CSRF check
        messages.error(request, feed_upload_too_large_text())
        return redirect("members:feeds")
    guard = FeedUploadLimit(request, limit)
    request.upload_handlers.insert(0, guard)
    return _feed_upload(request, guard)


@csrf_protect
def _feed_upload(request, guard: FeedUploadLimit):
    form = FeedUploadForm(request.POST, request.FILES)
    if guard.exceeded:
        messages.error(request, feed_upload_too_large_text())
        return redirect("members:feeds")
    if not form.is_valid():
        return render(
            request, "members/feed_list.html", _feed_page_context(request, form=form), status=400
        )
    upload = form.cleaned_data["file"]
    try:
        batch = feed_import(
            kind=form.cleaned_data["kind"],
            file=upload.file,
            file_name=upload.name,
            actor=request.user,
        )
    except FeedFileError as exc:
        form.add_error("file", feed_file_error_text(exc))
        return render(
            request, "members/feed_list.html", _feed_page_context(request, form=form), status=400
        )
    summary = (
        f"received={batch.received} accepted={batch.accepted} "
        f"duplicates={batch.duplicates} rejected={batch.rejected}"
    )
    if batch.status == FeedStatus.REJECTED:
        messages.warning(
            request,
            _("%(summary)s — every row was rejected; nothing was loaded. See the reasons below.")
            % {"summary": summary},
        )
    elif batch.status == FeedStatus.DUPLICATE_FILE:
        messages.info(
            request,
            _("%(summary)s — this file was loaded before; nothing changed.") % {"summary": summary},
        )
    else:
        messages.success(request, _("%(summary)s — the file is loaded.") % {"summary": summary})
    return redirect("members:feed-detail", pk=batch.pk)


def _feed_batch(pk: int):
    return get_object_or_404(feed_batch_list(), pk=pk)


@action_required("members.view_feeds")
def feed_detail_view(request, pk: int):
    batch = _feed_batch(pk)
    rejections = Paginator(
        batch.rejections.select_related("batch").order_by("line_no"), 100
    ).get_page(request.GET.get("page"))
    return render(request, "members/feed_detail.html", {"batch": batch, "page": rejections})


@action_required("members.view_feeds")
def feed_progress_view(request, pk: int):
    """The state of one batch as a fragment the feed page polls while it is LOADING; htmx
    stops polling on status 286 once the import has ended."""
    batch = _feed_batch(pk)
    response = render(request, "members/_feed_progress.html", {"batch": batch})
    if batch.status_shown != FeedStatus.LOADING:
        response.status_code = 286
        response["HX-Refresh"] = "true"  # the whole page: counts and rejected rows
    add_never_cache_headers(response)
    return response


@action_required("members.view_feeds")
def feed_rejections_export_view(request, pk: int):
    """The batch's rejected rows as CSV (masked like the page, audited)."""
    batch = _feed_batch(pk)
    return _csv_response(
        feed_rejections_export(user=request.user, batch=batch, ip=client_ip(request))
    )
