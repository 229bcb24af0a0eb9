"""Entitlements across a tier scheme switch: before a new scheme may be approved, each of its
tiers has a decision (`TierEntitlementDecision`): the entitlements of an old tier, its own
(set in the matrix for that scheme), or none. The approval shows the monthly cost before
and after; the effective night copies the mapped entitlements (`scheme_entitlements_map`,
called by the switch through `members.registry.SchemeSwitchPart`)."""

from __future__ import annotations

from collections import Counter
from datetime import date
from decimal import Decimal

from django.db import transaction
from django.db.models import Count
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from members.choices import SchemeStatus
from members.models import Member, Tier, TierScheme
from members.registry import SchemeSwitchPart
from portal.errors import InvalidInput, NotAllowed, StateConflict
from portal.money import fen_to_decimal, yuan_text
from portal.permissions import user_can
from portal.services import audit_record

from ..choices import EntitlementDecision
from ..models import TierEntitlement, TierEntitlementDecision
from .entitlement_changes import PERIOD_MONTHS

__all__ = [
    "SCHEME_ENTITLEMENTS",
    "scheme_entitlement_decisions",
    "scheme_entitlement_decisions_set",
    "scheme_entitlement_problems",
    "scheme_entitlements_map",
    "scheme_entitlements_monthly_cost",
]

#: the schemes whose decisions may still change
DECIDABLE = (SchemeStatus.DRAFT, SchemeStatus.PENDING)


def _old_tiers() -> list[Tier]:
    return list(Tier.objects.filter(scheme__status=SchemeStatus.ACTIVE).order_by("rank"))


def scheme_entitlement_decisions(scheme: TierScheme) -> list[dict]:
    """Each tier of `scheme`, lowest first, with its decision (None: not decided yet) and
    how many entitlements it has of its own."""
    own = Counter(
        dict(
            TierEntitlement.objects.filter(tier__scheme=scheme, quantity__gt=0)
            .values("tier_id")
            .annotate(n=Count("id"))
            .values_list("tier_id", "n")
        )
    )
    decisions = {
        d.tier_id: d
        for d in TierEntitlementDecision.objects.filter(tier__scheme=scheme).select_related(
            "source_tier"
        )
    }
    return [
        {"tier": tier, "decision": decisions.get(tier.pk), "own": own[tier.pk]}
        for tier in scheme.tiers.order_by("rank")
    ]


def scheme_entitlement_problems(scheme: TierScheme) -> list[str]:
    """The approval's refusal while a tier of the new scheme has no decision."""
    if scheme.status not in (*DECIDABLE, SchemeStatus.SCHEDULED):
        return []
    undecided = [
        row["tier"].name for row in scheme_entitlement_decisions(scheme) if not row["decision"]
    ]
    if not undecided:
        return []
    return [
        _(
            "No entitlement decision for the new tier(s) %(tiers)s: give each the "
            "entitlements of an old tier, its own, or none (Tier entitlements → decisions "
            "for %(scheme)s)."
        )
        % {"tiers": "、".join(undecided), "scheme": scheme.name}
    ]


def scheme_entitlement_decisions_set(
    *, scheme: TierScheme, decisions: dict[int, tuple[str, int | None]], actor
) -> int:
    """Record decisions {tier id: (MAP/OWN/NONE, old tier id for MAP)} for tiers of a draft
    or pending scheme; each is checked (the old tier must be of the active scheme, OWN needs
    entitlements of its own). Returns how many changed; audited."""
    if not user_can(actor, "benefits.configure_benefits"):
        raise NotAllowed(_("Your role cannot change entitlements."))
    with transaction.atomic():
        scheme = TierScheme.objects.select_for_update().get(pk=scheme.pk)
        if scheme.status not in DECIDABLE:
            raise StateConflict(
                _("The entitlements of %(scheme)s can no longer change: it is %(status)s.")
                % {"scheme": scheme.name, "status": scheme.get_status_display()}
            )
        rows = {row["tier"].pk: row for row in scheme_entitlement_decisions(scheme)}
        old = {tier.pk: tier for tier in _old_tiers()}
        changed = {}
        for tier_id, (decision, source_id) in decisions.items():
            row = rows.get(tier_id)
            if row is None:
                raise InvalidInput(_("That tier is not a tier of this scheme."), field="tier")
            tier = row["tier"]
            if decision not in EntitlementDecision.values:
                raise InvalidInput(
                    _("Choose what %(tier)s gets.") % {"tier": tier.name}, field=f"t_{tier_id}"
                )
            if decision == EntitlementDecision.MAP and source_id not in old:
                raise InvalidInput(
                    _("%(tier)s: choose a tier of the active scheme to take entitlements from.")
                    % {"tier": tier.name},
                    field=f"t_{tier_id}",
                )
            if decision == EntitlementDecision.OWN and not row["own"]:
                raise InvalidInput(
                    _(
                        "%(tier)s has no entitlements of its own yet: set them in the matrix "
                        "for this scheme, or choose another option."
                    )
                    % {"tier": tier.name},
                    field=f"t_{tier_id}",
                )
            source = source_id if decision == EntitlementDecision.MAP else None
            current = row["decision"]
            if current and (current.decision, current.source_tier_id) == (decision, source):
                continue
            TierEntitlementDecision.objects.update_or_create(
                tier_id=tier_id,
                defaults={"decision": decision, "source_tier_id": source, "decided_by": actor},
            )
            changed[tier.code] = decision + (f" {old[source].code}" if source else "")
        if changed:
            audit_record(
                actor=actor, action="tier_scheme.entitlement_decisions", obj=scheme, changes=changed
            )
    return len(changed)


def _monthly(members: int, quantity: int, period: str, unit_fen: int) -> Decimal:
    return members * fen_to_decimal(unit_fen) * quantity / PERIOD_MONTHS[period]


def _decided_sources(rows: list[dict]) -> dict[int, int]:
    """{tier id: the tier whose entitlements it gets} by the decisions in `rows`
    (`scheme_entitlement_decisions`): an old tier's for MAP, its own for OWN; a tier decided
    as none, or not yet, is left out. The cost the approval shows and the copy the switch
    makes both read it."""
    sources = {}
    for row in rows:
        decision = row["decision"]
        if decision is not None and decision.decision == EntitlementDecision.MAP:
            sources[row["tier"].pk] = decision.source_tier_id
        elif decision is not None and decision.decision == EntitlementDecision.OWN:
            sources[row["tier"].pk] = row["tier"].pk
    return sources


def _entitlement_sources(scheme: TierScheme, rows: list[dict] | None = None) -> dict[int, int]:
    """{tier id of `scheme`: the tier whose entitlements it has}: its own for the active
    scheme; what its decisions give for a scheme waiting to take effect."""
    if scheme.status == SchemeStatus.ACTIVE:
        return {tier.pk: tier.pk for tier in scheme.tiers.all()}
    return _decided_sources(rows if rows is not None else scheme_entitlement_decisions(scheme))


def scheme_entitlements_monthly_cost(
    scheme: TierScheme,
    members_by_tier: dict[int, int] | None = None,
    *,
    rows: list[dict] | None = None,
) -> Decimal:
    """What the entitlements of `scheme`'s tiers cost a month for the members holding them
    (ACTIVE members, who are granted), or for `members_by_tier` {tier id: members}; for a
    scheme waiting to take effect, the entitlements its decisions give (`rows`: its
    `scheme_entitlement_decisions`, read when not given). Members × quantity × unit cost ÷
    the period's months."""
    if members_by_tier is None:
        members_by_tier = dict(
            Member.objects.filter(status="ACTIVE", tier__scheme=scheme)
            .values("tier_id")
            .annotate(n=Count("id"))
            .values_list("tier_id", "n")
        )
    sources = _entitlement_sources(scheme, rows)
    entitlements: dict[int, list[TierEntitlement]] = {}
    for entitlement in TierEntitlement.objects.filter(
        tier_id__in=set(sources.values()), quantity__gt=0, benefit__active=True
    ).select_related("benefit"):
        entitlements.setdefault(entitlement.tier_id, []).append(entitlement)
    total = Decimal(0)
    for tier_id, from_tier in sources.items():
        for entitlement in entitlements.get(from_tier, []):
            total += _monthly(
                members_by_tier.get(tier_id, 0),
                entitlement.quantity,
                entitlement.period,
                entitlement.benefit.unit_cost_fen,
            )
    return total.quantize(Decimal("0.01"))


def _decision_text(row: dict) -> str:
    decision = row["decision"]
    if decision is None:
        return _("not decided")
    if decision.decision == EntitlementDecision.MAP:
        return _("those of %(tier)s") % {"tier": decision.source_tier.name}
    if decision.decision == EntitlementDecision.OWN:
        return _("its own (%(n)s benefit(s))") % {"n": row["own"]}
    return _("none")


def _impact(scheme: TierScheme, simulation: dict) -> list[tuple[str, str]]:
    rows = scheme_entitlement_decisions(scheme)
    sources = _entitlement_sources(scheme, rows)
    without = [row["tier"].name for row in rows if row["tier"].pk not in sources]
    active = TierScheme.objects.filter(status=SchemeStatus.ACTIVE).first()
    before = scheme_entitlements_monthly_cost(active) if active else Decimal(0)
    after = scheme_entitlements_monthly_cost(scheme, simulation["active_by_tier"], rows=rows)
    return [
        (
            _("Entitlements of the new tiers"),
            "; ".join(f"{row['tier'].name}: {_decision_text(row)}" for row in rows),
        ),
        (_("Tiers without entitlements"), "、".join(without) or _("none")),
        (
            _("Monthly entitlement cost"),
            _("%(before)s now → %(after)s under the new scheme (%(delta)s)")
            % {
                "before": yuan_text(before),
                "after": yuan_text(after),
                "delta": ("+" if after >= before else "−") + yuan_text(abs(after - before)),
            },
        ),
    ]


def scheme_entitlements_map(scheme: TierScheme, old, business_date: date) -> dict[str, int]:
    """At the switch: each new tier mapped from an old one gets a copy of that tier's
    entitlements (replacing any of its own); a tier decided as none keeps none; a tier with
    its own keeps them (`_entitlement_sources`, as the approval's cost read them). A DELETE
    and one bulk INSERT per mapped or emptied tier (a ladder has a handful)."""
    # by the decisions: the switch has already made the scheme active
    sources = _decided_sources(scheme_entitlement_decisions(scheme))
    mapped = 0
    for decision in TierEntitlementDecision.objects.filter(tier__scheme=scheme):
        source = sources.get(decision.tier_id)
        if source == decision.tier_id:
            continue  # its own
        TierEntitlement.objects.filter(tier_id=decision.tier_id).delete()
        if source is not None:
            copies = TierEntitlement.objects.bulk_create(
                TierEntitlement(
                    benefit_id=e.benefit_id,
                    tier_id=decision.tier_id,
                    quantity=e.quantity,
                    period=e.period,
                )
                for e in TierEntitlement.objects.filter(tier_id=source)
            )
            mapped += len(copies)
    return {"entitlements_mapped": mapped}


def _page(scheme: TierScheme) -> str:
    return reverse("admin:benefits_tierentitlement_decisions", args=[scheme.pk])


SCHEME_ENTITLEMENTS = SchemeSwitchPart(
    problems=scheme_entitlement_problems,
    impact=_impact,
    apply=scheme_entitlements_map,
    page=_page,
    page_label=gettext_lazy("Entitlements of the new tiers"),
)
