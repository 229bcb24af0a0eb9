"""Operations pages: the workbench (home page) and the job runs of the nightly chain."""

from django.contrib import messages
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from benefits.selectors import expiring_grants
from members.choices import LifecycleStage
from members.selectors import (
    WORKBENCH_LISTS,
    WORKBENCH_ROWS,
    capped_count,
    followups_due,
    measure_text,
    member_worklist,
)
from members.worklists import WORK_LISTS, active_tiers
from portal.approvals import approval_inbox
from portal.choices import Role
from portal.clock import today_in_shanghai
from portal.decorators import action_required
from portal.models import JobRun
from portal.permissions import user_can
from portal.selectors import jobrun_list

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
                    "title": WORK_LISTS[name].title,
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
        "operations/home.html",
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
        "operations/jobrun_list.html",
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
