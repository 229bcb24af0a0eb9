"""Tier schemes: a draft is proposed for activation and decided through the approval engine
(`members.approvals`)."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from portal.approvals import approval_request_create
from portal.errors import NotAllowed, StateConflict
from portal.permissions import user_can
from portal.services import audit_record

from ..choices import MemberApproval, SchemeStatus
from ..models import TierScheme
from .tiers import TierRuleError


def _scheme_terms(scheme) -> dict:
    """A scheme's rules as flat text fields, so the checker sees what activation changes."""
    if scheme is None:
        return {}
    terms = {
        "scheme": f"{scheme.code} {scheme.name}",
        "method": scheme.method,
        "window_months": scheme.window_months,
        "downgrade_after_months": scheme.downgrade_after_months,
        "max_downgrade_steps": scheme.max_downgrade_steps,
    }
    for tier in scheme.tiers.order_by("rank"):
        unit = " CNY MADA" if scheme.method == "MADA" else " points"
        terms[f"tier {tier.rank}"] = f"{tier.code} {tier.name} ≥ {tier.threshold_display}{unit}"
    for indicator in scheme.indicators.order_by("kind", "category"):
        terms[f"indicator {indicator.kind} {indicator.category}".strip()] = (
            f"{indicator.points} per {indicator.per_unit}, cap {indicator.cap}"
        )
    return terms


def tier_scheme_request_activation(*, scheme, actor):
    """A product operator proposes a draft scheme for activation; another user decides."""
    if not user_can(actor, "members.configure_tier_schemes"):
        raise NotAllowed("Your role cannot propose tier schemes.")
    with transaction.atomic():
        scheme = TierScheme.objects.select_for_update().get(pk=scheme.pk)
        if scheme.status != SchemeStatus.DRAFT:
            raise TierRuleError("Only a draft scheme can be proposed for activation.")
        if not scheme.tiers.filter(threshold=0).exists():
            raise TierRuleError("The lowest tier must start at 0 so that every member has one.")
        scheme.status = SchemeStatus.PENDING
        scheme.save(update_fields=["status"])
        audit_record(actor=actor, action="tier_scheme.request_activation", obj=scheme)
        current = TierScheme.objects.filter(status=SchemeStatus.ACTIVE).first()
        approval_request_create(
            kind=MemberApproval.TIER_SCHEME_ACTIVATION,
            obj=scheme,
            summary=f"{scheme.code} {scheme.name} replaces "
            + (current.code if current else "no active scheme"),
            current=_scheme_terms(current),
            proposal=_scheme_terms(scheme),
            actor=actor,
        )
    return scheme


def _scheme_pending(scheme: TierScheme) -> TierScheme:
    scheme = TierScheme.objects.select_for_update().get(pk=scheme.pk)
    if scheme.status != SchemeStatus.PENDING:
        raise StateConflict("This scheme is not waiting for a decision.")
    return scheme


@transaction.atomic
def tier_scheme_activation_apply(*, scheme: TierScheme, actor, comment: str = "") -> TierScheme:
    """Apply an approved activation (called by the approval engine): the scheme becomes the
    one ACTIVE scheme; members are regraded by it at the next recompute, as a
    SCHEME_CHANGE."""
    scheme = _scheme_pending(scheme)
    TierScheme.objects.filter(status=SchemeStatus.ACTIVE).update(status=SchemeStatus.RETIRED)
    scheme.status = SchemeStatus.ACTIVE
    scheme.activated_at = timezone.now()
    scheme.save(update_fields=["status", "activated_at"])
    audit_record(actor=actor, action="tier_scheme.approve", obj=scheme, reason=comment)
    return scheme


@transaction.atomic
def tier_scheme_activation_refuse(*, scheme: TierScheme, actor, comment: str) -> TierScheme:
    """A rejected activation sends the scheme back to draft (called by the approval engine)."""
    scheme = _scheme_pending(scheme)
    scheme.status = SchemeStatus.DRAFT
    scheme.save(update_fields=["status"])
    audit_record(actor=actor, action="tier_scheme.reject", obj=scheme, reason=comment)
    return scheme
