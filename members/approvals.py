"""The approval kinds the members app owns, registered with the kernel's engine
(`portal.approvals`) from `MembersConfig.ready()`. The engine has checked the decider;
each kind only applies or refuses its change."""

from __future__ import annotations

from django.db.models import CharField, Q
from django.db.models.functions import Cast
from django.urls import reverse
from django.utils.formats import number_format
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from portal.approvals import ApprovalKind, approval_kind_register, approval_restated
from portal.display import money_text, name_of, person_name
from portal.masking import mask_name
from portal.money import fen_to_decimal

from .choices import MemberApproval, SchemeStatus, TierMethod
from .models import Member, Tier, TierOverride, TierScheme
from .registry import SCHEME_SWITCH_PARTS
from .selectors import member_scope
from .services import (
    tier_override_apply,
    tier_override_refuse,
    tier_override_replaces,
    tier_override_withdrawn,
    tier_scheme_activation_apply,
    tier_scheme_activation_refuse,
    tier_scheme_next_night,
    tier_scheme_overrides_ending,
    tier_scheme_switch_problems,
    tier_simulate,
)
from .services.schemes import _scheme_terms

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

    def impact(self, approval):
        """What the effective night will do, from the simulation the recompute runs that
        night (`tier_simulate`, which grades as the recompute does): members up, down and
        unchanged, the migration matrix, members per new tier, the manual tiers that end,
        and each app's part (benefits: entitlement decisions and monthly cost), with what
        still stops the approval."""
        scheme = self.target(approval)
        effective_on = scheme.effective_on or tier_scheme_next_night()
        result = tier_simulate(scheme=scheme, business_date=effective_on)
        new_names = {tier.code: name_of(tier) for tier in scheme.tiers.all()}
        old_names = {
            tier.code: name_of(tier)
            for tier in Tier.objects.filter(scheme__status=SchemeStatus.ACTIVE)
        }
        moves = result["moves"]
        count = lambda n: number_format(n, force_grouping=True)  # noqa: E731
        lines = [
            (_("Takes effect"), _("the night of %(date)s") % {"date": effective_on.isoformat()}),
            (
                _("Members moving (by each tier's place in its ladder)"),
                _(
                    "%(up)s up, %(down)s down, %(same)s at the same level, %(first)s graded for "
                    "the first time"
                )
                % {
                    "up": count(moves["up"]),
                    "down": count(moves["down"]),
                    "same": count(moves["unchanged"]),
                    "first": count(moves["first"]),
                },
            ),
        ]
        for old_code, row in result["matrix"].items():
            old_name = old_names.get(old_code) or _("no tier")
            lines.append(
                (
                    _("From %(tier)s") % {"tier": old_name},
                    "、".join(f"{new_names[new]} {count(n)}" for new, n in row.items() if n),
                )
            )
        lines.append(
            (
                _("Members per new tier"),
                "、".join(
                    f"{new_names[code]} {count(n)}" for code, n in result["distribution"].items()
                ),
            )
        )
        ending = tier_scheme_overrides_ending(scheme)
        lines.append(
            (
                _("Manual tiers that end"),
                _("%(ended)s in force end that night; %(waiting)s request(s) waiting are withdrawn")
                % {
                    "ended": count(ending["overrides_ended"]),
                    "waiting": count(ending["override_requests_withdrawn"]),
                },
            )
        )
        for part in SCHEME_SWITCH_PARTS:
            lines += part.impact(scheme, result)
        problems = tier_scheme_switch_problems(scheme)
        if problems:
            lines.append((_("Cannot be approved yet"), " ".join(problems)))
        return lines

    def _active_other(self, scheme):
        return TierScheme.objects.filter(status=SchemeStatus.ACTIVE).exclude(pk=scheme.pk).first()

    def summary(self, approval):
        scheme = self.target(approval)
        active = self._active_other(scheme)
        return approval_restated(
            approval.summary,
            lambda: (
                _("%(new)s replaces %(old)s from the night of %(date)s")
                % {
                    "new": scheme.name,
                    "old": active.name if active else _("no active scheme"),
                    "date": scheme.effective_on.isoformat() if scheme.effective_on else "—",
                }
            ),
        )

    def diff(self, approval):
        """The rules of the scheme in force and of the proposed one, in the reader's words
        while both are as the request saw them (`approval_restated`)."""
        scheme = self.target(approval)
        active = self._active_other(scheme)
        current = approval_restated(approval.current, lambda: _scheme_terms(active))
        proposal = approval_restated(
            approval.proposal, lambda: _scheme_terms(scheme, effective_on=scheme.effective_on)
        )
        keys = list(dict.fromkeys([*proposal, *current]))
        return [
            (key, current.get(key), proposal.get(key))
            for key in keys
            if current.get(key) != proposal.get(key)
        ]

    def links(self, approval):
        """The simulation behind the impact, and each app's decisions for the new tiers."""
        scheme = self.target(approval)
        return [
            (_("Simulation"), reverse("members:scheme-simulate", kwargs={"pk": scheme.pk})),
            *(
                (str(part.page_label), part.page(scheme))
                for part in SCHEME_SWITCH_PARTS
                if part.page
            ),
        ]


@approval_kind_register
class TierOverrideDecision(ApprovalKind):
    """A manual tier for one customer, decided by a branch manager whose scope holds the
    customer as the customer is now (a customer who moved branch goes with their request)."""

    code = MemberApproval.TIER_OVERRIDE
    label = MemberApproval.TIER_OVERRIDE.label
    approve_action = "members.approve_tier_override"
    summary_related = ("tier", "member")

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

    def withdraw(self, approval, target, *, actor, reason):
        tier_override_withdrawn(override=target, actor=actor, reason=reason)

    def impact(self, approval):
        """The customer (masked), the tier the rules give against the one asked for, the
        basis against both thresholds, and the manual tier this one would end."""
        override = self.target(approval)
        member = Member.objects.select_related("tier__scheme", "computed_tier").get(
            pk=override.member_id
        )
        computed = member.computed_tier or member.tier
        method = override.tier.scheme.method

        def measure(value) -> str:
            if value is None:
                return "—"
            if method == TierMethod.MADA:  # an amount of CNY
                return money_text(fen_to_decimal(value))
            return ngettext("%(points)s point", "%(points)s points", value) % {
                "points": number_format(value, force_grouping=True)
            }

        lines = [
            (_("Customer"), f"{member.member_no} {mask_name(member.name)}"),
            (_("Tier by the rules"), name_of(computed) if computed else "—"),
            (_("Tier asked for"), name_of(override.tier)),
            (_("Basis (latest month)"), measure(member.tier_basis)),
            (_("Threshold of the tier asked for"), measure(override.tier.threshold)),
        ]
        if computed is not None:
            lines.append((_("Threshold of the tier by the rules"), measure(computed.threshold)))
        lines.append((_("Until"), override.expires_on.isoformat()))
        replaced = tier_override_replaces(override)
        lines.append(
            (
                _("Replaces"),
                _("the manual tier %(tier)s until %(date)s, approved by %(who)s")
                % {
                    "tier": name_of(replaced.tier),
                    "date": replaced.expires_on.isoformat(),
                    "who": person_name(replaced.decided_by),
                }
                if replaced
                else _("no manual tier in force"),
            )
        )
        return lines

    def summary(self, approval):
        override = self.target(approval)
        return _("%(member)s: %(tier)s until %(date)s") % {
            "member": override.member.member_no,
            "tier": name_of(override.tier),
            "date": override.expires_on.isoformat(),
        }

    def diff(self, approval):
        """The tier now and asked for by name in the reader's language, and until when."""
        override = self.target(approval)
        stored = approval.current.get("tier")
        now = (
            Tier.objects.filter(scheme=override.tier.scheme, name=stored).first()
            if stored
            else None
        )
        return [
            (_("Tier"), name_of(now) if now else stored, name_of(override.tier)),
            (_("Until"), None, override.expires_on.isoformat()),
        ]
