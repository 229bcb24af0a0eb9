"""Portal pages: home and job runs."""

from django.core.paginator import Paginator
from django.db.models import Count
from django.shortcuts import render

from members.choices import LifecycleStage
from members.models import Tier
from members.selectors import member_scope

from .decorators import action_required
from .selectors import jobrun_list


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
    return render(request, "portal/jobrun_list.html", {"page": page})
