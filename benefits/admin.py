"""Admin for the product team and budget approvers: catalogue, the entitlement matrix
(tiers as columns), budgets, and read-only grants and ledger."""

from decimal import Decimal

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.shortcuts import redirect, render
from django.urls import path
from django.utils.translation import gettext_lazy as _

from members.models import Tier
from members.selectors import member_scope
from portal.admin_approvals import ApprovalDoorAdminMixin
from portal.admin_base import MatrixModelAdmin
from portal.errors import DomainError
from portal.permissions import user_can
from portal.services import audit_record

from .choices import BenefitApproval, EntitlementPeriod
from .models import (
    Benefit,
    BenefitFeedback,
    BenefitGrant,
    Budget,
    BudgetAlert,
    BudgetEntry,
    ManualGrantRequest,
    TierEntitlement,
)
from .services import (
    BUDGET_PROPOSAL_FIELDS,
    budget_amount_lower,
    budget_create_request,
    budget_increase_request,
    budget_line_overlap,
)


@admin.register(Benefit)
class BenefitAdmin(MatrixModelAdmin):
    view_action = "benefits.view_benefits"
    change_action = "benefits.configure_benefits"
    list_display = [
        "code",
        "name",
        "name_en",
        "category",
        "provider",
        "unit_cost",
        "budget",
        "active",
    ]
    list_filter = ["category", "active", "department"]
    search_fields = ["code", "name", "name_en", "provider"]

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # deactivate instead: grants keep pointing at the benefit


@admin.register(TierEntitlement)
class TierEntitlementAdmin(MatrixModelAdmin):
    """Entitlements, edited as one matrix: benefits as rows, tiers of the active scheme as
    columns (quantity and period per cell)."""

    view_action = "benefits.view_benefits"
    change_action = "benefits.configure_benefits"
    list_display = ["tier", "benefit", "quantity", "period"]
    list_filter = ["tier__scheme", "tier", "period"]

    def get_urls(self):
        return [
            path(
                "matrix/",
                self.admin_site.admin_view(self.matrix_view),
                name="benefits_tierentitlement_matrix",
            ),
            *super().get_urls(),
        ]

    def changelist_view(self, request, extra_context=None):
        return redirect("admin:benefits_tierentitlement_matrix")

    def matrix_view(self, request):
        if not self.has_view_permission(request):
            raise PermissionDenied
        tiers = list(Tier.objects.filter(scheme__status="ACTIVE").order_by("rank"))
        benefits = list(Benefit.objects.filter(active=True).order_by("code"))
        cells = {
            (e.benefit_id, e.tier_id): e
            for e in TierEntitlement.objects.filter(tier__in=tiers, benefit__in=benefits)
        }
        editable = self.has_change_permission(request)
        if request.method == "POST":
            if not editable:
                raise PermissionDenied
            changes = self._save_matrix(request, tiers, benefits, cells)
            self.message_user(request, _("Entitlement matrix saved (%d changes).") % changes)
            return redirect("admin:benefits_tierentitlement_matrix")
        rows = [
            (benefit, [(tier, cells.get((benefit.pk, tier.pk))) for tier in tiers])
            for benefit in benefits
        ]
        context = {
            **self.admin_site.each_context(request),
            "title": _("Tier entitlements"),
            "tiers": tiers,
            "rows": rows,
            "periods": EntitlementPeriod.choices,
            "editable": editable,
            "opts": self.model._meta,
        }
        return render(request, "benefits/entitlement_matrix.html", context)

    @transaction.atomic
    def _save_matrix(self, request, tiers, benefits, cells) -> int:
        changes = 0
        for benefit in benefits:
            for tier in tiers:
                raw = request.POST.get(f"q_{benefit.pk}_{tier.pk}", "").strip()
                period = request.POST.get(f"p_{benefit.pk}_{tier.pk}", EntitlementPeriod.MONTH)
                current = cells.get((benefit.pk, tier.pk))
                quantity = int(raw) if raw.isdigit() else 0
                if period not in EntitlementPeriod.values:
                    messages.error(request, f"{benefit.code}/{tier.code}: unknown period")
                    continue
                if quantity == 0 and current is not None:
                    current.delete()
                elif quantity and current is None:
                    TierEntitlement.objects.create(
                        benefit=benefit, tier=tier, quantity=quantity, period=period
                    )
                elif quantity and (current.quantity, current.period) != (quantity, period):
                    current.quantity, current.period = quantity, period
                    current.save()
                else:
                    continue
                changes += 1
                audit_record(
                    actor=request.user,
                    action="entitlement.change",
                    changes={
                        "benefit": benefit.code,
                        "tier": tier.code,
                        "quantity": quantity,
                        "period": period,
                    },
                )
        return changes


class BudgetForm(forms.ModelForm):
    """A budget in yuan (stored in fen). A new budget and a higher amount are proposals that
    a budget approver decides; the other fields, and a lower amount, change at once."""

    amount = forms.DecimalField(
        label=_("amount (CNY)"), max_digits=14, decimal_places=2, min_value=Decimal("0.01")
    )

    class Meta:
        model = Budget
        # the proposal's fields; `amount` is the form's own field (yuan, not fen)
        fields = [name for name in BUDGET_PROPOSAL_FIELDS if name != "amount"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["amount"].initial = self.instance.amount
            self.fields["amount"].help_text = _(
                "Raising the amount is sent to a budget approver; it applies on approval."
            )
        else:
            self.fields["amount"].help_text = _(
                "A new budget is sent to a budget approver and created on approval."
            )

    def clean(self):
        data = super().clean()
        start, end = data.get("period_start"), data.get("period_end")
        if (
            start
            and end
            and (
                refusal := budget_line_overlap(
                    line=data.get("line") or "",
                    period_start=start,
                    period_end=end,
                    exclude_pk=self.instance.pk,
                )
            )
        ):
            self.add_error("line", refusal)
        return data


@admin.register(Budget)
class BudgetAdmin(MatrixModelAdmin):
    """Budgets. Maker-checker: creating a budget and raising its amount become approval
    requests (portal approvals inbox); nothing is created or raised until a budget approver
    other than the requester approves."""

    view_action = "benefits.view_budgets"
    change_action = "benefits.configure_budgets"
    form = BudgetForm
    list_display = [
        "code",
        "name",
        "department",
        "parent",
        "line",
        "period_start",
        "period_end",
        "amount",
        "consumed",
        "consumed_percent",
    ]
    list_filter = ["department", "line"]
    readonly_fields = ["consumed_fen"]

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def _proposal_values(self, form) -> dict:
        data = form.cleaned_data
        return {
            "code": data["code"],
            "name": data["name"],
            "department": data["department"].code,
            "parent": data["parent"].code if data.get("parent") else None,
            "line": data.get("line") or "",
            "period_start": data["period_start"].isoformat(),
            "period_end": data["period_end"].isoformat(),
            "amount": f"{data['amount']:.2f}",
            "alert_percents": data.get("alert_percents") or [],
        }

    def save_model(self, request, obj, form, change):
        amount = form.cleaned_data["amount"]
        try:
            if not change:
                request.budget_approval = budget_create_request(
                    values=self._proposal_values(form), actor=request.user
                )
                return
            with transaction.atomic():
                before = Budget.objects.select_for_update().get(pk=obj.pk)
                obj.amount_fen, obj.consumed_fen = before.amount_fen, before.consumed_fen
                obj.save()
                if amount > before.amount:
                    request.budget_approval = budget_increase_request(
                        budget=before, amount=amount, actor=request.user
                    )
                elif amount < before.amount:
                    budget_amount_lower(budget=before, amount=amount, actor=request.user)
        except DomainError as exc:
            request.budget_refusal = str(exc)

    def save_related(self, request, form, formsets, change):
        if form.instance.pk:
            super().save_related(request, form, formsets, change)

    def log_addition(self, request, obj, message):
        if obj.pk:
            return super().log_addition(request, obj, message)
        return None

    def _proposal_response(self, request):
        refusal = getattr(request, "budget_refusal", None)
        if refusal:
            self.message_user(request, refusal, messages.ERROR)
            return redirect("admin:benefits_budget_changelist")
        approval = getattr(request, "budget_approval", None)
        if approval is None:
            return None
        self.message_user(
            request,
            _("Sent for approval: %(summary)s. It applies when a budget approver approves it.")
            % {"summary": approval.summary},
            messages.SUCCESS,
        )
        return redirect("approval-detail", pk=approval.pk)

    def response_add(self, request, obj, post_url_continue=None):
        return self._proposal_response(request) or super().response_add(request, obj)

    def response_change(self, request, obj):
        return self._proposal_response(request) or super().response_change(request, obj)


@admin.register(BudgetEntry)
class BudgetEntryAdmin(MatrixModelAdmin):
    view_action = "benefits.view_budgets"
    list_display = ["created_at", "budget", "kind", "amount_fen", "source", "grant"]
    list_filter = ["kind", "budget"]
    show_full_result_count = False
    readonly_fields = [f.name for f in BudgetEntry._meta.fields]


@admin.register(BudgetAlert)
class BudgetAlertAdmin(MatrixModelAdmin):
    view_action = "benefits.view_budgets"
    list_display = ["raised_at", "budget", "percent", "consumed_fen"]
    readonly_fields = [f.name for f in BudgetAlert._meta.fields]


@admin.register(BenefitGrant)
class BenefitGrantAdmin(MatrixModelAdmin):
    view_action = "benefits.view_benefits"
    list_display = ["id", "member", "benefit", "source", "status", "cost", "expires_on"]
    list_filter = ["status", "source", "benefit"]
    search_fields = ["member__member_no", "idempotency_key"]
    list_select_related = ["member", "benefit"]
    show_full_result_count = False
    readonly_fields = [f.name for f in BenefitGrant._meta.fields]

    def get_queryset(self, request):
        return super().get_queryset(request).filter(member__in=member_scope(user=request.user))


@admin.register(ManualGrantRequest)
class ManualGrantRequestAdmin(ApprovalDoorAdminMixin, MatrixModelAdmin):
    """Manual grants above the limit: decided in the approvals inbox, or with Approve /
    Reject on a pending request's page (both through the approval engine)."""

    view_action = "benefits.view_budgets"
    list_display = ["requested_at", "member", "benefit", "status", "requested_by", "decided_by"]
    list_filter = ["status"]
    readonly_fields = [f.name for f in ManualGrantRequest._meta.fields]
    approval_kind_code = BenefitApproval.MANUAL_GRANT
    actions_detail = ["approve_detail", "reject_detail"]

    def get_queryset(self, request):
        requests = super().get_queryset(request)
        if user_can(request.user, "benefits.approve_manual_grant"):
            return requests  # the approvers' queue: requests from every branch come to them
        return requests.filter(member__in=member_scope(user=request.user))

    def approval_door_done(self, obj, *, approve: bool) -> str:
        return str(_("granted and charged to the budget.") if approve else _("rejected."))


@admin.register(BenefitFeedback)
class BenefitFeedbackAdmin(MatrixModelAdmin):
    view_action = "benefits.view_benefits"
    list_display = ["created_at", "benefit", "member", "useful", "reason", "author"]
    list_filter = ["useful", "benefit"]
    readonly_fields = [f.name for f in BenefitFeedback._meta.fields]

    def get_queryset(self, request):
        return super().get_queryset(request).filter(member__in=member_scope(user=request.user))
