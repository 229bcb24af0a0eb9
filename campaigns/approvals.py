"""The approval kinds the campaigns app owns, registered with the kernel's engine
(`portal.approvals`) from `CampaignsConfig.ready()`."""

from __future__ import annotations

from django.db.models import CharField, Q
from django.db.models.functions import Cast

from portal.approvals import ApprovalKind, approval_kind_register

from .choices import CampaignApproval
from .impact import campaign_change_impact, campaign_launch_impact
from .models import Campaign
from .services import campaign_launch_apply, campaign_launch_refuse
from .services.changes import campaign_change_apply

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
