"""The campaign lifecycle: each move of a campaign's status a small class chosen from a map, so
which status may go where is written once (the services, the nightly roll and the admin's
workflow buttons all read it here).

    DRAFT, REJECTED ──submit──▶ PENDING_APPROVAL ──approve──▶ SCHEDULED, or ACTIVE in the window
    PENDING_APPROVAL ──reject──▶ REJECTED ──reopen (an edit)──▶ DRAFT
    SCHEDULED ──start (nightly, the window has begun)──▶ ACTIVE
    SCHEDULED, ACTIVE ──pause──▶ PAUSED ──resume──▶ ACTIVE, or SCHEDULED before the window
    SCHEDULED, ACTIVE, PAUSED ──end, or expire (nightly, after the window and grace)──▶ ENDED

A transition only says where a campaign may go and how the move is recorded; who may make it
is the permission matrix's and the approval engine's to check, the row lock and the write
the services'.
"""

from __future__ import annotations

from datetime import date, timedelta

from django.db.models import Q
from django.utils.translation import gettext as _
from django.utils.translation import pgettext_lazy

from .choices import EDITABLE_STATUSES, CampaignStatus
from .models import Campaign

__all__ = ["NIGHTLY", "OPERATIONS", "TRANSITIONS", "Transition"]


def _window_begun(campaign: Campaign, *, today: date) -> bool:
    return campaign.starts_on <= today


class Transition:
    """From any of `sources` to `target` (or where `leads_to` says for the campaign), recorded
    in the audit trail as `action`. The nightly moves are set-based: their target is fixed and
    `due` says, as a query condition, which campaigns the night moves."""

    name: str
    #: the move in words, for a refusal ("cannot be paused")
    verb: str
    sources: tuple[str, ...]
    target: str
    #: None: a set-based nightly move, counted by its job run rather than audited row by row
    action: str | None

    def leads_to(self, campaign: Campaign, *, today: date) -> str:
        """The status this campaign goes to (it may depend on its window and the date)."""
        return self.target

    def may_start(self, status: str) -> bool:
        return status in self.sources

    def refusal(self, campaign: Campaign) -> str | None:
        """Why the campaign cannot make this move from its status (None: it can)."""
        if self.may_start(campaign.status):
            return None
        return self._refused() % {"code": campaign.code, "status": campaign.get_status_display()}

    def _refused(self) -> str:
        return _("Campaign %(code)s is %(status)s; it cannot %(move)s.").replace(
            "%(move)s", str(self.verb)
        )


class Submit(Transition):
    """A draft (or rejected) campaign goes to approval."""

    name = "submit"
    verb = pgettext_lazy("campaign move", "be submitted")
    sources = EDITABLE_STATUSES
    target = CampaignStatus.PENDING_APPROVAL
    action = "campaign.submit"

    def _refused(self) -> str:
        return _("Campaign %(code)s is %(status)s; only a draft can be submitted.")


class _LaunchDecision(Transition):
    sources = (CampaignStatus.PENDING_APPROVAL,)

    def _refused(self) -> str:
        return _("Campaign %(code)s is %(status)s, not pending approval.")


class Approve(_LaunchDecision):
    """An approved launch: scheduled, or active at once when the window has begun."""

    name = "approve"
    verb = pgettext_lazy("campaign move", "be approved")
    target = CampaignStatus.SCHEDULED
    action = "campaign.approve"

    def leads_to(self, campaign: Campaign, *, today: date) -> str:
        return CampaignStatus.ACTIVE if _window_begun(campaign, today=today) else self.target


class Reject(_LaunchDecision):
    """A rejected launch goes back to its author as editable."""

    name = "reject"
    verb = pgettext_lazy("campaign move", "be rejected")
    target = CampaignStatus.REJECTED
    action = "campaign.reject"


class Reopen(Transition):
    """Editing a rejected campaign (or its tasks) makes it a draft again."""

    name = "reopen"
    verb = pgettext_lazy("campaign move", "be reopened")
    sources = (CampaignStatus.REJECTED,)
    target = CampaignStatus.DRAFT
    action = "campaign.reopen"


class Pause(Transition):
    """A launched campaign that has not ended stops counting events."""

    name = "pause"
    verb = pgettext_lazy("campaign move", "be paused")
    sources = (CampaignStatus.ACTIVE, CampaignStatus.SCHEDULED)
    target = CampaignStatus.PAUSED
    action = "campaign.pause"


class Resume(Transition):
    """A paused campaign counts events again, or waits for its window if it has not begun."""

    name = "resume"
    verb = pgettext_lazy("campaign move", "be resumed")
    sources = (CampaignStatus.PAUSED,)
    target = CampaignStatus.ACTIVE
    action = "campaign.resume"

    def leads_to(self, campaign: Campaign, *, today: date) -> str:
        return self.target if _window_begun(campaign, today=today) else CampaignStatus.SCHEDULED


class End(Transition):
    """A launched campaign ends for good."""

    name = "end"
    verb = pgettext_lazy("campaign move", "be ended")
    sources = (CampaignStatus.ACTIVE, CampaignStatus.SCHEDULED, CampaignStatus.PAUSED)
    target = CampaignStatus.ENDED
    action = "campaign.end"


class Start(Transition):
    """Nightly: a scheduled campaign whose window has begun becomes active."""

    name = "start"
    verb = pgettext_lazy("campaign move", "start")
    sources = (CampaignStatus.SCHEDULED,)
    target = CampaignStatus.ACTIVE
    action = None

    def due(self, *, business_date: date, grace: timedelta) -> Q:
        """The campaigns the night of `business_date` moves, as a query condition."""
        return Q(starts_on__lte=business_date)


class Expire(End):
    """Nightly: a launched campaign whose window ended before the business date, after the
    late-event grace, ends."""

    name = "expire"
    verb = pgettext_lazy("campaign move", "expire")
    action = None

    def due(self, *, business_date: date, grace: timedelta) -> Q:
        return Q(ends_on__lt=business_date - grace)


#: the moves the nightly roll makes, in this order (set-based, `campaign_periods_roll`)
NIGHTLY: tuple[Start | Expire, ...] = (Start(), Expire())

TRANSITIONS: dict[str, Transition] = {
    transition.name: transition
    for transition in (Submit(), Approve(), Reject(), Reopen(), Pause(), Resume(), End(), *NIGHTLY)
}

#: the moves an operator makes on a launched campaign (`campaign_operate`)
OPERATIONS: dict[str, Transition] = {name: TRANSITIONS[name] for name in ("pause", "resume", "end")}
