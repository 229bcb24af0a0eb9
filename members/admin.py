"""Admin for members and feeds. Personal data is never shown unmasked here."""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import redirect
from django.utils.translation import gettext_lazy as _
from unfold.admin import TabularInline
from unfold.paginator import InfinitePaginator

from portal.admin_base import MatrixInlineMixin, MatrixModelAdmin
from portal.permissions import user_can
from portal.services import audit_record

from .choices import SchemeStatus
from .models import (
    FeedBatch,
    FeedRejection,
    Member,
    PointsEntry,
    PointsIndicator,
    Segment,
    Tier,
    TierChange,
    TierOverride,
    TierScheme,
)
from .segments import segment_rules_validate
from .selectors import member_scope
from .services import TierRuleError, tier_scheme_decide_activation, tier_scheme_request_activation


@admin.register(Member)
class MemberAdmin(MatrixModelAdmin):
    """Read-only: member data comes from the members feed; phone and ID shown masked."""

    view_action = "members.view_members"
    list_display = [
        "member_no",
        "name",
        "phone_masked",
        "id_number_masked",
        "branch",
        "account_manager",
        "status",
        "lifecycle_stage",
        "credit_risk",
    ]
    list_filter = ["status", "lifecycle_stage", "credit_risk", "branch"]
    search_fields = ["member_no", "name", "=id_number"]
    list_select_related = ["branch", "account_manager"]
    exclude = ["phone", "id_number"]
    readonly_fields = [
        "member_no",
        "name",
        "phone_masked",
        "id_number_masked",
        "birth_date",
        "registered_at",
        "branch",
        "account_manager",
        "status",
        "channels",
        "credit_risk",
        "lifecycle_stage",
        "last_active_on",
        "points_balance",
    ]
    show_full_result_count = False

    def get_queryset(self, request):
        return member_scope(user=request.user).select_related("branch", "account_manager")

    #: Query-string lookups that would let someone recover personal data digit by digit.
    PERSONAL_FIELDS = ("phone", "id_number", "name", "birth_date")

    def lookup_allowed(self, lookup, value, request=None):
        if lookup.split("__")[0] in self.PERSONAL_FIELDS:
            return False
        return super().lookup_allowed(lookup, value, request)

    @admin.display(description=_("phone"))
    def phone_masked(self, member: Member) -> str:
        return member.masked_phone

    @admin.display(description=_("ID number"))
    def id_number_masked(self, member: Member) -> str:
        return member.masked_id_number


@admin.register(FeedBatch)
class FeedBatchAdmin(MatrixModelAdmin):
    view_action = "members.view_feeds"
    list_display = [
        "id",
        "kind",
        "file_name",
        "status",
        "received",
        "accepted",
        "duplicates",
        "rejected",
        "first_date",
        "last_date",
        "imported_by",
        "started_at",
    ]
    list_filter = ["kind", "status"]
    search_fields = ["file_name", "checksum"]
    readonly_fields = [f.name for f in FeedBatch._meta.fields]


@admin.register(FeedRejection)
class FeedRejectionAdmin(MatrixModelAdmin):
    view_action = "members.view_feeds"
    list_display = ["batch", "line_no", "field", "reason", "row_masked"]
    list_filter = ["batch__kind", "field"]
    list_select_related = ["batch"]
    exclude = ["raw"]
    readonly_fields = ["batch", "line_no", "field", "reason", "row_masked"]

    @admin.display(description=_("row as received"))
    def row_masked(self, rejection: FeedRejection) -> str:
        return rejection.masked_raw()


class TierInline(MatrixInlineMixin, TabularInline):
    model = Tier
    extra = 0
    view_action = "members.view_tier_schemes"
    change_action = "members.configure_tier_schemes"

    def is_editable(self, obj) -> bool:
        return obj.status == SchemeStatus.DRAFT

    fields = ["code", "name", "name_en", "rank", "threshold"]


class PointsIndicatorInline(MatrixInlineMixin, TabularInline):
    model = PointsIndicator
    extra = 0
    view_action = "members.view_tier_schemes"
    change_action = "members.configure_tier_schemes"

    def is_editable(self, obj) -> bool:
        return obj.status == SchemeStatus.DRAFT

    fields = ["kind", "category", "points", "per_unit", "cap"]


@admin.register(TierScheme)
class TierSchemeAdmin(MatrixModelAdmin):
    """Tier schemes: drafts are edited here, simulated, then proposed for activation; the
    active scheme is read-only (change it through a new draft)."""

    view_action = "members.view_tier_schemes"
    change_action = "members.configure_tier_schemes"
    list_display = ["code", "name", "method", "status", "window_months", "downgrade_after_months"]
    list_filter = ["method", "status"]
    readonly_fields = ["status", "activated_at"]
    inlines = [TierInline, PointsIndicatorInline]
    actions = ["simulate", "request_activation", "approve_activation", "reject_activation"]

    def has_change_permission(self, request, obj=None) -> bool:
        if obj is not None and obj.status != SchemeStatus.DRAFT:
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.action(description=_("Simulate against the current population"))
    def simulate(self, request, queryset):
        scheme = queryset.first()
        return redirect("members:scheme-simulate", pk=scheme.pk)

    def _decide(self, request, queryset, service, success: str, **kwargs) -> None:
        for scheme in queryset:
            try:
                service(scheme=scheme, actor=request.user, **kwargs)
            except TierRuleError as exc:
                self.message_user(request, f"{scheme.code}: {exc}", messages.ERROR)
            else:
                self.message_user(request, f"{scheme.code}: {success}", messages.SUCCESS)

    @admin.action(description=_("Propose for activation"))
    def request_activation(self, request, queryset):
        if not user_can(request.user, "members.configure_tier_schemes"):
            raise PermissionDenied
        self._decide(
            request, queryset, tier_scheme_request_activation, _("proposed; a colleague decides")
        )

    @admin.action(description=_("Approve activation"))
    def approve_activation(self, request, queryset):
        if not user_can(request.user, "members.approve_tier_scheme"):
            raise PermissionDenied
        self._decide(request, queryset, tier_scheme_decide_activation, _("activated"), approve=True)

    @admin.action(description=_("Reject activation"))
    def reject_activation(self, request, queryset):
        if not user_can(request.user, "members.approve_tier_scheme"):
            raise PermissionDenied
        self._decide(
            request, queryset, tier_scheme_decide_activation, _("back to draft"), approve=False
        )


@admin.register(TierChange)
class TierChangeAdmin(MatrixModelAdmin):
    view_action = "members.view_tier_schemes"
    list_display = ["member", "from_tier", "to_tier", "cause", "business_date", "basis"]
    list_filter = ["cause", "business_date"]
    list_select_related = ["member", "from_tier", "to_tier"]
    search_fields = ["member__member_no"]
    show_full_result_count = False
    readonly_fields = [f.name for f in TierChange._meta.fields]

    def get_queryset(self, request):
        return super().get_queryset(request).filter(member__in=member_scope(user=request.user))


@admin.register(TierOverride)
class TierOverrideAdmin(MatrixModelAdmin):
    view_action = "members.view_tier_schemes"
    list_display = ["member", "tier", "status", "expires_on", "requested_by", "decided_by"]
    list_filter = ["status"]
    list_select_related = ["member", "tier", "requested_by", "decided_by"]
    readonly_fields = [f.name for f in TierOverride._meta.fields]

    def get_queryset(self, request):
        return super().get_queryset(request).filter(member__in=member_scope(user=request.user))


# --- segments and the points ledger ------------------------------------------------------------


class SegmentForm(forms.ModelForm):
    class Meta:
        model = Segment
        fields = ["code", "name", "description", "department", "rules"]
        help_texts = {
            "rules": _(
                'A list of conditions, all of which must hold, e.g. [{"field": '
                '"lifecycle_stage", "op": "in", "value": ["DORMANT"]}].'
            )
        }

    def clean_rules(self):
        try:
            return segment_rules_validate(self.cleaned_data.get("rules"))
        except ValidationError as exc:
            raise forms.ValidationError(exc.messages) from None


def _segment_launched_campaigns(segment: Segment) -> list[str]:
    """Codes of submitted or running campaigns targeting the segment: its rules were part of
    what was approved, so they are frozen while those campaigns are."""
    from campaigns.choices import EDITABLE_STATUSES, CampaignStatus

    return list(
        segment.campaigns.exclude(status__in=[*EDITABLE_STATUSES, CampaignStatus.ENDED])
        .order_by("code")
        .values_list("code", flat=True)
    )


@admin.register(Segment)
class SegmentAdmin(MatrixModelAdmin):
    """Saved member segments. The live size is counted on the change page only (one count
    per segment would make the list as slow as the member table is large)."""

    view_action = "members.view_segments"
    change_action = "members.configure_segments"
    form = SegmentForm
    list_display = ["code", "name", "department", "created_by", "updated_at"]
    list_filter = ["department"]
    search_fields = ["code", "name"]
    list_select_related = ["department", "created_by"]

    def get_readonly_fields(self, request, obj=None):
        fields = ["created_by", "created_at", "updated_at"]
        if obj is None:
            return fields
        fields = ["live_size", "used_by", *fields]
        if _segment_launched_campaigns(obj):
            fields.insert(0, "rules")
        return fields

    @admin.display(description=_("members matching now"))
    def live_size(self, segment: Segment) -> int | str:
        try:
            return Member.objects.filter(segment.member_filter()).count()
        except (KeyError, TypeError, ValueError):  # rules saved before they were validated
            return _("the rules are not valid; correct them and save")

    @admin.display(description=_("campaigns targeting it"))
    def used_by(self, segment: Segment) -> str:
        return ", ".join(segment.campaigns.order_by("code").values_list("code", flat=True)) or "-"

    def save_model(self, request, obj: Segment, form, change) -> None:
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)
        audit_record(
            actor=request.user,
            action="segment.change" if change else "segment.create",
            obj=obj,
            changes={name: str(form.cleaned_data.get(name)) for name in form.changed_data},
        )

    def has_delete_permission(self, request, obj=None) -> bool:
        if obj is not None and obj.campaigns.exists():
            return False  # a campaign targets it: deleting would silently widen the campaign
        return super().has_delete_permission(request, obj)


@admin.register(PointsEntry)
class PointsEntryAdmin(MatrixModelAdmin):
    """The points ledger, read-only: it is append-only (earn, spend, expire, adjust); a
    correction is a new ADJUST entry made by a service, never an edit."""

    view_action = "members.view_members"
    list_display = [
        "id",
        "created_at",
        "member_no",
        "kind",
        "points",
        "remaining",
        "business_date",
        "expires_on",
        "source",
    ]
    list_filter = ["kind"]
    search_fields = ["=member__member_no", "=idempotency_key"]
    list_select_related = ["member"]
    paginator = InfinitePaginator
    show_full_result_count = False
    readonly_fields = [f.name for f in PointsEntry._meta.fields]

    def get_queryset(self, request):
        return super().get_queryset(request).filter(member__in=member_scope(user=request.user))

    @admin.display(description=_("member"), ordering="member__member_no")
    def member_no(self, entry: PointsEntry) -> str:
        return entry.member.member_no

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
