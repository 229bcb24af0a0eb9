"""Operations pages: the workbench (home page) and the job runs of the nightly chain."""

from urllib.parse import urlencode

from django.contrib import messages
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.formats import number_format
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from django.views.decorators.http import require_POST

from benefits.selectors import expiring_grants
from members.choices import FeedKind, LifecycleStage, TierMethod
from members.selectors import (
    WORKBENCH_LISTS,
    WORKBENCH_ROWS,
    capped_count,
    followups_due,
    member_worklist,
    overrides_ended_by_scheme,
)
from members.worklists import WORK_LISTS, active_tiers
from portal.approvals import approval_inbox
from portal.choices import JobStatus, Role
from portal.clock import today_in_shanghai
from portal.decorators import action_required
from portal.display import money_text, system_or_person
from portal.errors import DomainError, form_add_domain_error
from portal.jobs import jobrun_progress_text
from portal.middleware import client_ip
from portal.models import JobRun
from portal.money import fen_to_decimal
from portal.permissions import user_can
from portal.selectors import jobrun_list

from .forms import NightlyRunForm
from .nightly import CHAIN_KIND, job_label
from .tasks import nightly_dispatch


def gap_text(method: str, gap: int) -> str:
    """What a customer still needs for the next tier: an amount of CNY for a MADA scheme
    (¥21,969.20 / CNY 21,969.20), points for a points scheme ("350 points")."""
    if method == TierMethod.MADA:
        return money_text(fen_to_decimal(gap))
    return ngettext("%(points)s point", "%(points)s points", gap) % {
        "points": number_format(gap, force_grouping=True)
    }


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
                    member.to_next_tier = gap_text(
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
    scheme_ended = list(overrides_ended_by_scheme(user=user, today=today)[:50]) if lists else []
    grants_count = capped_count(grants) if grants is not None else (0, False)
    can_notes = user_can(user, "members.write_notes")
    return render(
        request,
        "operations/home.html",
        {
            "lists": lists,
            "grants": list(grants[:WORKBENCH_ROWS]) if grants is not None else [],
            "scheme_ended": scheme_ended,
            "grants_count": grants_count[0],
            "grants_capped": grants_count[1],
            "followups": list(followups_due(user=user, today=today)[:20]) if can_notes else [],
            "can_notes": can_notes,
            "can_search": user_can(user, "members.view_members"),
            "today": today,
            "waiting_approvals": approval_inbox(user=user).count(),
            "recent_jobs": jobruns_shown(jobrun_list()[:5])
            if user.has_perm("portal.view_jobruns")
            else [],
            "stage_choices": LifecycleStage.choices,
        },
    )


#: what a job run's counts (`JobRun.counts`, keys written by the steps' services) are called
#: on the job runs page; a feed's counts ("assets_rows") are said with the feed's name
COUNT_LABELS = {
    "evaluated": gettext_lazy("members evaluated"),
    "changed": gettext_lazy("changed"),
    "upgraded": gettext_lazy("upgraded"),
    "downgraded": gettext_lazy("downgraded"),
    "first_graded": gettext_lazy("graded for the first time"),
    "overridden": gettext_lazy("on a manual tier"),
    "held_by_protection": gettext_lazy("kept by downgrade protection"),
    "credit_risk": gettext_lazy("held for credit risk"),
    "scheme_regraded": gettext_lazy("regraded by the new scheme"),
    "scheme_switched": gettext_lazy("tier schemes switched"),
    "overrides_ended": gettext_lazy("manual tiers ended"),
    "override_requests_withdrawn": gettext_lazy("manual tier requests withdrawn"),
    "entitlements_mapped": gettext_lazy("entitlements carried over"),
    "chunks": gettext_lazy("chunks"),
    "new": gettext_lazy("new"),
    "active": gettext_lazy("active"),
    "churned": gettext_lazy("churned"),
    "reactivated": gettext_lazy("reactivated"),
    "members": gettext_lazy("members"),
    "points_expired": gettext_lazy("points expired"),
    "periods_closed": gettext_lazy("task periods closed"),
    "periods_closed_completed": gettext_lazy("closed periods with completions"),
    "campaigns_started": gettext_lazy("campaigns started"),
    "campaigns_ended": gettext_lazy("campaigns ended"),
    "audiences_recorded": gettext_lazy("campaign audiences recorded (holdout)"),
    "campaigns_measured": gettext_lazy("campaigns measured against their holdout"),
    "granted": gettext_lazy("granted"),
    "not_granted_budget": gettext_lazy("not granted (budget)"),
    "entitlements_refused": gettext_lazy("entitlements refused"),
    "expired": gettext_lazy("grants expired"),
    "released_fen": gettext_lazy("budget released"),
    "raised": gettext_lazy("budget alerts raised"),
    "budgets_refused": gettext_lazy("budgets not checked"),
    "dormant": gettext_lazy("dormant"),
    "tier_moves": gettext_lazy("tier moves"),
    "campaigns": gettext_lazy("campaigns"),
    "benefits": gettext_lazy("benefits"),
    "budgets": gettext_lazy("budgets"),
    "feed_date": gettext_lazy("feed date"),
    "missing": gettext_lazy("feeds missing"),
    "rejected": gettext_lazy("feeds rejected"),
}
#: a feed's counts: "<feed>_<what>"
FEED_COUNT_LABELS = {
    "batches": gettext_lazy("%(feed)s: files"),
    "rows": gettext_lazy("%(feed)s: rows"),
    "rejected_batches": gettext_lazy("%(feed)s: files rejected"),
    "rejected_rows": gettext_lazy("%(feed)s: rows rejected"),
}


def _feed_label(code: str) -> str:
    return str(FeedKind(code).label) if code in FeedKind.values else code


def count_label(key: str) -> str:
    """A key of a run's counts as the page names it."""
    if key in COUNT_LABELS:
        return str(COUNT_LABELS[key])
    for what, label in FEED_COUNT_LABELS.items():
        feed = key.removesuffix(f"_{what}")
        if feed != key and feed in FeedKind.values:
            return str(label) % {"feed": _feed_label(feed)}
    return key


def count_value(key: str, value) -> str:
    """A count as people read it: grouped digits, money in ¥, feeds by name, "—" for none."""
    if key.endswith("_fen") and isinstance(value, int):
        return money_text(fen_to_decimal(value))
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return number_format(value, force_grouping=True)
    if isinstance(value, list):
        if not value:
            return "—"
        return "、".join(_feed_label(str(item)) for item in value)
    return str(value)


def jobrun_counts(run: JobRun) -> list[tuple[str, str]]:
    """(what, how many) of a run's counts; a chain's are its steps and how each ended."""
    if not isinstance(run.counts, dict):
        return []
    if run.kind == CHAIN_KIND:
        return [
            (job_label(kind), JobStatus(status).label if status in JobStatus.values else status)
            for kind, status in run.counts.items()
        ]
    return [(count_label(key), count_value(key, value)) for key, value in run.counts.items()]


def jobruns_shown(runs) -> list[JobRun]:
    """The runs with what the table says of them in the reader's language: the job's name,
    its counts labelled, its progress as a sentence, and who started it (or the system)."""
    shown = list(runs)
    for run in shown:
        run.job_label = job_label(run.kind)
        run.counts_shown = jobrun_counts(run)
        run.progress_text = jobrun_progress_text(run.progress, step_label=job_label)
        run.triggered_text = system_or_person(run.triggered_by)
    return shown


#: the job runs table refreshes itself this often (seconds) while a run is RUNNING…
JOBRUN_POLL_SECONDS = 3
#: …and for this many refreshes after a night was queued, until a worker takes it
JOBRUN_WAIT_POLLS = 20
#: the statuses of a run whose date the re-run button offers to run again
RERUNNABLE = (JobStatus.FAILED, JobStatus.ABANDONED)


def _jobrun_table_context(request) -> dict:
    """The job runs table of the requested page, and whether (and from where) it refreshes
    itself: while a run is RUNNING, or for a while after a night was queued."""
    page = Paginator(jobrun_list(), 50).get_page(request.GET.get("page"))
    try:
        waiting = min(max(int(request.GET.get("waiting", 0)), 0), JOBRUN_WAIT_POLLS)
    except ValueError:
        waiting = 0
    running = JobRun.objects.filter(status=JobStatus.RUNNING).exists()
    poll_url = None
    if running or waiting:
        query = urlencode({"page": page.number, "waiting": max(waiting - 1, 0)})
        poll_url = f"{reverse('jobruns-table')}?{query}"
    return {
        "page": page,
        "runs": jobruns_shown(page.object_list),
        "can_rerun": user_can(request.user, "portal.rerun_job"),
        "rerunnable": RERUNNABLE,
        "poll_url": poll_url,
        "poll_seconds": JOBRUN_POLL_SECONDS,
        "waiting": bool(waiting),
    }


def _jobruns_after_dispatch(queued: bool):
    """Back to the job runs page; a queued night is watched until a worker takes it."""
    url = reverse("jobruns")
    return redirect(f"{url}?waiting={JOBRUN_WAIT_POLLS}" if queued else url)


def _dispatched_message(request, business_date, queued: bool) -> None:
    day = business_date.isoformat()
    if queued:
        text = _(
            "The nightly chain for %(date)s was sent to the task queue; its runs appear below "
            "as a worker takes it."
        )
    else:
        text = _("The nightly chain for %(date)s ran in this process; its runs appear below.")
    messages.success(request, text % {"date": day})


@action_required("portal.view_jobruns")
def jobrun_list_view(request):
    context = _jobrun_table_context(request)
    if context["can_rerun"]:
        context["run_form"] = NightlyRunForm(initial={"business_date": today_in_shanghai()})
    return render(request, "operations/jobrun_list.html", context)


@action_required("portal.view_jobruns")
def jobrun_table_view(request):
    """The job runs table alone: what the jobs page's table refreshes itself from (htmx)."""
    return render(request, "operations/jobrun_table.html", _jobrun_table_context(request))


@require_POST
@action_required("portal.rerun_job")
def jobrun_rerun_view(request, pk: int):
    """Run the nightly chain again for the business date of a failed or abandoned run
    (idempotent per date); refused while a night of that date is alive."""
    run = get_object_or_404(JobRun, pk=pk)
    if run.status not in RERUNNABLE:
        messages.error(
            request,
            _(
                "Run #%(id)s is %(status)s: only a failed or abandoned run offers a re-run. "
                "To run its date again anyway, use “Run the nightly chain” with %(date)s."
            )
            % {
                "id": run.pk,
                "status": run.get_status_display(),
                "date": run.business_date.isoformat(),
            },
        )
        return redirect("jobruns")
    try:
        queued = nightly_dispatch(run.business_date, actor=request.user, ip=client_ip(request))
    except DomainError as error:  # a live night of the date, or no broker: say what to do
        messages.error(request, error.message)
        return redirect("jobruns")
    _dispatched_message(request, run.business_date, queued)
    return _jobruns_after_dispatch(queued)


@require_POST
@action_required("portal.rerun_job")
def jobrun_run_date_view(request):
    """Run the nightly chain for a business date an administrator chooses (NightlyRunForm's
    bounds); refused while a night of that date is alive or when the broker is down."""
    form = NightlyRunForm(request.POST)
    if form.is_valid():
        day = form.cleaned_data["business_date"]
        try:
            queued = nightly_dispatch(day, actor=request.user, ip=client_ip(request))
        except DomainError as error:
            form_add_domain_error(form, error)
        else:
            _dispatched_message(request, day, queued)
            return _jobruns_after_dispatch(queued)
    context = _jobrun_table_context(request)
    context["run_form"] = form
    return render(request, "operations/jobrun_list.html", context)
