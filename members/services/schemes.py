"""Tier schemes: a draft is proposed for activation on an effective business date and
decided through the approval engine (`members.approvals`); approved, it waits (SCHEDULED)
until the night of that date, which switches it in (`tier_scheme_switch_due`) before the
tier recompute regrades every member by it with cause SCHEME_CHANGE.

The apps above members carry their configuration across through `members.registry`
(`SchemeSwitchPart`): benefits refuses the approval while a new tier has no entitlement
decision, shows the cost before and after, and maps the entitlements that night."""

from __future__ import annotations

from datetime import date, timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from portal.approvals import approval_request_create, approval_requests_void
from portal.clock import today_in_shanghai
from portal.errors import InvalidInput, NotAllowed, StateConflict
from portal.money import fen_to_decimal, yuan_text
from portal.permissions import user_can
from portal.services import audit_record

from ..choices import (
    IndicatorKind,
    MemberApproval,
    OverrideStatus,
    SchemeStatus,
    TierChangeCause,
    TierMethod,
)
from ..models import TierOverride, TierScheme
from ..registry import SCHEME_SWITCH_PARTS
from ..selectors import tier_scheme_scheduled
from .tiers import TierRuleError

#: how far ahead an activation may be dated
SCHEME_EFFECTIVE_MAX_DAYS = 366


def tier_scheme_next_night(today: date | None = None) -> date:
    """The business date of the next night that has not run yet: the chain runs at 01:30
    for the date it starts on, so tomorrow's."""
    return (today or today_in_shanghai()) + timedelta(days=1)


def tier_scheme_effective_problems(effective_on: date | None, *, today: date) -> dict[str, str]:
    """Why `effective_on` cannot be an activation's date: a coming night, within a year."""
    first = tier_scheme_next_night(today)
    last = today + timedelta(days=SCHEME_EFFECTIVE_MAX_DAYS)
    if effective_on is None or effective_on < first or effective_on > last:
        return {
            "effective_on": _(
                "The effective date must be a coming night, from %(first)s to %(last)s."
            )
            % {"first": first.isoformat(), "last": last.isoformat()}
        }
    return {}


def _threshold_text(tier) -> str:
    if tier.scheme.method == TierMethod.MADA:
        return _("MADA %(amount)s") % {"amount": yuan_text(tier.threshold_display)}
    return _("%(points)s points") % {"points": f"{tier.threshold:,}"}


def _scheme_terms(scheme, *, effective_on: date | None = None) -> dict:
    """A scheme's rules in business words, so the checker sees what activation changes."""
    if scheme is None:
        return {}
    terms = {
        _("Scheme"): scheme.name,
        _("Method"): scheme.get_method_display(),
        _("Evaluation window"): _("%(n)s month(s)") % {"n": scheme.window_months},
        _("Downgrade after"): _("%(n)s month(s) below the tier")
        % {"n": scheme.downgrade_after_months},
        _("Tiers per downgrade"): str(scheme.max_downgrade_steps or _("no limit")),
    }
    for position, tier in enumerate(scheme.tiers.order_by("rank"), start=1):
        terms[_("Tier %(n)s") % {"n": position}] = (
            f"{tier.name} ({tier.name_en}) ≥ {_threshold_text(tier)}"
        )
    money = {
        IndicatorKind.CATEGORY_BALANCE,
        IndicatorKind.FUND_PURCHASE,
        IndicatorKind.CONSUMPTION,
        IndicatorKind.PAYROLL,
    }
    for indicator in scheme.indicators.order_by("kind", "category"):
        label = indicator.get_kind_display()
        if indicator.category:
            label += f" · {indicator.get_category_display()}"
        unit = (
            yuan_text(fen_to_decimal(indicator.per_unit))
            if indicator.kind in money
            else f"{indicator.per_unit:,}"
        )
        text = _("%(points)s points per %(unit)s") % {"points": indicator.points, "unit": unit}
        if indicator.cap is not None:
            text += _(", at most %(cap)s points") % {"cap": f"{indicator.cap:,}"}
        terms[label] = text
    if effective_on is not None:
        terms[_("Takes effect")] = _("the night of %(date)s") % {"date": effective_on.isoformat()}
    return terms


def tier_scheme_switch_problems(scheme) -> list[str]:
    """What the apps carrying their configuration across still lack (entitlement decisions
    for every new tier), in the user's language; the approval is refused while any remain."""
    return [problem for part in SCHEME_SWITCH_PARTS for problem in part.problems(scheme)]


def tier_scheme_request_activation(*, scheme, actor, effective_on: date | None = None):
    """A product operator proposes a draft scheme to take effect on the night of
    `effective_on` (default: the next night); another user decides."""
    if not user_can(actor, "members.configure_tier_schemes"):
        raise NotAllowed(_("Your role cannot propose tier schemes."))
    today = today_in_shanghai()
    effective_on = effective_on or tier_scheme_next_night(today)
    problems = tier_scheme_effective_problems(effective_on, today=today)
    if problems:
        raise InvalidInput(problems["effective_on"], field="effective_on")
    with transaction.atomic():
        scheme = TierScheme.objects.select_for_update().get(pk=scheme.pk)
        if scheme.status != SchemeStatus.DRAFT:
            raise TierRuleError(_("Only a draft scheme can be proposed for activation."))
        if not scheme.tiers.filter(threshold=0).exists():
            raise TierRuleError(_("The lowest tier must start at 0 so that every member has one."))
        scheme.status = SchemeStatus.PENDING
        scheme.effective_on = effective_on
        scheme.save(update_fields=["status", "effective_on"])
        audit_record(
            actor=actor,
            action="tier_scheme.request_activation",
            obj=scheme,
            changes={"effective_on": effective_on.isoformat()},
        )
        current = TierScheme.objects.filter(status=SchemeStatus.ACTIVE).first()
        approval_request_create(
            kind=MemberApproval.TIER_SCHEME_ACTIVATION,
            obj=scheme,
            summary=_("%(new)s replaces %(old)s from the night of %(date)s")
            % {
                "new": scheme.name,
                "old": current.name if current else _("no active scheme"),
                "date": effective_on.isoformat(),
            },
            current=_scheme_terms(current),
            proposal=_scheme_terms(scheme, effective_on=effective_on),
            actor=actor,
        )
    return scheme


def _scheme_pending(scheme: TierScheme) -> TierScheme:
    scheme = TierScheme.objects.select_for_update().get(pk=scheme.pk)
    if scheme.status != SchemeStatus.PENDING:
        raise StateConflict(_("This scheme is not waiting for a decision."))
    return scheme


@transaction.atomic
def tier_scheme_activation_apply(*, scheme: TierScheme, actor, comment: str = "") -> TierScheme:
    """Apply an approved activation (called by the approval engine): refused while a new
    tier has no entitlement decision (`tier_scheme_switch_problems`) or another scheme
    already waits for its night; otherwise the scheme waits, SCHEDULED, for the night of its
    effective date (moved to the next night if that has passed meanwhile)."""
    scheme = _scheme_pending(scheme)
    problems = tier_scheme_switch_problems(scheme)
    if problems:
        raise StateConflict(" ".join(problems), code="scheme_not_ready")
    waiting = tier_scheme_scheduled()
    if waiting is not None:
        raise StateConflict(
            _("%(scheme)s already takes effect on %(date)s; decide this one after that night.")
            % {"scheme": waiting.name, "date": waiting.effective_on.isoformat()},
            code="scheme_already_scheduled",
        )
    first = tier_scheme_next_night()
    scheme.effective_on = max(scheme.effective_on or first, first)
    scheme.status = SchemeStatus.SCHEDULED
    scheme.save(update_fields=["status", "effective_on"])
    audit_record(
        actor=actor,
        action="tier_scheme.approve",
        obj=scheme,
        changes={"effective_on": scheme.effective_on.isoformat()},
        reason=comment,
    )
    return scheme


@transaction.atomic
def tier_scheme_activation_refuse(*, scheme: TierScheme, actor, comment: str) -> TierScheme:
    """A rejected activation sends the scheme back to draft (called by the approval engine)."""
    scheme = _scheme_pending(scheme)
    scheme.status = SchemeStatus.DRAFT
    scheme.effective_on = None
    scheme.save(update_fields=["status", "effective_on"])
    audit_record(actor=actor, action="tier_scheme.reject", obj=scheme, reason=comment)
    return scheme


def _old_scheme_overrides(scheme, status: str):
    """Manual tiers (in force, or asked for) of a tier of another scheme than `scheme`: what
    the switch to it ends, and what its approval says it will end."""
    return TierOverride.objects.filter(~Q(tier__scheme=scheme), status=status)


def tier_scheme_overrides_ending(scheme) -> dict[str, int]:
    """What the switch to `scheme` ends: manual tiers in force and requests waiting that are
    for tiers of another scheme."""
    return {
        "overrides_ended": _old_scheme_overrides(scheme, OverrideStatus.ACTIVE).count(),
        "override_requests_withdrawn": _old_scheme_overrides(
            scheme, OverrideStatus.PENDING
        ).count(),
    }


def tier_scheme_switch_due(*, business_date: date) -> dict[str, int]:
    """The night of a scheduled scheme's effective date (or a later one catching up): in
    one transaction the scheme becomes ACTIVE and the old one RETIRED; manual tiers of the
    old scheme end (ENDED, cause SCHEME_CHANGE: the account managers' workbench lists them);
    requests waiting for old-scheme tiers are withdrawn with the reason; each app's part
    carries its configuration across (benefits maps entitlements). The tier recompute that
    follows regrades every member by the new scheme (cause SCHEME_CHANGE). {} when nothing
    is due; a second run of the night finds nothing to do."""
    with transaction.atomic():
        scheme = (
            TierScheme.objects.select_for_update()
            .filter(status=SchemeStatus.SCHEDULED, effective_on__lte=business_date)
            .first()
        )
        if scheme is None:
            return {}
        old = TierScheme.objects.select_for_update().filter(status=SchemeStatus.ACTIVE).first()
        if old is not None:
            old.status = SchemeStatus.RETIRED
            old.save(update_fields=["status"])
        scheme.status = SchemeStatus.ACTIVE
        scheme.activated_at = timezone.now()
        scheme.save(update_fields=["status", "activated_at"])
        ended = _old_scheme_overrides(scheme, OverrideStatus.ACTIVE).update(
            status=OverrideStatus.ENDED,
            end_cause=TierChangeCause.SCHEME_CHANGE,
            ended_on=business_date,
        )
        reason = _(
            "The tier scheme changed to %(scheme)s on %(date)s; ask again for a tier of it."
        ) % {"scheme": scheme.name, "date": business_date.isoformat()}
        waiting = _old_scheme_overrides(scheme, OverrideStatus.PENDING)
        withdrawn_ids = list(waiting.values_list("pk", flat=True))
        approval_requests_void(
            kind=MemberApproval.TIER_OVERRIDE, object_ids=withdrawn_ids, reason=reason
        )
        TierOverride.objects.filter(pk__in=withdrawn_ids).update(
            status=OverrideStatus.WITHDRAWN,
            decided_at=timezone.now(),
            decision_comment=reason[:255],
            end_cause=TierChangeCause.SCHEME_CHANGE,
            ended_on=business_date,
        )
        counts = {
            "scheme_switched": 1,
            "overrides_ended": ended,
            "override_requests_withdrawn": len(withdrawn_ids),
        }
        for part in SCHEME_SWITCH_PARTS:
            counts.update(part.apply(scheme, old, business_date))
        audit_record(
            actor=None,
            action="tier_scheme.switch",
            obj=scheme,
            changes={
                "business_date": business_date.isoformat(),
                "replaces": old.code if old else None,
                **counts,
            },
        )
    return counts
