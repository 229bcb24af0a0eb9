"""Portal pages: home, job runs and the approvals inbox."""

from django.contrib import messages
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from members.choices import LifecycleStage
from members.feeds import today_in_shanghai
from members.selectors import (
    WORKBENCH_LISTS,
    WORKBENCH_ROWS,
    active_tiers,
    capped_count,
    expiring_grants,
    followups_due,
    measure_text,
    member_worklist,
)

from .approvals import (
    ApprovalError,
    approval_decide,
    approval_inbox,
    approval_may_decide,
    approval_visible,
)
from .choices import ApprovalStatus, Role
from .decorators import action_required
from .models import JobRun
from .paging import query_without
from .permissions import user_can
from .selectors import jobrun_list
from .tasks import nightly_run_task


@action_required("portal.view_home")
def home(request):
    """The workbench, the page after login: what the user's customers need today (about to
    upgrade, protected below their tier, dormant, new this month, benefits expiring unused),
    the follow-ups due, and requests waiting for the user's decision. Each list shows its
    first rows and a capped count, so the page costs the same at 1,000,000 members; the
    lists are for account and branch managers (head-office roles get the search, their
    approvals and job runs, and the dashboard in the navigation)."""
    user = request.user
    today = today_in_shanghai()
    lists, tiers = [], []
    # The lists are for people with a book of customers; head-office roles (whose scope is
    # the whole bank) read the dashboard instead of scanning a million members here.
    if user.has_role(Role.ACCOUNT_MANAGER) or user.has_role(Role.BRANCH_MANAGER):
        titles = {
            "upgrade": _("About to upgrade (within 10 percent of the next tier)"),
            "downgrade": _("Below their tier: protected, may be downgraded"),
            "dormant": _("Dormant customers"),
            "new": _("New this month"),
        }
        tiers = active_tiers()
        next_threshold = {
            tier.pk: upper.threshold for tier, upper in zip(tiers, tiers[1:], strict=False)
        }
        for name in WORKBENCH_LISTS:
            rows = member_worklist(user=user, name=name, today=today)
            count, capped = capped_count(rows)
            shown = list(rows[:WORKBENCH_ROWS])
            for member in shown:
                if member.tier_id in next_threshold and member.tier_basis is not None:
                    member.to_next_tier = measure_text(
                        tiers[0].scheme.method,
                        next_threshold[member.tier_id] - member.tier_basis,
                    )
            lists.append(
                {
                    "name": name,
                    "title": titles[name],
                    "rows": shown,
                    "count": count,
                    "capped": capped,
                }
            )
    grants = expiring_grants(user=user, today=today) if lists else None
    grants_count = capped_count(grants) if grants is not None else (0, False)
    can_notes = user_can(user, "members.write_notes")
    return render(
        request,
        "portal/home.html",
        {
            "lists": lists,
            "grants": list(grants[:WORKBENCH_ROWS]) if grants is not None else [],
            "grants_count": grants_count[0],
            "grants_capped": grants_count[1],
            "followups": list(followups_due(user=user, today=today)[:20]) if can_notes else [],
            "can_notes": can_notes,
            "can_search": user_can(user, "members.view_members"),
            "today": today,
            "waiting_approvals": approval_inbox(user=user).count(),
            "recent_jobs": list(jobrun_list()[:5]) if user.has_perm("portal.view_jobruns") else [],
            "stage_choices": LifecycleStage.choices,
            "tier_measure": tiers[0].scheme.method if lists and tiers else None,
        },
    )


@action_required("portal.view_jobruns")
def jobrun_list_view(request):
    page = Paginator(jobrun_list(), 50).get_page(request.GET.get("page"))
    return render(
        request,
        "portal/jobrun_list.html",
        {"page": page, "can_rerun": user_can(request.user, "portal.rerun_job")},
    )


@require_POST
@action_required("portal.rerun_job")
def jobrun_rerun_view(request, pk: int):
    """Re-run the nightly chain for a failed run's business date (idempotent per date)."""
    run = get_object_or_404(JobRun, pk=pk)
    nightly_run_task.delay(run.business_date.isoformat())
    messages.success(
        request,
        _("The nightly chain for %(date)s was started again; its runs appear below.")
        % {"date": run.business_date.isoformat()},
    )
    return redirect("jobruns")


#: the tabs of the approvals inbox: key -> label (the queryset is built in the view)
APPROVAL_TABS = {
    "inbox": _("Waiting for me"),
    "mine": _("My requests"),
    "all": _("All requests"),
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
    return render(
        request,
        "portal/approval_detail.html",
        {
            "approval": approval,
            "diff": approval.diff(),
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
    except ApprovalError as exc:
        messages.error(request, _("Not decided: %(reason)s") % {"reason": exc})
        return redirect("approval-detail", pk=pk)
    messages.success(
        request,
        _("%(request)s: %(status)s.")
        % {"request": approval.summary, "status": approval.get_status_display()},
    )
    return redirect("approvals")
