"""The customer 360 page: one customer in the words of every domain — tier and why (members),
tasks and rewards (campaigns), benefits, redemptions and feedback (benefits), notes and
personal data (members) — composed here, above the domains."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

from django.shortcuts import render
from django.utils.cache import add_never_cache_headers
from django.utils.formats import number_format
from django.utils.html import escape, format_html
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _
from django.utils.translation import ngettext, pgettext
from django.views.decorators.http import require_POST

from benefits.choices import GrantStatus
from benefits.forms import BenefitFeedbackForm
from benefits.selectors import member_benefit_feedback, member_grant_list
from campaigns.choices import Measure, Recurrence
from campaigns.models import Task
from campaigns.selectors import member_completions, member_tasks
from members.choices import Channel, MemberApproval, OverrideStatus, TierMethod
from members.forms import FollowUpNoteForm, RevealForm, TierOverrideForm
from members.models import PointsEntry, Tier, TierOverride
from members.selectors import (
    TierStanding,
    member_get,
    member_monthly_stats,
    member_notes,
    member_points_entries,
    member_tier_explanation,
    member_tier_history,
    member_tier_overrides,
    member_tier_standing,
)
from members.services import member_personal_data_reveal
from portal.approvals import approval_may_decide
from portal.choices import ApprovalStatus
from portal.clock import today_in_shanghai
from portal.decorators import action_required
from portal.display import in_english, money_text, name_of
from portal.middleware import client_ip
from portal.models import ApprovalRequest
from portal.money import fen_to_decimal
from portal.paging import LIST_LIMIT, capped
from portal.periods import month_end
from portal.permissions import user_can


@action_required("members.view_members")
def member_detail_view(request, member_no: str):
    member = member_get(user=request.user, member_no=member_no)
    return _member_page(request, member)


# --- long lists ------------------------------------------------------------------------------


def grants_in_working_order(grants, *, today: date) -> list:
    """Benefits the account manager can still offer first (soonest expiry first), then the
    used and closed ones, latest first."""
    open_ = [g for g in grants if g.status == GrantStatus.GRANTED and g.expires_on >= today]
    done = [g for g in grants if g not in open_]
    return sorted(open_, key=lambda g: (g.expires_on, g.pk)) + sorted(
        done, key=lambda g: g.pk, reverse=True
    )


# --- words for what the data holds as codes -------------------------------------------------

#: a points entry written for a task reward (campaigns.services.ingest)
_TASK_SOURCE = re.compile(r"^task (?P<campaign>\S+) #(?P<task>\d+) step (?P<step>\d+)$")
_WEEK_KEY = re.compile(r"^(?P<year>\d{4})-W(?P<week>\d{2})$")
_QUARTER_KEY = re.compile(r"^(?P<year>\d{4})-Q(?P<quarter>\d)$")


def task_ids_of_sources(entries) -> set[int]:
    return {int(found["task"]) for entry in entries if (found := _TASK_SOURCE.match(entry.source))}


def points_source_text(entry: PointsEntry, tasks: dict[int, Task], *, html: bool = False) -> str:
    """Where points came from, in words: "Task “Daily sign-in” of “Double 11”, step 1",
    a manual adjustment, an expiry; a source this page does not know is shown as written.
    With `html`, the names (data, as typed) are marked not to be translated."""
    found = _TASK_SOURCE.match(entry.source)
    if found:
        task = tasks.get(int(found["task"]))
        names = {
            "task": task.name if task else "#" + found["task"],
            "campaign": task.campaign.name if task else found["campaign"],
        }
        if html:
            names = {k: format_html('<span translate="no">{}</span>', v) for k, v in names.items()}
        template = _("Task “%(task)s” of “%(campaign)s”, step %(step)s")
        values = {**names, "step": found["step"]}
        return mark_safe(escape(template) % values) if html else template % values  # noqa: S308
    if entry.source == "adjust":
        return pgettext("points source", "Manual adjustment")
    if entry.source == "expiry":
        return pgettext("points source", "Expired points")
    return entry.source


def period_text(key: str) -> str:
    """A task period's key in words: `once` → "once for the campaign", `2026-W49` → "week 49
    of 2026"; days and months read as they are (2026-11-26, 2026-11)."""
    if key == "once":
        return str(Recurrence.ONCE.label)
    if found := _WEEK_KEY.match(key):
        return _("week %(week)s of %(year)s") % {
            "week": int(found["week"]),
            "year": found["year"],
        }
    if found := _QUARTER_KEY.match(key):
        return _("Q%(quarter)s %(year)s") % {"quarter": found["quarter"], "year": found["year"]}
    return key


def task_amount_text(measure: str, value: str) -> str:
    """A task's progress or target as the measure counts it: money for sums of amounts."""
    if measure == Measure.AMOUNT_SUM:
        return money_text(Decimal(value))
    return number_format(int(Decimal(value)), force_grouping=True)


def channel_labels(codes) -> list[str]:
    return [str(Channel(code).label) for code in codes or [] if code in Channel.values]


def standing_value_text(standing: TierStanding, units: int | None) -> str:
    """A gap or a threshold of the member's scheme: money for MADA, points otherwise."""
    if units is None:
        return "—"
    if standing.method == TierMethod.MADA:
        return money_text(fen_to_decimal(units))
    return ngettext("%(points)s point", "%(points)s points", units) % {
        "points": number_format(units, force_grouping=True)
    }


# --- the 12-month MADA chart ----------------------------------------------------------------

#: geometry of the chart (SVG user units): plot area inside the margins
TREND_WIDTH, TREND_HEIGHT = 640, 220
PLOT_LEFT, PLOT_RIGHT, PLOT_TOP, PLOT_BOTTOM = 64, 628, 18, 184
TREND_BAR = 30


def month_to_date(month: date, *, as_of: date) -> bool:
    """Is the month still in progress on the data date (its last day not yet fed)?"""
    return month_end(month) >= as_of


def compact_amount(value: Decimal | int) -> str:
    """A round axis or bar label: 50万 / 1.2亿 in Chinese, 500k / 1.2M in English."""
    value = Decimal(value)
    if in_english():
        steps = ((Decimal(10**9), "B"), (Decimal(10**6), "M"), (Decimal(10**3), "k"))
    else:
        steps = ((Decimal(10**8), "亿"), (Decimal(10**4), "万"))
    for size, unit in steps:
        if abs(value) >= size:
            number = (value / size).quantize(Decimal("0.1"))
            text = number_format(number, 1, force_grouping=True)
            return (text[:-2] if text.endswith(".0") else text) + unit
    return number_format(int(value), force_grouping=True)


def _nice_step(top: Decimal) -> Decimal:
    """An axis step of 1, 2 or 5 × 10ⁿ giving four to eight gridlines up to `top`."""
    raw = top / 5
    magnitude = Decimal(10) ** (len(str(int(raw))) - 1) if raw >= 1 else Decimal(1)
    for factor in (1, 2, 5, 10):
        if raw <= magnitude * factor:
            return magnitude * factor
    return magnitude * 10


@dataclass
class TrendChart:
    """What the SVG draws: bars, y-axis ticks, threshold lines, and thresholds above it."""

    bars: list[dict] = field(default_factory=list)
    ticks: list[dict] = field(default_factory=list)
    thresholds: list[dict] = field(default_factory=list)
    above: list[dict] = field(default_factory=list)
    partial: dict | None = None
    label: str = ""


def mada_chart(stats, *, tiers: list[Tier], method: str, as_of: date) -> TrendChart:
    """The monthly average daily assets of the months shown (oldest first) on an axis with
    values, the month still in progress drawn apart as month-to-date, and the thresholds of
    a MADA scheme's tiers as lines labelled with their names."""
    chart = TrendChart()
    if not stats:
        return chart
    values = [Decimal(stat.mada or 0) for stat in stats]
    lines = [
        (tier, fen_to_decimal(tier.threshold))
        for tier in tiers
        if tier.threshold > 0 and method == TierMethod.MADA
    ]
    peak = max(values, default=Decimal(0))
    # the next threshold above the customer stays on the chart when it is near
    reachable = [amount for _tier, amount in lines if amount <= max(peak, 1) * 3]
    top = max([peak, *reachable, Decimal(1)])
    step = _nice_step(top)
    top = (top / step).to_integral_value(rounding="ROUND_CEILING") * step
    height = PLOT_BOTTOM - PLOT_TOP

    def y_of(amount: Decimal) -> float:
        return round(PLOT_BOTTOM - float(amount / top) * height, 1)

    tick = Decimal(0)
    while tick <= top:
        y = y_of(tick)
        chart.ticks.append({"y": y, "label_y": round(y + 4, 1), "text": compact_amount(tick)})
        tick += step
    for tier, amount in lines:
        y = y_of(amount)
        entry = {
            "name": name_of(tier),
            "amount": money_text(amount),
            "y": y,
            "label_y": round(y - 4, 1),
        }
        (chart.thresholds if amount <= top else chart.above).append(entry)
    slot = (PLOT_RIGHT - PLOT_LEFT) / len(stats)
    described = []
    for index, (stat, value) in enumerate(zip(stats, values, strict=True)):
        partial = month_to_date(stat.month, as_of=as_of)
        month = f"{stat.month:%Y-%m}"
        bar_y = y_of(value)
        bar = {
            "month": month,
            "value": money_text(value),
            "short": compact_amount(value),
            "x": round(PLOT_LEFT + index * slot + (slot - TREND_BAR) / 2, 1),
            "y": bar_y,
            "height": round(PLOT_BOTTOM - bar_y, 1),
            "label_x": round(PLOT_LEFT + index * slot + slot / 2, 1),
            "label_y": round(max(bar_y - 4, PLOT_TOP - 4), 1),
            "partial": partial,
        }
        if partial:
            through = min(as_of - timedelta(days=1), month_end(stat.month))
            bar["title"] = _("%(month)s, month to date (data up to %(day)s): %(value)s") % {
                "month": month,
                "day": through.isoformat(),
                "value": bar["value"],
            }
            chart.partial = {"month": month, "through": through.isoformat()}
        else:
            bar["title"] = f"{month}: {bar['value']}"
        described.append(bar["title"])
        chart.bars.append(bar)
    chart.label = "; ".join(described)
    return chart


def chart_data_date(explanation) -> date:
    """The day the chart's data runs to: the last graded business date, else today."""
    return explanation.business_date if explanation is not None else today_in_shanghai()


def _decidable(overrides, user) -> set[int]:
    """The pending manual tier requests shown that `user` may decide (the engine's rules)."""
    pending = [str(o.pk) for o in overrides if o.status == OverrideStatus.PENDING]
    if not pending or not user_can(user, "members.approve_tier_override"):
        return set()
    requests = ApprovalRequest.objects.filter(
        kind=MemberApproval.TIER_OVERRIDE,
        object_type=TierOverride._meta.label_lower,
        object_id__in=pending,
        status=ApprovalStatus.PENDING,
    )
    return {
        int(approval.object_id)
        for approval in requests
        if approval_may_decide(approval=approval, user=user)
    }


def _tasks_by_id(ids) -> dict[int, Task]:
    """The tasks a page names (the current ones, the ledger's sources), with their campaign:
    one query."""
    if not ids:
        return {}
    return {task.pk: task for task in Task.objects.filter(pk__in=ids).select_related("campaign")}


def _member_page(request, member, *, revealed=None, reveal_form=None, status: int = 200):
    """The customer page, top-down in the order an account manager works: who the customer
    is, their tier and what is missing for the next one; follow-ups; benefits to offer;
    tasks; then the history. `revealed` (full phone and ID number) only in a reveal's
    response."""
    can_request = user_can(request.user, "members.request_tier_override")
    can_reveal = user_can(request.user, "members.reveal_personal_data")
    can_write_notes = user_can(request.user, "members.write_notes")
    today = today_in_shanghai()
    stats = member_monthly_stats(member=member)
    overrides = member_tier_overrides(member=member)
    standing = member_tier_standing(member=member)
    explanation = member_tier_explanation(member=member)
    tiers = [tier for tier, _threshold in explanation.thresholds] if explanation else []
    points_entries = member_points_entries(member=member, limit=LIST_LIMIT + 1)
    tasks = member_tasks(member=member)
    known_tasks = _tasks_by_id({t["task_id"] for t in tasks} | task_ids_of_sources(points_entries))
    for task in tasks:
        measure = known_tasks[task["task_id"]].measure if task["task_id"] in known_tasks else ""
        task["campaign_name"] = (
            known_tasks[task["task_id"]].campaign.name
            if task["task_id"] in known_tasks
            else task["campaign"]
        )
        task["period_text"] = period_text(task["period_key"])
        task["progress_text"] = task_amount_text(measure, task["progress"])
        task["target_text"] = task_amount_text(measure, task["target"])
    for entry in points_entries:
        entry.source_text = points_source_text(entry, known_tasks, html=True)
    completions = member_completions(member=member, limit=LIST_LIMIT + 1)
    for completion in completions:
        completion.period_text = period_text(completion.period_key)
    override_form = TierOverrideForm() if can_request else None
    if override_form is not None:
        override_form.fields["tier"].label_from_instance = name_of
    feedback_form = (
        BenefitFeedbackForm() if user_can(request.user, "benefits.leave_feedback") else None
    )
    if feedback_form is not None and hasattr(feedback_form.fields["benefit"], "queryset"):
        feedback_form.fields["benefit"].label_from_instance = name_of
    response = render(
        request,
        "operations/customer.html",
        {
            "member": member,
            "channels": channel_labels(member.channels),
            "revealed": revealed,
            "reveal_form": (reveal_form or RevealForm()) if can_reveal else None,
            "can_opt_out": user_can(request.user, "members.record_opt_out"),
            "stats": capped("stats", list(reversed(stats))),
            "chart": mada_chart(
                stats,
                tiers=tiers,
                method=explanation.scheme.method if explanation else "",
                as_of=chart_data_date(explanation),
            ),
            "notes": capped("notes", member_notes(member=member)),
            "note_form": FollowUpNoteForm() if can_write_notes else None,
            "can_write_notes": can_write_notes,
            "feedback": capped("feedback", member_benefit_feedback(member=member)),
            "feedback_form": feedback_form,
            "standing": standing,
            "next_tier_missing": standing_value_text(standing, standing.missing),
            "next_tier_needs": standing_value_text(
                standing, standing.next_tier.threshold if standing.next_tier else None
            ),
            "keep_tier_needs": standing_value_text(
                standing, standing.tier.threshold if standing.tier else None
            ),
            "keep_tier_missing": standing_value_text(standing, standing.keep_tier_missing),
            "explanation": explanation,
            "explanation_thresholds": [
                (tier, standing_value_text(standing, threshold))
                for tier, threshold in (explanation.thresholds if explanation else [])
            ],
            "history": capped("history", member_tier_history(member=member, limit=LIST_LIMIT + 1)),
            "overrides": overrides,
            "decidable_overrides": _decidable(overrides, request.user),
            "override_form": override_form,
            "grants": capped(
                "grants", grants_in_working_order(member_grant_list(member=member), today=today)
            ),
            "today": today,
            "tasks": capped("tasks", tasks),
            "completions": capped("completions", completions),
            "points_entries": capped("points", points_entries),
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
