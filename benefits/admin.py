"""Admin for the product team and budget approvers: catalogue, the entitlement matrix
(tiers as columns), budgets, and read-only grants and ledger."""

import re
from decimal import Decimal

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path
from django.utils.translation import gettext_lazy as _

from members.choices import SchemeStatus
from members.models import Tier, TierScheme
from members.selectors import member_scope
from portal.admin_approvals import ApprovalDoorAdminMixin, approval_sent_response
from portal.admin_base import MatrixModelAdmin, money_column
from portal.display import code_html, name_of, percent_text
from portal.errors import DomainError
from portal.money import decimal_to_fen
from portal.permissions import user_can

from .choices import BenefitApproval, EntitlementPeriod, GrantSource
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
from .rules import (
    BENEFIT_UNIT_COST,
    BUDGET_AMOUNT,
    alert_percents_parse,
    budget_parent_alone_problem,
    budget_values_problems,
)
from .services import (
    BUDGET_PROPOSAL_FIELDS,
    EntitlementChangeError,
    benefit_update,
    benefit_values_check,
    budget_create_request,
    budget_line_overlap,
    budget_proposal_values,
    budget_update,
    entitlement_change_request,
    entitlement_matrix_changes,
)
from .services.scheme_entitlements import (
    scheme_entitlement_decisions,
    scheme_entitlement_decisions_set,
    scheme_entitlement_problems,
)

_SOURCES = (
    # the forms the services write a budget entry's source in
    (re.compile(r"^entitlement (?P<benefit>\S+) (?P<period>\S+)$"), _("entitlement, %(period)s")),
    (re.compile(r"^task reward (?P<campaign>\S+) #(?P<task>\d+)"), _("task reward, %(campaign)s")),
    (re.compile(r"^parent change (?P<budget>\S+)$"), _("moved with budget %(budget)s")),
)


def budget_entry_source_text(entry: BudgetEntry) -> str:
    """What a budget entry was charged for, in the reader's words ("entitlement, 2026-11 ·
    Airport lounge"; a grant's source and its benefit by name); another form as written,
    as a code."""
    source = entry.source or ""
    benefit = entry.grant.benefit if entry.grant_id and entry.grant is not None else None
    text = ""
    for pattern, words in _SOURCES:
        if match := pattern.match(source):
            text = str(words % match.groupdict())
            break
    else:
        head = source.partition(" ")[0]
        if head in GrantSource.values:
            text = str(GrantSource(head).label)
    if not text:
        return code_html(source) if source else "—"
    return f"{text} · {name_of(benefit)}" if benefit is not None else text


class BenefitForm(forms.ModelForm):
    """A benefit with its unit cost in yuan (stored in fen), bounded (`benefits.rules`);
    separators are fine ("1,500.00")."""

    unit_cost = forms.CharField(label=_("unit cost (CNY)"), max_length=24)

    class Meta:
        model = Benefit
        fields = [
            "code",
            "name",
            "name_en",
            "category",
            "provider",
            "department",
            "budget",
            "validity_days",
            "active",
        ]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["unit_cost"].initial = f"{self.instance.unit_cost:.2f}"
            self.fields["unit_cost"].help_text = _(
                "A new unit cost or budget is sent to a budget approver; it applies on approval."
            )

    def clean_unit_cost(self) -> int:
        try:
            return decimal_to_fen(BENEFIT_UNIT_COST.parse(self.cleaned_data["unit_cost"]))
        except DomainError as exc:
            raise forms.ValidationError(exc.message) from None

    def clean(self):
        data = super().clean()
        try:
            benefit_values_check(
                {"unit_cost_fen": None, "validity_days": data.get("validity_days")}
            )
        except ValidationError as exc:
            for field, problems in exc.message_dict.items():
                self.add_error(field, problems)
        return data


@admin.register(Benefit)
class BenefitAdmin(MatrixModelAdmin):
    """The catalogue. Names, provider, validity and active change at once; a new unit cost or
    budget is a proposal for a budget approver (`benefit_update`)."""

    view_action = "benefits.view_benefits"
    change_action = "benefits.configure_benefits"
    form = BenefitForm
    list_display = [
        "code",
        "name_shown",
        "category",
        "provider",
        money_column("unit_cost", _("unit cost"), ordering="unit_cost_fen"),
        "budget",
        "active",
    ]
    list_select_related = ["budget", "department"]
    list_filter = ["category", "active", "department"]
    search_fields = ["code", "name", "name_en", "provider"]

    @admin.display(description=_("name"), ordering="name")
    def name_shown(self, benefit: Benefit) -> str:
        return name_of(benefit)

    def object_title(self, benefit: Benefit) -> str:
        return f"{benefit.code} {name_of(benefit)}"

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # deactivate instead: grants keep pointing at the benefit

    def save_model(self, request, obj, form, change):
        fen = form.cleaned_data["unit_cost"]
        if not change:
            obj.unit_cost_fen = fen
            super().save_model(request, obj, form, change)
            return
        changes = {
            name: form.cleaned_data[name]
            for name in form.changed_data
            if name in form.cleaned_data and name != "unit_cost"
        }
        changes["unit_cost_fen"] = fen
        original = Benefit.objects.get(pk=obj.pk)
        for name in changes:  # the form wrote them onto obj; benefit_update decides
            setattr(obj, name, getattr(original, name))
        try:
            obj, request.benefit_approval = benefit_update(
                benefit=original, changes=changes, actor=request.user
            )
        except DomainError as exc:
            request.benefit_refusal = exc.message

    def response_change(self, request, obj):
        refusal = getattr(request, "benefit_refusal", None)
        if refusal:
            self.message_user(request, refusal, messages.ERROR)
            return redirect("admin:benefits_benefit_change", obj.pk)
        approval = getattr(request, "benefit_approval", None)
        if approval is not None:
            return approval_sent_response(self, request, approval)
        return super().response_change(request, obj)


@admin.register(TierEntitlement)
class TierEntitlementAdmin(MatrixModelAdmin):
    """Entitlements, edited as one matrix: benefits as rows, tiers of the active scheme as
    columns (quantity and period per cell)."""

    view_action = "benefits.view_benefits"
    change_action = "benefits.configure_benefits"
    list_display = ["tier", "benefit", "quantity", "period"]
    list_filter = ["tier", "period"]

    def get_urls(self):
        return [
            path(
                "matrix/",
                self.admin_site.admin_view(self.matrix_view),
                name="benefits_tierentitlement_matrix",
            ),
            path(
                "scheme/<int:scheme_id>/",
                self.admin_site.admin_view(self.decisions_view),
                name="benefits_tierentitlement_decisions",
            ),
            *super().get_urls(),
        ]

    def decisions_view(self, request, scheme_id: int):
        """For a scheme proposed to replace the active one: what each new tier gets at the
        switch (an old tier's entitlements, its own from the matrix, or none)."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        scheme = get_object_or_404(TierScheme, pk=scheme_id)
        editable = self.has_change_permission(request) and scheme.status in (
            SchemeStatus.DRAFT,
            SchemeStatus.PENDING,
        )
        old_tiers = list(Tier.objects.filter(scheme__status=SchemeStatus.ACTIVE).order_by("rank"))
        errors: dict[str, str] = {}
        if request.method == "POST":
            if not editable:
                raise PermissionDenied
            chosen = {}
            for row in scheme_entitlement_decisions(scheme):
                value = request.POST.get(f"t_{row['tier'].pk}", "")
                if not value:
                    continue
                decision, _sep, source = value.partition(":")
                chosen[row["tier"].pk] = (decision, int(source) if source.isdigit() else None)
            try:
                changed = scheme_entitlement_decisions_set(
                    scheme=scheme, decisions=chosen, actor=request.user
                )
            except DomainError as exc:
                errors[exc.field or ""] = exc.message
                self.message_user(request, exc.message, messages.ERROR)
            else:
                self.message_user(
                    request,
                    _("%(n)s decision(s) saved.") % {"n": changed},
                    messages.SUCCESS,
                )
                return redirect("admin:benefits_tierentitlement_decisions", scheme_id=scheme.pk)
        context = {
            **self.admin_site.each_context(request),
            "title": _("Entitlements of the new tiers of %(scheme)s") % {"scheme": scheme.name},
            "scheme": scheme,
            "rows": scheme_entitlement_decisions(scheme),
            "old_tiers": old_tiers,
            "problems": scheme_entitlement_problems(scheme),
            "errors": errors,
            "editable": editable,
            "opts": self.model._meta,
        }
        return render(request, "benefits/scheme_entitlements.html", context)

    def changelist_view(self, request, extra_context=None):
        return redirect("admin:benefits_tierentitlement_matrix")

    def matrix_view(self, request):
        if not self.has_view_permission(request):
            raise PermissionDenied
        # the active scheme's tiers, or (?scheme=) those of a scheme waiting to replace it
        scheme = (
            TierScheme.objects.filter(
                pk=request.GET.get("scheme")
                if str(request.GET.get("scheme", "")).isdigit()
                else None,
                status__in=[SchemeStatus.DRAFT, SchemeStatus.PENDING],
            ).first()
            or TierScheme.objects.filter(status=SchemeStatus.ACTIVE).first()
        )
        tiers = list(Tier.objects.filter(scheme=scheme).order_by("rank"))
        benefits = list(Benefit.objects.filter(active=True).order_by("code"))
        cells = {
            (e.benefit_id, e.tier_id): e
            for e in TierEntitlement.objects.filter(tier__in=tiers, benefit__in=benefits)
        }
        editable = self.has_change_permission(request)
        errors: dict = {}
        typed: dict = {}
        if request.method == "POST":
            if not editable:
                raise PermissionDenied
            typed = {
                (benefit, tier): (
                    request.POST.get(f"q_{benefit.pk}_{tier.pk}", "").strip()[:24],
                    request.POST.get(f"p_{benefit.pk}_{tier.pk}", EntitlementPeriod.MONTH),
                )
                for benefit in benefits
                for tier in tiers
            }
            try:
                approval = entitlement_change_request(
                    changes=entitlement_matrix_changes(typed=typed), actor=request.user
                )
            except EntitlementChangeError as exc:
                errors = exc.errors
                self.message_user(request, exc.message, messages.ERROR)
            except DomainError as exc:
                self.message_user(request, exc.message, messages.ERROR)
            else:
                if approval is None:
                    self.message_user(request, _("No entitlement changed."))
                    return redirect(request.get_full_path())
                return approval_sent_response(
                    self,
                    request,
                    approval,
                    _(
                        "Sent for approval: %(summary)s. The entitlements change when a "
                        "budget approver approves it."
                    ),
                )
        rows = [
            (
                benefit,
                [
                    (
                        tier,
                        cells.get((benefit.pk, tier.pk)),
                        typed.get((benefit, tier)),
                        errors.get((benefit.code, tier.code), ""),
                    )
                    for tier in tiers
                ],
            )
            for benefit in benefits
        ]
        context = {
            **self.admin_site.each_context(request),
            "title": _("Tier entitlements"),
            "scheme": scheme,
            "tiers": tiers,
            "rows": rows,
            "periods": EntitlementPeriod.choices,
            "editable": editable,
            "opts": self.model._meta,
        }
        return render(request, "benefits/entitlement_matrix.html", context)


class BudgetForm(forms.ModelForm):
    """A budget in yuan (stored in fen). A new budget, a higher amount and a new parent are
    proposals that a budget approver decides; the other fields, and a lower amount, change
    at once."""

    amount = forms.CharField(
        label=_("amount (CNY)"),
        max_length=24,
        help_text=_("In yuan, to the fen; separators are fine (6,000,000.00)."),
    )

    class Meta:
        model = Budget
        # the proposal's fields; `amount` is the form's own field (yuan, not fen)
        fields = [name for name in BUDGET_PROPOSAL_FIELDS if name != "amount"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["amount"].initial = f"{self.instance.amount:,.2f}"
            self.fields["amount"].help_text = _(
                "Raising the amount is sent to a budget approver; it applies on approval."
            )
        if self.instance.pk and "parent" in self.fields:  # a read-only form has none
            self.fields["parent"].help_text = _(
                "A new parent is sent to a budget approver; it applies on approval, and what "
                "the budget has consumed moves with it."
            )
        if not self.instance.pk:
            self.fields["amount"].help_text = _(
                "A new budget is sent to a budget approver and created on approval."
            )

    def clean_amount(self) -> Decimal:
        try:
            return BUDGET_AMOUNT.parse(self.cleaned_data["amount"])
        except DomainError as exc:
            raise forms.ValidationError(exc.message) from None

    def clean_alert_percents(self) -> list[int]:
        try:
            return alert_percents_parse(self.cleaned_data.get("alert_percents"))
        except DomainError as exc:
            raise forms.ValidationError(exc.message) from None

    def clean(self):
        data = super().clean()
        start, end = data.get("period_start"), data.get("period_end")
        if start and end:
            # the domain's rules, in the user's words, also while the amount is wrong: a
            # period that ends before it starts is never left to the database's constraint
            problems = budget_values_problems(
                amount=data.get("amount"),
                period_start=start,
                period_end=end,
                parent=data.get("parent"),
                budget=self.instance if self.instance.pk else None,
            )
            for field, problem in problems.items():
                if field in self.fields and field not in self.errors:
                    self.add_error(field, problem)
            if (
                self.instance.pk
                and "amount" in data
                and "parent" not in self.errors
                and (
                    refusal := budget_parent_alone_problem(
                        budget=self.instance,
                        parent=data.get("parent"),
                        amount_fen=decimal_to_fen(data["amount"]),
                        period_start=start,
                        period_end=end,
                    )
                )
            ):
                self.add_error("parent", refusal)
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


#: a budget's amount as money, where the user may only view the budget
BUDGET_AMOUNT_SHOWN = money_column("amount", _("amount"), ordering="amount_fen")


@admin.register(Budget)
class BudgetAdmin(MatrixModelAdmin):
    """Budgets. Maker-checker: creating a budget, raising its amount and giving it another
    parent become approval requests (portal approvals inbox, with their impact); nothing is
    created, raised or moved until a budget approver other than the requester approves. The
    other fields, and a lower amount, change at once (`budget_update`)."""

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
        money_column("amount", _("amount"), ordering="amount_fen"),
        money_column("consumed", _("consumed"), ordering="consumed_fen"),
        money_column("remaining", _("left to spend")),
        "consumed_percent_shown",
    ]
    list_filter = ["department", "line"]
    list_select_related = ["department", "parent"]
    readonly_fields = ["consumed_fen", "remaining_shown", "consumed_percent_shown"]

    def get_fieldsets(self, request, obj=None):
        """A page the user may only view shows the amount as money, not the input's text."""
        fieldsets = super().get_fieldsets(request, obj)
        if obj is None or self.has_change_permission(request, obj):
            return fieldsets
        return [
            (
                title,
                {
                    **options,
                    "fields": [
                        BUDGET_AMOUNT_SHOWN if name == "amount" else name
                        for name in options.get("fields", ())
                    ],
                },
            )
            for title, options in fieldsets
        ]

    @admin.display(description=_("consumed (%)"))
    def consumed_percent_shown(self, budget: Budget) -> str:
        return percent_text(budget.consumed_percent)

    @admin.display(description=_("left to spend"))
    def remaining_shown(self, budget: Budget) -> str:
        return money_column("remaining", _("left to spend"))(budget) if budget.pk else "—"

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        try:
            if not change:
                request.budget_approval = budget_create_request(
                    values=budget_proposal_values(data), actor=request.user
                )
                return
            changes = {name: data[name] for name in BUDGET_PROPOSAL_FIELDS if name in data}
            _budget, request.budget_approval = budget_update(
                budget=Budget.objects.get(pk=obj.pk), changes=changes, actor=request.user
            )
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
        return approval_sent_response(self, request, approval)

    def response_add(self, request, obj, post_url_continue=None):
        return self._proposal_response(request) or super().response_add(request, obj)

    def response_change(self, request, obj):
        return self._proposal_response(request) or super().response_change(request, obj)


@admin.register(BudgetEntry)
class BudgetEntryAdmin(MatrixModelAdmin):
    view_action = "benefits.view_budgets"
    list_display = ["created_at", "budget", "kind", "amount_fen", "source_shown", "grant_shown"]
    list_filter = ["kind", "budget"]
    list_select_related = ["budget", "grant__benefit"]
    show_full_result_count = False
    fields = ["created_at", "budget", "kind", "amount_fen", "source_shown", "grant_shown"]
    readonly_fields = fields

    def object_title(self, entry: BudgetEntry) -> str:
        return f"{entry.budget.code} {entry.get_kind_display()} #{entry.pk}"

    @admin.display(description=_("charged for"))
    def source_shown(self, entry: BudgetEntry) -> str:
        return budget_entry_source_text(entry)

    @admin.display(description=_("grant"))
    def grant_shown(self, entry: BudgetEntry) -> str:
        return f"#{entry.grant_id}" if entry.grant_id else "—"


@admin.register(BudgetAlert)
class BudgetAlertAdmin(MatrixModelAdmin):
    view_action = "benefits.view_budgets"
    list_display = ["raised_at", "budget", "percent_shown", "consumed_fen"]
    readonly_fields = [
        *(f.name for f in BudgetAlert._meta.fields if f.name != "percent"),
        "percent_shown",
    ]

    @admin.display(description=_("alert threshold"), ordering="percent")
    def percent_shown(self, alert: BudgetAlert) -> str:
        return percent_text(alert.percent, places=0)


@admin.register(BenefitGrant)
class BenefitGrantAdmin(MatrixModelAdmin):
    view_action = "benefits.view_benefits"
    list_display = [
        "id",
        "member",
        "benefit",
        "source",
        "status",
        money_column("cost", _("cost"), ordering="cost_fen"),
        "expires_on",
    ]
    list_filter = ["status", "source", "benefit"]
    search_fields = ["member__member_no", "idempotency_key"]
    list_select_related = ["member", "benefit"]
    show_full_result_count = False
    readonly_fields = [f.name for f in BenefitGrant._meta.fields]

    def object_title(self, grant: BenefitGrant) -> str:
        return f"#{grant.pk} {name_of(grant.benefit)} → {grant.member.member_no}"

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

    def object_title(self, request_: ManualGrantRequest) -> str:
        return f"{name_of(request_.benefit)} → {request_.member.member_no}"

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

    def object_title(self, feedback: BenefitFeedback) -> str:
        return f"{name_of(feedback.benefit)} · {feedback.member.member_no}"

    def get_queryset(self, request):
        return super().get_queryset(request).filter(member__in=member_scope(user=request.user))
