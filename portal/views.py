"""Kernel pages: the approvals inbox (every kind of request, decided through the engine)."""

from django.contrib import messages
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from .approvals import (
    approval_decide,
    approval_diff,
    approval_impact,
    approval_inbox,
    approval_links,
    approval_may_decide,
    approval_summaries,
    approval_summary,
    approval_visible,
)
from .choices import ApprovalStatus, Role
from .decorators import action_required
from .errors import DomainError
from .paging import query_without

#: the tabs of the approvals inbox: key -> label (the queryset is built in the view); lazy,
#: so that each page says them in its reader's language
APPROVAL_TABS = {
    "inbox": gettext_lazy("Waiting for me"),
    "mine": gettext_lazy("My requests"),
    "all": gettext_lazy("All requests"),
}


@action_required("portal.view_approvals")
def approval_list_view(request):
    """The maker-checker inbox: requests waiting for the user's decision (oldest first), the
    user's own requests, and for risk auditors and administrators every request."""
    user = request.user
    tabs = ["inbox", "mine"]
    if user.is_superuser or user.has_role(Role.RISK_AUDITOR) or user.has_role(Role.ADMINISTRATOR):
        tabs.append("all")
    tab = request.GET.get("show", "inbox")
    if tab not in tabs:
        tab = "inbox"
    if tab == "inbox":
        requests = approval_inbox(user=user)
    elif tab == "mine":
        requests = approval_visible(user=user).filter(requested_by=user)
    else:
        requests = approval_visible(user=user)
    status = request.GET.get("status", "")
    if tab != "inbox" and status in ApprovalStatus.values:
        requests = requests.filter(status=status)
    page = Paginator(requests, 50).get_page(request.GET.get("page"))
    page.object_list = approval_summaries(page.object_list)
    return render(
        request,
        "portal/approval_list.html",
        {
            "page": page,
            "query": query_without(request, "page"),
            "tab": tab,
            "tabs": [(key, APPROVAL_TABS[key]) for key in tabs],
            "status": status,
            "statuses": ApprovalStatus.choices,
            "waiting": approval_inbox(user=user).count(),
        },
    )


@action_required("portal.view_approvals")
def approval_detail_view(request, pk: int):
    """One request: what it changes (current → proposed), who asked and why, and for a user
    who may decide it the approve / reject form. Requests the user may not see are 404."""
    approval = get_object_or_404(approval_visible(user=request.user), pk=pk)
    approval.summary_text = approval_summary(approval)
    return render(
        request,
        "portal/approval_detail.html",
        {
            "approval": approval,
            "diff": approval_diff(approval),
            "impact": approval_impact(approval),
            "links": approval_links(approval),
            "may_decide": approval_may_decide(approval=approval, user=request.user),
            "own": approval.requested_by_id == request.user.pk,
        },
    )


@require_POST
@action_required("portal.view_approvals")
def approval_decide_view(request, pk: int):
    approval = get_object_or_404(approval_visible(user=request.user), pk=pk)
    decision = request.POST.get("decision")
    if decision not in {"approve", "reject"}:
        messages.error(request, _("Choose approve or reject."))
        return redirect("approval-detail", pk=pk)
    try:
        approval = approval_decide(
            approval=approval,
            approve=decision == "approve",
            actor=request.user,
            comment=request.POST.get("comment", "").strip(),
        )
    except DomainError as exc:
        messages.error(request, _("Not decided: %(reason)s") % {"reason": exc})
        return redirect("approval-detail", pk=pk)
    messages.success(
        request,
        _("%(request)s: %(status)s.")
        % {"request": approval_summary(approval), "status": approval.get_status_display()},
    )
    return redirect("approvals")
