"""Portal pages: home and job runs."""

from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Count
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from members.choices import LifecycleStage
from members.models import Tier
from members.selectors import member_scope

from .decorators import action_required
from .models import JobRun
from .permissions import user_can
from .selectors import jobrun_list
from .tasks import nightly_run_task


@action_required("portal.view_home")
def home(request):
    """The landing page after login: the user's customers at a glance."""
    members = member_scope(user=request.user)
    by_stage = dict(
        members.order_by()
        .values_list("lifecycle_stage")
        .annotate(n=Count("id"))
        .values_list("lifecycle_stage", "n")
    )
    recent_jobs = list(jobrun_list()[:5]) if request.user.has_perm("portal.view_jobruns") else []
    stages = [(value, label, by_stage.get(value, 0)) for value, label in LifecycleStage.choices]
    by_tier = dict(
        members.order_by()
        .values_list("tier_id")
        .annotate(n=Count("id"))
        .values_list("tier_id", "n")
    )
    tiers = [
        (tier.code, tier.name, by_tier.get(tier.pk, 0))
        for tier in Tier.objects.filter(scheme__status="ACTIVE").order_by("rank")
    ]
    return render(
        request,
        "portal/home.html",
        {
            "member_count": sum(by_stage.values()),
            "stages": stages,
            "tiers": tiers,
            "recent_jobs": recent_jobs,
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
