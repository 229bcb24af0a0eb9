"""The approval kinds the members app owns, registered with the kernel's engine
(`portal.approvals`) from `MembersConfig.ready()`. The engine has checked the decider;
each kind only applies or refuses its change."""

from __future__ import annotations

from portal.approvals import ApprovalKind, approval_kind_register

from .choices import MemberApproval
from .services import (
    tier_override_apply,
    tier_override_refuse,
    tier_scheme_activation_apply,
    tier_scheme_activation_refuse,
)

__all__ = ["TierOverrideDecision", "TierSchemeActivation"]


@approval_kind_register
class TierSchemeActivation(ApprovalKind):
    code = MemberApproval.TIER_SCHEME_ACTIVATION
    label = MemberApproval.TIER_SCHEME_ACTIVATION.label
    approve_action = "members.approve_tier_scheme"

    def apply(self, approval, target, *, actor, comment):
        tier_scheme_activation_apply(scheme=target, actor=actor, comment=comment)

    def refuse(self, approval, target, *, actor, comment):
        tier_scheme_activation_refuse(scheme=target, actor=actor, comment=comment)


@approval_kind_register
class TierOverrideDecision(ApprovalKind):
    """A manual tier for one customer, decided within the customer's branch."""

    code = MemberApproval.TIER_OVERRIDE
    label = MemberApproval.TIER_OVERRIDE.label
    approve_action = "members.approve_tier_override"
    scoped_by_branch = True

    def apply(self, approval, target, *, actor, comment):
        tier_override_apply(override=target, actor=actor, comment=comment)

    def refuse(self, approval, target, *, actor, comment):
        tier_override_refuse(override=target, actor=actor, comment=comment)
