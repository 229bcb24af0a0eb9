"""Benefit catalogue, tier entitlements, budgets that can never overspend, and grants."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pghistory
from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

from members.models import Member, Tier
from portal.models import Department, audit_trail
from portal.money import fen_to_decimal

from .choices import (
    BenefitCategory,
    BudgetEntryKind,
    EntitlementDecision,
    EntitlementPeriod,
    GrantSource,
    GrantStatus,
    RequestStatus,
)


# Not what is consumed: that moves with every grant and reward, and every movement is a
# BudgetEntry already.
@audit_trail(exclude=["consumed_fen"])
class Budget(models.Model):
    """Money a department may spend on benefits in a period. `consumed_fen` only moves by
    one conditional UPDATE (never read-then-write) and a CHECK keeps it within the amount;
    a child budget also consumes its parent, whose amount bounds the children's total."""

    code = models.CharField(_("code"), max_length=32, unique=True)
    name = models.CharField(_("name"), max_length=100)
    department = models.ForeignKey(Department, on_delete=models.PROTECT, related_name="budgets")
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="children"
    )
    line = models.CharField(
        _("budget line"),
        max_length=32,
        blank=True,
        db_index=True,
        help_text=_(
            "Budgets of one line follow each other period by period (e.g. LOUNGE for the "
            "lounge budgets of 2026 Q4 and 2027 Q1): what is charged to one of them for a "
            "business date is charged to the line's budget whose period contains that date."
        ),
    )
    period_start = models.DateField(_("period start"))
    period_end = models.DateField(_("period end"))
    amount_fen = models.BigIntegerField(_("amount (fen)"))
    consumed_fen = models.BigIntegerField(_("consumed (fen)"), default=0)
    alert_percents = models.JSONField(
        _("alert thresholds (%)"), default=list, blank=True, help_text=_("e.g. [80, 95]")
    )

    class Meta:
        ordering = ["code"]
        verbose_name = _("budget")
        verbose_name_plural = _("budgets")
        constraints = [
            models.CheckConstraint(
                condition=Q(consumed_fen__gte=0) & Q(consumed_fen__lte=F("amount_fen")),
                name="budget_never_overspent",
            ),
            models.CheckConstraint(
                condition=Q(period_end__gte=F("period_start")), name="budget_period_ordered"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.code} {self.name}"

    @property
    def amount(self) -> Decimal:
        return fen_to_decimal(self.amount_fen)

    @property
    def consumed(self) -> Decimal:
        return fen_to_decimal(self.consumed_fen)

    @property
    def remaining(self) -> Decimal:
        return fen_to_decimal(self.amount_fen - self.consumed_fen)

    @property
    def consumed_percent(self) -> Decimal:
        if not self.amount_fen:
            return Decimal("0")
        return (Decimal(self.consumed_fen) * 100 / Decimal(self.amount_fen)).quantize(
            Decimal("0.1")
        )


class BudgetEntry(models.Model):
    """Every movement of a budget (consume, release, adjust) with its source. Append-only;
    per budget, the sum of entries equals `consumed_fen`."""

    budget = models.ForeignKey(Budget, on_delete=models.PROTECT, related_name="entries")
    kind = models.CharField(_("kind"), max_length=8, choices=BudgetEntryKind.choices)
    amount_fen = models.BigIntegerField(_("amount (fen)"), help_text=_("Signed: + consumes."))
    source = models.CharField(_("source"), max_length=100)
    grant = models.ForeignKey(
        "BenefitGrant", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(_("at"), auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("budget entry")
        verbose_name_plural = _("budget entries")
        indexes = [models.Index(fields=["budget", "created_at"])]

    def __str__(self) -> str:
        return f"{self.budget_id} {self.kind} {self.amount_fen}"


class BudgetAlert(models.Model):
    """A budget crossed one of its alert thresholds (recorded once per threshold)."""

    budget = models.ForeignKey(Budget, on_delete=models.CASCADE, related_name="alerts")
    percent = models.PositiveSmallIntegerField(_("threshold (%)"))
    consumed_fen = models.BigIntegerField(_("consumed when raised (fen)"))
    raised_at = models.DateTimeField(_("raised at"), auto_now_add=True)

    class Meta:
        ordering = ["-raised_at"]
        verbose_name = _("budget alert")
        verbose_name_plural = _("budget alerts")
        constraints = [
            models.UniqueConstraint(fields=["budget", "percent"], name="one_alert_per_threshold")
        ]

    def __str__(self) -> str:
        return f"{self.budget_id} ≥ {self.percent}%"


@audit_trail()
class Benefit(models.Model):
    code = models.CharField(_("code"), max_length=32, unique=True)
    name = models.CharField(_("name (zh-Hans)"), max_length=100)
    name_en = models.CharField(_("name (English)"), max_length=100)
    category = models.CharField(_("category"), max_length=16, choices=BenefitCategory.choices)
    provider = models.CharField(_("provider"), max_length=100, blank=True)
    unit_cost_fen = models.BigIntegerField(_("unit cost (fen)"))
    department = models.ForeignKey(Department, on_delete=models.PROTECT, related_name="benefits")
    budget = models.ForeignKey(
        Budget,
        on_delete=models.PROTECT,
        related_name="benefits",
        help_text=_("Entitlement grants of this benefit are charged here."),
    )
    validity_days = models.PositiveIntegerField(
        _("valid for (days)"), null=True, blank=True, help_text=_("Empty: to the period end.")
    )
    active = models.BooleanField(_("active"), default=True)

    class Meta:
        ordering = ["code"]
        verbose_name = _("benefit")
        verbose_name_plural = _("benefits")
        constraints = [
            models.CheckConstraint(
                condition=Q(unit_cost_fen__gte=0), name="benefit_cost_not_negative"
            )
        ]

    def __str__(self) -> str:
        return f"{self.code} {self.name}"

    @property
    def unit_cost(self) -> Decimal:
        return fen_to_decimal(self.unit_cost_fen)

    unit_cost.fget.short_description = _("unit cost")  # its label where it is shown read-only
    unit_cost_decimal = unit_cost


@audit_trail()
class TierEntitlement(models.Model):
    """Benefit × tier → quantity per period, granted by the nightly job at period start."""

    benefit = models.ForeignKey(Benefit, on_delete=models.CASCADE, related_name="entitlements")
    tier = models.ForeignKey(Tier, on_delete=models.CASCADE, related_name="entitlements")
    quantity = models.PositiveSmallIntegerField(_("quantity"))
    period = models.CharField(_("period"), max_length=8, choices=EntitlementPeriod.choices)

    class Meta:
        ordering = ["tier__rank", "benefit__code"]
        verbose_name = _("tier entitlement")
        verbose_name_plural = _("tier entitlements")
        constraints = [
            models.UniqueConstraint(fields=["benefit", "tier"], name="one_entitlement_per_tier")
        ]

    def __str__(self) -> str:
        return f"{self.tier_id} {self.benefit_id} ×{self.quantity}/{self.period}"


@audit_trail()
class TierEntitlementDecision(models.Model):
    """For a tier of a scheme proposed to replace the active one: which entitlements it gets
    at the scheme's effective night: those of an old tier (`source_tier`, copied that
    night), its own (set in the matrix), or none. Activation is refused while a tier of the
    new scheme has none of these (`scheme_entitlement_problems`)."""

    tier = models.OneToOneField(Tier, on_delete=models.CASCADE, related_name="entitlement_decision")
    decision = models.CharField(
        _("entitlements"), max_length=8, choices=EntitlementDecision.choices
    )
    source_tier = models.ForeignKey(
        Tier,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("old tier"),
    )
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    decided_at = models.DateTimeField(_("decided at"), auto_now=True)

    class Meta:
        verbose_name = _("entitlement decision")
        verbose_name_plural = _("entitlement decisions")
        constraints = [
            models.CheckConstraint(
                condition=Q(decision="MAP", source_tier__isnull=False)
                | (~Q(decision="MAP") & Q(source_tier__isnull=True)),
                name="entitlement_decision_source_iff_map",
            )
        ]

    def __str__(self) -> str:
        return f"{self.tier_id} {self.decision} {self.source_tier_id or ''}".strip()


@audit_trail(
    # Status changes by people and services (redeem, revoke); not the nightly expiry, which
    # closes grants by the million and is counted in its JobRun. Grants themselves are the
    # record of their creation.
    pghistory.UpdateEvent(
        condition=pghistory.Q(old__status__df=pghistory.F("new__status"))
        & ~pghistory.Q(new__status=GrantStatus.EXPIRED)
    ),
    pghistory.DeleteEvent(),
)
class BenefitGrant(models.Model):
    """A benefit given to a member, charged to a budget; granted once per idempotency key."""

    member = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="grants")
    benefit = models.ForeignKey(Benefit, on_delete=models.PROTECT, related_name="grants")
    source = models.CharField(_("source"), max_length=12, choices=GrantSource.choices)
    budget = models.ForeignKey(Budget, on_delete=models.PROTECT, related_name="grants")
    cost_fen = models.BigIntegerField(_("cost (fen)"))
    status = models.CharField(
        _("status"), max_length=8, choices=GrantStatus.choices, default=GrantStatus.GRANTED
    )
    idempotency_key = models.CharField(_("idempotency key"), max_length=120, unique=True)
    period_key = models.CharField(_("period"), max_length=16, blank=True)
    granted_at = models.DateTimeField(_("granted at"), auto_now_add=True)
    expires_on = models.DateField(_("expires on"))
    redeemed_at = models.DateTimeField(_("redeemed at"), null=True, blank=True)
    closed_at = models.DateTimeField(_("revoked / expired at"), null=True, blank=True)
    granted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        ordering = ["-granted_at", "-id"]
        verbose_name = _("benefit grant")
        verbose_name_plural = _("benefit grants")
        indexes = [
            models.Index(fields=["member", "status"]),
            models.Index(fields=["status", "expires_on"]),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.benefit_id} → {self.member_id} ({self.status})"

    @property
    def cost(self) -> Decimal:
        return fen_to_decimal(self.cost_fen)

    def is_redeemable(self, today: date) -> bool:
        return self.status == GrantStatus.GRANTED and self.expires_on >= today


@audit_trail()
class ManualGrantRequest(models.Model):
    """A manual grant above the approval limit, waiting for a budget approver."""

    member = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="+")
    benefit = models.ForeignKey(Benefit, on_delete=models.PROTECT, related_name="+")
    budget = models.ForeignKey(Budget, on_delete=models.PROTECT, related_name="+")
    reason = models.CharField(_("reason"), max_length=255)
    status = models.CharField(
        _("status"), max_length=8, choices=RequestStatus.choices, default=RequestStatus.PENDING
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    requested_at = models.DateTimeField(_("requested at"), auto_now_add=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    decided_at = models.DateTimeField(_("decided at"), null=True, blank=True)
    grant = models.OneToOneField(
        BenefitGrant, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        ordering = ["-requested_at"]
        verbose_name = _("manual grant request")
        verbose_name_plural = _("manual grant requests")

    def __str__(self) -> str:
        return f"{self.benefit_id} → {self.member_id} ({self.status})"


class BenefitFeedback(models.Model):
    """An account manager's note on whether a benefit suits a customer (demand report)."""

    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="+")
    benefit = models.ForeignKey(Benefit, on_delete=models.CASCADE, related_name="feedback")
    useful = models.BooleanField(_("useful"))
    reason = models.CharField(_("reason"), max_length=255, blank=True)
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(_("at"), auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("benefit feedback")
        verbose_name_plural = _("benefit feedback")

    def __str__(self) -> str:
        return f"{self.benefit_id} {self.member_id} {'+' if self.useful else '-'}"
