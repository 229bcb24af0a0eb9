"""Admin for members and feeds. Personal data is never shown unmasked here."""

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.actions import delete_selected as django_delete_selected
from django.contrib.admin.utils import unquote
from django.contrib.admin.views.main import SEARCH_VAR, ChangeList
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.http import QueryDict
from django.shortcuts import redirect
from django.utils.html import format_html
from django.utils.http import urlencode
from django.utils.translation import gettext_lazy as _
from unfold.admin import TabularInline
from unfold.decorators import action as unfold_action
from unfold.enums import ActionVariant
from unfold.forms import BaseDialogForm
from unfold.paginator import InfinitePaginator

from portal.admin_approvals import ApprovalDoorAdminMixin
from portal.admin_base import MatrixInlineMixin, MatrixModelAdmin
from portal.display import name_of
from portal.errors import DomainError
from portal.middleware import client_ip
from portal.permissions import user_can

from .choices import MemberApproval, SchemeStatus
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
from .registry import (
    SCHEME_SWITCH_PARTS,
    segment_frozen_by,
    segment_targeted_by,
    segment_users_text,
)
from .segments import segment_filter, segment_rules_validate
from .selectors import looks_like_personal_number, member_scope
from .services import tier_scheme_request_activation, tier_scheme_switch_problems
from .services.personal_search import member_personal_search
from .services.segments import (
    SEGMENT_CONFIG_FIELDS,
    SegmentInUse,
    segment_create,
    segment_delete,
    segment_update,
)


class MemberChangeList(ChangeList):
    """A full ID or mobile number finds the member (for a role that may reveal personal
    data, audited: `MemberAdmin.get_search_results`) but is never written back into the
    page: not in the search box, nor in any link the list builds (sorting, filters, facets)."""

    def __init__(self, request, *args, **kwargs):
        super().__init__(request, *args, **kwargs)
        if looks_like_personal_number(self.query):
            self.query = ""

    def get_query_string(self, new_params=None, remove=None):
        query_string = super().get_query_string(new_params, remove)
        params = QueryDict(query_string.removeprefix("?"), mutable=True)
        if not looks_like_personal_number(params.get(SEARCH_VAR, "")):
            return query_string
        params.pop(SEARCH_VAR)
        return f"?{params.urlencode()}"


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
    # a full ID or mobile number only through `member_personal_search` (get_search_results)
    search_fields = ["member_no", "name"]
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

    def get_changelist(self, request, **kwargs):
        return MemberChangeList

    def get_search_results(self, request, queryset, search_term):
        """Member number and name as the admin searches them; a full ID or mobile number
        also through the audited, throttled personal search — refused, with a message, to
        a role that may not reveal personal data (it then matches numbers and names only)."""
        results, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        if not looks_like_personal_number(search_term):
            return results, may_have_duplicates
        try:
            found = member_personal_search(
                user=request.user, text=search_term, ip=client_ip(request)
            )
        except DomainError as exc:
            messages.warning(request, exc.message)
            return results, may_have_duplicates
        return results | queryset.filter(found), may_have_duplicates

    def get_preserved_filters(self, request):
        preserved = super().get_preserved_filters(request)
        filters = QueryDict(QueryDict(preserved).get("_changelist_filters", ""), mutable=True)
        if not looks_like_personal_number(filters.get(SEARCH_VAR, "")):
            return preserved
        filters.pop(SEARCH_VAR)
        return urlencode({"_changelist_filters": filters.urlencode()}) if filters else ""

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

    def object_title(self, batch: FeedBatch) -> str:
        return f"#{batch.pk} {batch.get_kind_display()} {batch.file_name}"


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


class SchemeProposeForm(BaseDialogForm):
    """Propose a draft scheme for activation on a coming night (default: the next one)."""

    effective_on = forms.DateField(
        label=_("Takes effect on the night of"),
        help_text=_(
            "That night's recompute grades every member by this scheme; until then every "
            "page shows the current one. Empty: the next night."
        ),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
    )


@admin.register(TierScheme)
class TierSchemeAdmin(ApprovalDoorAdminMixin, MatrixModelAdmin):
    """Tier schemes: drafts are edited here, simulated, then proposed for activation (decided
    in the approvals inbox or with Approve / Reject on a pending scheme's page); the active
    scheme is read-only (change it through a new draft)."""

    approval_kind_code = MemberApproval.TIER_SCHEME_ACTIVATION
    #: on the scheme's page: Simulate and Propose for a draft, Approve / Reject while its
    #: activation waits; each shown only to a role that may take it
    actions_detail = [
        "simulate_detail",
        "carry_across_detail",
        "propose_detail",
        "approve_detail",
        "reject_detail",
    ]

    view_action = "members.view_tier_schemes"
    change_action = "members.configure_tier_schemes"
    list_display = [
        "code",
        "name",
        "method",
        "status",
        "effective_on",
        "window_months",
        "downgrade_after_months",
    ]
    list_filter = ["method", "status"]
    readonly_fields = ["status", "effective_on", "activated_at", "carried_across"]
    inlines = [TierInline, PointsIndicatorInline]
    actions = ["simulate", "request_activation"]

    def has_simulate_permission(self, request, obj=None) -> bool:
        return user_can(request.user, "members.simulate_tier_scheme")

    def has_propose_permission(self, request, obj=None) -> bool:
        return user_can(request.user, "members.configure_tier_schemes")

    def get_actions_detail(self, request, object_id):
        actions = super().get_actions_detail(request, object_id)
        scheme = self.get_object(request, object_id)
        prefix = f"{self.model._meta.app_label}_{self.model._meta.model_name}_"
        # the statuses a scheme-bound action is offered in (the others: always)
        only = {
            "simulate_detail": (SchemeStatus.DRAFT,),
            "propose_detail": (SchemeStatus.DRAFT,),
            # only when an app has decisions to carry across
            "carry_across_detail": (SchemeStatus.DRAFT, SchemeStatus.PENDING)
            if SCHEME_SWITCH_PARTS
            else (),
        }

        def offered(action) -> bool:
            statuses = only.get(action.action_name.removeprefix(prefix))
            return statuses is None or (scheme is not None and scheme.status in statuses)

        return [action for action in actions if offered(action)]

    @admin.display(description=_("Carried across at the switch"))
    def carried_across(self, obj) -> str:
        """What still stops the approval (entitlement decisions), or that nothing does."""
        if obj is None or obj.status not in (SchemeStatus.DRAFT, SchemeStatus.PENDING):
            return "—"
        return " ".join(tier_scheme_switch_problems(obj)) or _("Ready: every app has decided.")

    def has_carry_across_permission(self, request, obj=None) -> bool:
        return user_can(request.user, "members.configure_tier_schemes")

    @unfold_action(
        description=_("Entitlements of the new tiers"),
        url_path="carry-across",
        permissions=["carry_across"],
    )
    def carry_across_detail(self, request, object_id):
        scheme = self.get_object(request, object_id)
        pages = [part.page(scheme) for part in SCHEME_SWITCH_PARTS if part.page]
        if scheme is None or not pages:
            raise PermissionDenied
        return redirect(pages[0])

    @unfold_action(
        description=_("Simulate against the current population"),
        url_path="simulate",
        permissions=["simulate"],
    )
    def simulate_detail(self, request, object_id):
        return redirect("members:scheme-simulate", pk=object_id)

    @unfold_action(
        description=_("Propose for activation"),
        url_path="propose",
        permissions=["propose"],
        variant=ActionVariant.PRIMARY,
        dialog={
            "title": _("Propose for activation"),
            "description": _("A colleague holding the approving role decides."),
            "form_class": SchemeProposeForm,
            "form_submit_text": _("Propose"),
        },
    )
    def propose_detail(self, request, form, object_id):
        return self.approval_door_apply(
            request,
            object_id,
            lambda scheme: tier_scheme_request_activation(
                scheme=scheme, actor=request.user, effective_on=form.cleaned_data["effective_on"]
            ),
            lambda scheme: str(
                _("proposed to take effect on the night of %(date)s; a colleague decides")
                % {"date": TierScheme.objects.get(pk=scheme.pk).effective_on.isoformat()}
            ),
        )

    def has_change_permission(self, request, obj=None) -> bool:
        if obj is not None and obj.status != SchemeStatus.DRAFT:
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.action(
        description=_("Simulate against the current population"), permissions=["simulate"]
    )
    def simulate(self, request, queryset):
        scheme = queryset.first()
        return redirect("members:scheme-simulate", pk=scheme.pk)

    def approval_door_done(self, obj, *, approve: bool) -> str:
        if not approve:
            return str(_("back to draft"))
        obj.refresh_from_db()
        return str(
            _("approved; it takes effect on the night of %(date)s")
            % {"date": obj.effective_on.isoformat() if obj.effective_on else "—"}
        )

    @admin.action(description=_("Propose for activation"), permissions=["propose"])
    def request_activation(self, request, queryset):
        if not user_can(request.user, "members.configure_tier_schemes"):
            raise PermissionDenied
        for scheme in queryset:
            try:
                tier_scheme_request_activation(scheme=scheme, actor=request.user)
            except DomainError as exc:
                self.message_user(request, f"{scheme.code}: {exc}", messages.ERROR)
            else:
                done = _("proposed; a colleague decides")
                self.message_user(request, f"{scheme.code}: {done}", messages.SUCCESS)


@admin.register(TierChange)
class TierChangeAdmin(MatrixModelAdmin):
    view_action = "members.view_tier_schemes"
    list_display = ["member", "from_tier", "to_tier", "cause", "business_date", "basis"]
    list_filter = ["cause", "business_date"]
    list_select_related = ["member", "from_tier", "to_tier"]
    search_fields = ["member__member_no"]
    show_full_result_count = False
    readonly_fields = [f.name for f in TierChange._meta.fields]

    def object_title(self, change: TierChange) -> str:
        return f"{change.member.member_no} {change.get_cause_display()} {change.business_date}"

    def get_queryset(self, request):
        return super().get_queryset(request).filter(member__in=member_scope(user=request.user))


@admin.register(TierOverride)
class TierOverrideAdmin(MatrixModelAdmin):
    view_action = "members.view_tier_schemes"
    list_display = ["member", "tier", "status", "expires_on", "requested_by", "decided_by"]
    list_filter = ["status"]
    list_select_related = ["member", "tier", "requested_by", "decided_by"]
    readonly_fields = [f.name for f in TierOverride._meta.fields]

    def object_title(self, override: TierOverride) -> str:
        return f"{override.member.member_no} → {name_of(override.tier)}"

    def get_queryset(self, request):
        return super().get_queryset(request).filter(member__in=member_scope(user=request.user))


# --- segments and the points ledger ------------------------------------------------------------


class SegmentForm(forms.ModelForm):
    """The rules are checked here, next to their field, with the function the segment
    services use; the services check them again when they write (`refusal`)."""

    #: the reasons a segment service refused the posted values (set by `SegmentAdmin` when it
    #: shows the form again); they become the form's errors
    refusal: ValidationError | None = None

    class Meta:
        model = Segment
        fields = ["code", "name", "description", "department", "rules"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "rules" in self.fields:
            # the rules are code (JSON), the same in every language
            self.fields["rules"].widget.attrs["translate"] = "no"
            self.fields["rules"].help_text = format_html(
                '{} <code translate="no">{}</code>',
                _("A list of conditions, all of which must hold, e.g."),
                '[{"field": "lifecycle_stage", "op": "in", "value": ["DORMANT"]}]',
            )

    def clean_rules(self):
        try:
            return segment_rules_validate(self.cleaned_data.get("rules"))
        except ValidationError as exc:
            raise forms.ValidationError(exc.messages) from None

    def clean(self):
        cleaned = super().clean()
        if self.refusal is not None:
            reasons = (
                self.refusal.message_dict
                if hasattr(self.refusal, "error_dict")
                else {None: self.refusal.messages}
            )
            for field, messages_ in reasons.items():
                # a field not on the form (the rules, read-only once campaigns use them)
                self.add_error(field if field in self.fields else None, messages_)
        return cleaned


class _SegmentRefused(Exception):
    """A segment service refused the save; `SegmentAdmin.changeform_view` shows the form
    again with the reasons."""

    def __init__(self, reasons: ValidationError):
        self.reasons = reasons
        super().__init__(reasons)


def _kept(segment_code: str, users: list[tuple[str, list[str]]]) -> str:
    return _(
        "Segment %(segment)s is kept: %(users)s target it, and deleting it would widen them."
    ) % {
        "segment": segment_code,
        "users": segment_users_text(users),
    }


@admin.register(Segment)
class SegmentAdmin(MatrixModelAdmin):
    """Saved member segments. The live size is counted on the change page only (one count
    per segment would make the list as slow as the member table is large).

    Creating, changing and deleting go through `members.services.segments` (the author, the
    audit entry, the rules validated and frozen while launched campaigns use them); what the
    services refuse is shown as form errors or as a message, never as an error page.
    """

    view_action = "members.view_segments"
    change_action = "members.configure_segments"
    form = SegmentForm
    list_display = ["code", "name", "department", "created_by", "updated_at"]
    list_filter = ["department"]
    search_fields = ["code", "name"]
    list_select_related = ["department", "created_by"]
    actions = ["delete_selected"]

    def get_readonly_fields(self, request, obj=None):
        fields = ["created_by", "created_at", "updated_at"]
        if obj is None:
            return fields
        fields = ["live_size", "used_by", *fields]
        if segment_frozen_by(obj):
            fields.insert(0, "rules")  # part of what was approved: `segment_update` refuses
        return fields

    @admin.display(description=_("members matching now"))
    def live_size(self, segment: Segment) -> int | str:
        try:
            return Member.objects.filter(segment_filter(segment)).count()
        except (KeyError, TypeError, ValueError):  # rules saved before they were validated
            return _("the rules are not valid; correct them and save")

    @admin.display(description=_("used by"))
    def used_by(self, segment: Segment) -> str:
        users = segment_targeted_by(Segment.objects.filter(pk=segment.pk)).get(segment.code, [])
        return segment_users_text(users) or "-"

    # --- create and change: the services write, their refusals are form errors ---

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        refusal = getattr(request, "_segment_refusal", None)
        if refusal is None:
            return form
        return type(form)(form.__name__, (form,), {"refusal": refusal})

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except _SegmentRefused as refused:
            # The view's transaction is rolled back (nothing was written, no log entry);
            # the same POST is shown again with the service's reasons as the form's errors,
            # which keep it from being saved.
            request._segment_refusal = refused.reasons
            return super().changeform_view(request, object_id, form_url, extra_context)

    def save_model(self, request, obj: Segment, form, change) -> None:
        values = {
            name: form.cleaned_data[name]
            for name in SEGMENT_CONFIG_FIELDS
            if name in form.cleaned_data
        }
        try:
            if change:
                saved = segment_update(segment=obj, actor=request.user, changes=values)
            else:
                saved = segment_create(actor=request.user, data=values)
        except SegmentInUse as exc:
            raise _SegmentRefused(ValidationError({"rules": [str(exc)]})) from exc
        except ValidationError as exc:
            raise _SegmentRefused(exc) from exc
        # the admin goes on with its own instance (log entry, redirect): make it the row the
        # service wrote
        obj.pk = saved.pk
        obj._state.adding = False
        obj.refresh_from_db()

    # --- delete: through `segment_delete`, refused with a message while campaigns target it ---

    def delete_view(self, request, object_id, extra_context=None):
        segment = self.get_object(request, unquote(object_id))
        if segment is not None and self.has_delete_permission(request, segment):
            targeted = segment_targeted_by(Segment.objects.filter(pk=segment.pk))
            if targeted:
                return self._refuse_delete(
                    request, segment, _kept(segment.code, targeted[segment.code])
                )
        try:
            return super().delete_view(request, object_id, extra_context)
        except SegmentInUse as exc:  # a campaign took it up meanwhile; the log entry is undone
            return self._refuse_delete(request, segment, f"{segment.code}: {exc}")

    def _refuse_delete(self, request, segment: Segment, message: str):
        self.message_user(request, message, messages.ERROR)
        return redirect("admin:members_segment_change", segment.pk)

    def delete_model(self, request, obj: Segment) -> None:
        segment_delete(segment=obj, actor=request.user)

    def delete_queryset(self, request, queryset) -> None:
        for segment in queryset.order_by("pk"):
            segment_delete(segment=segment, actor=request.user)

    @admin.action(description=django_delete_selected.short_description, permissions=["delete"])
    def delete_selected(self, request, queryset):
        """Django's "delete selected" (a confirmation page, then the deletion) with each
        segment deleted by `segment_delete`; when any selected segment is targeted by a
        campaign, nothing is deleted and the message says which."""
        targeted = segment_targeted_by(queryset)
        if targeted:
            for segment_code, users in targeted.items():
                self.message_user(request, _kept(segment_code, users), messages.ERROR)
            self.message_user(
                request,
                _("Nothing was deleted; select only segments no campaign targets."),
                messages.WARNING,
            )
            return None
        try:
            with transaction.atomic():  # the log entries and deletions stand or fall together
                return django_delete_selected(self, request, queryset)
        except SegmentInUse as exc:  # a campaign took one up meanwhile
            self.message_user(
                request, _("Nothing was deleted: %(reason)s") % {"reason": exc}, messages.ERROR
            )
            return None


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

    def object_title(self, entry: PointsEntry) -> str:
        return f"{entry.member.member_no} {entry.get_kind_display()} {entry.points:,}"

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
