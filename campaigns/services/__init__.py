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
from django.utils.translation import gettext as _

from portal.approvals import approval_request_create
from portal.clock import today_in_shanghai
from portal.errors import NotAllowed, StateConflict
from portal.permissions import user_can
from portal.services import audit_record

from ..choices import CampaignApproval
from ..models import Campaign, TaskProgress
from ..rules import budget_window_problems
from ..selectors import live_tasks
from ..terms import campaign_launch_terms, status_text
from ..transitions import NIGHTLY, OPERATIONS, TRANSITIONS, Transition
from .ingest import BatchTooLarge, IngestResult, events_ingest
from .outcomes import campaign_audiences_record, campaign_outcomes_record

logger = logging.getLogger(__name__)

# --- the campaign lifecycle -------------------------------------------------------------------


class CampaignStateError(StateConflict):
    """The campaign is not in a state that allows this (the message says what is)."""

    code = "campaign_state"


def _locked_for(transition: Transition, campaign: Campaign) -> Campaign:
    """The campaign's row, locked, if it may make the move from the status it has now."""
    campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
    refusal = transition.refusal(campaign)
    if refusal:
        raise CampaignStateError(refusal)
    return campaign


def _move(campaign: Campaign, transition: Transition, *, actor, **fields) -> Campaign:
    before = campaign.status
    to = transition.leads_to(campaign, today=today_in_shanghai())
    for name, value in fields.items():
        setattr(campaign, name, value)
    campaign.status = to
    campaign.save()
    audit_record(
        actor=actor,
        action=transition.action,
        obj=campaign,
        changes={"status": [before, to]},
        reason=fields.get("decision_comment", ""),
    )
    return campaign


@transaction.atomic
def campaign_submit(*, campaign: Campaign, actor) -> Campaign:
    """A draft (or rejected) campaign with at least one task goes to approval."""
    if not user_can(actor, "campaigns.configure_campaigns"):
        raise NotAllowed(_("Your role cannot submit campaigns."))
    submit = TRANSITIONS["submit"]
    campaign = _locked_for(submit, campaign)
    problems = campaign_launch_problems(campaign=campaign)
    if problems:
        raise CampaignStateError(" ".join(problems))
    approval_request_create(
        kind=CampaignApproval.CAMPAIGN_LAUNCH,
        obj=campaign,
        summary=f"{campaign.code} {campaign.name} ({campaign.starts_on} – {campaign.ends_on})",
        current={"status": status_text(campaign.status)},
        proposal=campaign_launch_terms(campaign=campaign),
        actor=actor,
    )
    return _move(
        campaign,
        submit,
        actor=actor,
        submitted_by=actor,
        submitted_at=timezone.now(),
        decided_by=None,
        decided_at=None,
        decision_comment="",
    )


def campaign_launch_problems(*, campaign: Campaign) -> list[str]:
    """What stops a campaign from being launched, in words a product operator can act on."""
    problems = []
    tasks = list(campaign.tasks.prefetch_related("steps"))
    if not tasks:
        problems.append(_("Add at least one task."))
    if campaign.ends_on < today_in_shanghai():
        problems.append(
            _("The window ended on %(date)s; move the end date.") % {"date": campaign.ends_on}
        )
    problems.extend(
        budget_window_problems(
            budget=campaign.budget, starts_on=campaign.starts_on, ends_on=campaign.ends_on
        )
    )
    for task in tasks:
        if not (task.reward_points or task.reward_benefit_id or task.steps.all()):
            problems.append(
                _("Task “%(task)s” has no reward (points, a benefit or steps).")
                % {"task": task.name}
            )
    return problems


@transaction.atomic
def campaign_launch_apply(*, campaign: Campaign, actor, comment: str = "") -> Campaign:
    """Launch an approved campaign (called by the approval engine, which has checked the
    decider): it is scheduled, or active at once when its window has begun."""
    return _decided(campaign, TRANSITIONS["approve"], actor=actor, comment=comment)


@transaction.atomic
def campaign_launch_refuse(*, campaign: Campaign, actor, comment: str) -> Campaign:
    """A rejected launch sends the campaign back to its author as editable."""
    return _decided(campaign, TRANSITIONS["reject"], actor=actor, comment=comment)


def _decided(campaign: Campaign, transition: Transition, *, actor, comment: str) -> Campaign:
    campaign = _locked_for(transition, campaign)
    return _move(
        campaign,
        transition,
        actor=actor,
        decided_by=actor,
        decided_at=timezone.now(),
        decision_comment=comment[:255],
    )


@transaction.atomic
def campaign_operate(*, campaign: Campaign, operation: str, actor, reason: str = "") -> Campaign:
    """Pause, resume or end a launched campaign (a paused campaign counts no events)."""
    transition = OPERATIONS[operation]
    campaign = _locked_for(transition, campaign)
    _move(campaign, transition, actor=actor)
    if reason:
        audit_record(actor=actor, action=f"{transition.action}.reason", obj=campaign, reason=reason)
    return campaign


def campaign_periods_roll(*, business_date: date) -> dict:
    """Nightly: scheduled campaigns whose window has begun become active; campaigns whose
    window ended before the business date end (after the late-event grace); the audience of
    a campaign with a holdout starting the next day is recorded (`outcomes`); counts the
    task periods that closed on the day before. Idempotent for the date."""
    grace = timedelta(days=settings.CAMPAIGN_LATE_EVENT_GRACE_DAYS)
    with transaction.atomic():
        moved = {
            transition.name: Campaign.objects.filter(
                transition.due(business_date=business_date, grace=grace),
                status__in=transition.sources,
            ).update(status=transition.target, updated_at=timezone.now())
            for transition in NIGHTLY
        }
    audiences = campaign_audiences_record(business_date=business_date)
    closed = TaskProgress.objects.filter(period_end=business_date - timedelta(days=1))
    return {
        "campaigns_started": moved["start"],
        "campaigns_ended": moved["expire"],
        "audiences_recorded": audiences,
        "periods_closed": closed.count(),
        "periods_closed_completed": closed.filter(completed_at__isnull=False).count(),
    }


__all__ = [
    "BatchTooLarge",
    "IngestResult",
    "CampaignStateError",
    "campaign_launch_apply",
    "campaign_launch_terms",
    "campaign_launch_refuse",
    "campaign_operate",
    "campaign_outcomes_record",
    "campaign_periods_roll",
    "campaign_submit",
    "events_ingest",
    "live_tasks",
]
