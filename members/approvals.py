"""The approval kinds the members app owns, registered with the kernel's engine
(`portal.approvals`) from `MembersConfig.ready()`. The engine has checked the decider;
each kind only applies or refuses its change."""

from __future__ import annotations

from django.db.models import CharField, Q
from django.db.models.functions import Cast

from portal.approvals import ApprovalKind, approval_kind_register

from .choices import MemberApproval
from .models import TierOverride
from .selectors import member_scope
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
    """A manual tier for one customer, decided by a branch manager whose scope holds the
    customer as the customer is now (a customer who moved branch goes with their request)."""

    code = MemberApproval.TIER_OVERRIDE
    label = MemberApproval.TIER_OVERRIDE.label
    approve_action = "members.approve_tier_override"

    def scope(self, user):
        condition = super().scope(user)
        if condition is None or user.is_superuser:
            return condition
        overrides = TierOverride.objects.filter(member__in=member_scope(user=user)).annotate(
            key=Cast("pk", output_field=CharField())
        )
        return condition & Q(object_id__in=overrides.values("key"))

    def apply(self, approval, target, *, actor, comment):
        tier_override_apply(override=target, actor=actor, comment=comment)

    def refuse(self, approval, target, *, actor, comment):
        tier_override_refuse(override=target, actor=actor, comment=comment)
