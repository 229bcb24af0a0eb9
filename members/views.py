"""Member pages: the scoped customer list, a customer's page, feed batches."""

from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, render

from portal.decorators import action_required

from .forms import MemberFilterForm
from .selectors import (
    MemberFilters,
    feed_batch_list,
    member_get,
    member_list,
    member_monthly_stats,
)

PAGE_SIZE = 25


@action_required("members.view_members")
def member_list_view(request):
    form = MemberFilterForm(request.GET or None)
    filters = MemberFilters(**form.cleaned_data) if form.is_valid() else MemberFilters()
    page = Paginator(member_list(user=request.user, filters=filters), PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "members/member_list.html",
        {"form": form, "page": page, "query": query.urlencode()},
    )


@action_required("members.view_members")
def member_detail_view(request, member_no: str):
    member = member_get(user=request.user, member_no=member_no)
    return render(
        request,
        "members/member_detail.html",
        {"member": member, "stats": member_monthly_stats(member=member)},
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
