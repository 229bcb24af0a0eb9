"""Writes of the campaigns app: the campaign lifecycle (maker-checker launch) and the nightly
period roll-over here; member event ingestion with task progress and rewards in `ingest`;
configuration of campaigns, tasks and segments in `config`.
"""

from __future__ import annotations

import logging
from datetime import date, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from portal.approvals import approval_request_create
from portal.clock import today_in_shanghai
from portal.errors import StateConflict
from portal.services import audit_record

from ..choices import EDITABLE_STATUSES, CampaignApproval, CampaignStatus
from ..models import Campaign, TaskProgress
from ..selectors import live_tasks
from .ingest import BatchTooLarge, IngestResult, events_ingest

logger = logging.getLogger(__name__)

# --- the campaign lifecycle -------------------------------------------------------------------


class CampaignStateError(StateConflict):
    """The campaign is not in a state that allows this (the message says what is)."""

    code = "campaign_state"


def _transition(campaign: Campaign, *, to: str, actor, action: str, **fields) -> Campaign:
    before = campaign.status
    for name, value in fields.items():
        setattr(campaign, name, value)
    campaign.status = to
    campaign.save()
    audit_record(
        actor=actor,
        action=action,
        obj=campaign,
        changes={"status": [before, to]},
        reason=fields.get("decision_comment", ""),
    )
    return campaign


@transaction.atomic
def campaign_submit(*, campaign: Campaign, actor) -> Campaign:
    """A draft (or rejected) campaign with at least one task goes to approval."""
    campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
    if campaign.status not in EDITABLE_STATUSES:
        raise CampaignStateError(
            f"Campaign {campaign.code} is {campaign.get_status_display()}; only a draft can be "
            "submitted."
        )
    problems = campaign_launch_problems(campaign=campaign)
    if problems:
        raise CampaignStateError(" ".join(problems))
    approval_request_create(
        kind=CampaignApproval.CAMPAIGN_LAUNCH,
        obj=campaign,
        summary=f"{campaign.code} {campaign.name} ({campaign.starts_on} – {campaign.ends_on})",
        current={"status": campaign.status},
        proposal=campaign_launch_terms(campaign=campaign),
        actor=actor,
    )
    return _transition(
        campaign,
        to=CampaignStatus.PENDING_APPROVAL,
        actor=actor,
        action="campaign.submit",
        submitted_by=actor,
        submitted_at=timezone.now(),
        decided_by=None,
        decided_at=None,
        decision_comment="",
    )


def campaign_launch_terms(*, campaign: Campaign) -> dict:
    """What the checker approves: the window, budget, targeting and every task's rule and
    reward, as flat text fields."""
    terms = {
        "status": "SCHEDULED / ACTIVE",
        "window": f"{campaign.starts_on} – {campaign.ends_on}",
        "budget": campaign.budget.code if campaign.budget_id else None,
        "target tiers": ", ".join(t.code for t in campaign.target_tiers.all()) or "all",
        "target stages": ", ".join(campaign.target_stages or []) or "all",
        "segments": ", ".join(s.code for s in campaign.segments.all()) or "none",
    }
    for number, task in enumerate(campaign.tasks.prefetch_related("steps").order_by("id"), 1):
        reward = []
        if task.reward_points:
            reward.append(f"{task.reward_points} points")
        if task.reward_benefit_id:
            reward.append(f"benefit #{task.reward_benefit_id}")
        steps = "; ".join(f"≥{step.target}" for step in task.steps.all())
        terms[f"task {number}"] = (
            f"{task.name}: {task.event_type} {task.measure} ≥ {task.target} "
            f"{task.recurrence}{' steps ' + steps if steps else ''} → "
            f"{', '.join(reward) or 'step rewards'}"
        )
    return terms


def campaign_launch_problems(*, campaign: Campaign) -> list[str]:
    """What stops a campaign from being launched, in words a product operator can act on."""
    problems = []
    tasks = list(campaign.tasks.prefetch_related("steps"))
    if not tasks:
        problems.append("Add at least one task.")
    if campaign.ends_on < today_in_shanghai():
        problems.append(f"The window ended on {campaign.ends_on}; move the end date.")
    for task in tasks:
        if not (task.reward_points or task.reward_benefit_id or task.steps.all()):
            problems.append(f"Task “{task.name}” has no reward (points, a benefit or steps).")
    return problems


def _pending_launch(campaign: Campaign) -> Campaign:
    campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
    if campaign.status != CampaignStatus.PENDING_APPROVAL:
        raise CampaignStateError(
            f"Campaign {campaign.code} is {campaign.get_status_display()}, not pending approval."
        )
    return campaign


def campaign_launch_apply(*, campaign: Campaign, actor, comment: str = "") -> Campaign:
    """Launch an approved campaign (called by the approval engine, which has checked the
    decider): it is scheduled, or active at once when its window has begun."""
    campaign = _pending_launch(campaign)
    to = (
        CampaignStatus.ACTIVE
        if campaign.starts_on <= today_in_shanghai()
        else CampaignStatus.SCHEDULED
    )
    return _decided(campaign, to=to, actor=actor, action="campaign.approve", comment=comment)


def campaign_launch_refuse(*, campaign: Campaign, actor, comment: str) -> Campaign:
    """A rejected launch sends the campaign back to its author as editable."""
    campaign = _pending_launch(campaign)
    return _decided(
        campaign, to=CampaignStatus.REJECTED, actor=actor, action="campaign.reject", comment=comment
    )


def _decided(campaign: Campaign, *, to: str, actor, action: str, comment: str) -> Campaign:
    return _transition(
        campaign,
        to=to,
        actor=actor,
        action=action,
        decided_by=actor,
        decided_at=timezone.now(),
        decision_comment=comment[:255],
    )


_OPERATIONS = {
    "pause": ((CampaignStatus.ACTIVE, CampaignStatus.SCHEDULED), CampaignStatus.PAUSED),
    "resume": ((CampaignStatus.PAUSED,), CampaignStatus.ACTIVE),
    "end": ((CampaignStatus.ACTIVE, CampaignStatus.SCHEDULED, CampaignStatus.PAUSED),
            CampaignStatus.ENDED),
}  # fmt: skip


@transaction.atomic
def campaign_operate(*, campaign: Campaign, operation: str, actor, reason: str = "") -> Campaign:
    """Pause, resume or end a launched campaign (a paused campaign counts no events)."""
    allowed_from, to = _OPERATIONS[operation]
    campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
    if campaign.status not in allowed_from:
        raise CampaignStateError(
            f"Campaign {campaign.code} is {campaign.get_status_display()}; it cannot {operation}."
        )
    if operation == "resume" and campaign.starts_on > today_in_shanghai():
        to = CampaignStatus.SCHEDULED
    _transition(campaign, to=to, actor=actor, action=f"campaign.{operation}")
    if reason:
        audit_record(
            actor=actor, action=f"campaign.{operation}.reason", obj=campaign, reason=reason
        )
    return campaign


def campaign_periods_roll(*, business_date: date) -> dict:
    """Nightly: scheduled campaigns whose window has begun become active; campaigns whose
    window ended before the business date end (after the late-event grace); counts the task
    periods that closed on the day before. Idempotent for the date."""
    grace = timedelta(days=settings.CAMPAIGN_LATE_EVENT_GRACE_DAYS)
    with transaction.atomic():
        started = Campaign.objects.filter(
            status=CampaignStatus.SCHEDULED, starts_on__lte=business_date
        ).update(status=CampaignStatus.ACTIVE, updated_at=timezone.now())
        ended = Campaign.objects.filter(
            status__in=[CampaignStatus.ACTIVE, CampaignStatus.PAUSED, CampaignStatus.SCHEDULED],
            ends_on__lt=business_date - grace,
        ).update(status=CampaignStatus.ENDED, updated_at=timezone.now())
    closed = TaskProgress.objects.filter(period_end=business_date - timedelta(days=1))
    return {
        "campaigns_started": started,
        "campaigns_ended": ended,
        "periods_closed": closed.count(),
        "periods_closed_completed": closed.filter(completed_at__isnull=False).count(),
    }


__all__ = [
    "BatchTooLarge",
    "IngestResult",
    "CampaignStateError",
    "campaign_launch_apply",
    "campaign_launch_refuse",
    "campaign_operate",
    "campaign_periods_roll",
    "campaign_submit",
    "events_ingest",
    "live_tasks",
]
