"""The approval kinds the campaigns app owns, registered with the kernel's engine
(`portal.approvals`) from `CampaignsConfig.ready()`."""

from __future__ import annotations

from django.db.models import CharField, Q
from django.db.models.functions import Cast

from portal.approvals import ApprovalKind, approval_kind_register, approval_restated

from .choices import CampaignApproval, CampaignStatus
from .impact import (
    campaign_change_impact,
    campaign_change_summary,
    campaign_change_terms,
    campaign_launch_impact,
)
from .models import Campaign
from .services import campaign_launch_apply, campaign_launch_refuse
from .services.changes import campaign_change_apply
from .terms import campaign_launch_terms, status_text, term_label


def _terms_diff(current: dict, proposal: dict) -> list[tuple[str, object, object]]:
    """(what, now, proposed) for every value a request changes, named in the reader's words."""
    keys = list(dict.fromkeys([*proposal, *current]))
    return [
        (term_label(key), current.get(key), proposal.get(key))
        for key in keys
        if key != "changes" and current.get(key) != proposal.get(key)
    ]


def _status_restated(stored: dict) -> dict:
    """{"status": label} stored in the requester's language, in the reader's."""
    for code in CampaignStatus.values:
        said = approval_restated(stored, lambda code=code: {"status": status_text(code)})
        if said is not stored:
            return said
    return stored


__all__ = ["CampaignChange", "CampaignLaunch"]


@approval_kind_register
class CampaignLaunch(ApprovalKind):
    """A campaign's launch: decided by a budget approver who neither wrote nor submitted it."""

    code = CampaignApproval.CAMPAIGN_LAUNCH
    label = CampaignApproval.CAMPAIGN_LAUNCH.label
    approve_action = "campaigns.approve_campaign"

    def makers(self, approval, target):
        return {target.created_by_id, target.submitted_by_id} - {None}

    def made_by(self, user):
        written = Campaign.objects.filter(created_by=user).annotate(
            key=Cast("pk", output_field=CharField())
        )
        return Q(kind=self.code, object_id__in=written.values("key"))

    def apply(self, approval, target, *, actor, comment):
        campaign_launch_apply(campaign=target, actor=actor, comment=comment)

    def refuse(self, approval, target, *, actor, comment):
        campaign_launch_refuse(campaign=target, actor=actor, comment=comment)

    def impact(self, approval):
        """Audience now, members offered each task, expected completions and cost against
        the budget left, overlap with the other live campaigns (`campaigns.impact`)."""
        return campaign_launch_impact(campaign=self.target(approval))

    def diff(self, approval):
        """The launch terms in the reader's language: said again from the campaign while it
        is as it was submitted (`approval_restated`)."""
        campaign = self.target(approval)
        proposal = approval_restated(
            approval.proposal, lambda: campaign_launch_terms(campaign=campaign)
        )
        return _terms_diff(_status_restated(approval.current), proposal)


@approval_kind_register
class CampaignChange(ApprovalKind):
    """A launched campaign's task rewards, caps or budget: decided by a budget approver other
    than the proposer; nothing of it applies until then (`services.changes`)."""

    code = CampaignApproval.CAMPAIGN_CHANGE
    label = CampaignApproval.CAMPAIGN_CHANGE.label
    approve_action = "campaigns.approve_campaign"

    def apply(self, approval, target, *, actor, comment):
        campaign_change_apply(campaign=target, approval=approval, actor=actor)

    def impact(self, approval):
        """The changed values in business words and the expected cost before and after."""
        return campaign_change_impact(
            campaign=self.target(approval), changes=approval.proposal["changes"]
        )

    def summary(self, approval):
        return campaign_change_summary(
            campaign=self.target(approval), changes=approval.proposal.get("changes", [])
        )

    def diff(self, approval):
        """The budget and the changed tasks' terms in the reader's language, while the
        campaign is as the request saw it (`approval_restated`)."""
        campaign, changes = self.target(approval), approval.proposal.get("changes", [])
        stored = [
            {key: value for key, value in values.items() if key != "changes"}
            for values in (approval.current, approval.proposal)
        ]
        current, proposal = approval_restated(
            stored, lambda: list(campaign_change_terms(campaign=campaign, changes=changes))
        )
        return _terms_diff(current, proposal)
