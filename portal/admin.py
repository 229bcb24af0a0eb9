from datetime import datetime, time, timedelta

from axes.admin import AccessAttemptAdmin as AxesAccessAttemptAdmin
from axes.admin import AccessFailureLogAdmin as AxesAccessFailureLogAdmin
from axes.admin import AccessLogAdmin as AxesAccessLogAdmin
from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django import forms
from django.apps import apps
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from django.utils.translation import gettext_lazy as _
from rest_framework.authtoken.models import TokenProxy
from unfold.admin import ModelAdmin
from unfold.decorators import action as unfold_action
from unfold.enums import ActionVariant
from unfold.forms import (
    AdminPasswordChangeForm,
    BaseDialogForm,
    UserChangeForm,
    UserCreationForm,
)
from unfold.widgets import (
    UnfoldAdminCheckboxSelectMultipleWidget,
    UnfoldAdminSelectWidget,
    UnfoldAdminSingleDateWidget,
    UnfoldAdminTextareaWidget,
    UnfoldAdminTextInputWidget,
)

from .admin_base import MatrixModelAdmin, shown_name
from .audit import action_label, change_field_label, masked_changes, object_type_label
from .choices import ApiScope
from .display import code_html, person_name
from .errors import DomainError, form_add_domain_error
from .jobs import jobrun_progress_text
from .middleware import client_ip
from .models import ApiToken, AuditEntry, Branch, Department, JobRun, User
from .permissions import user_can
from .services import api_token_issue, api_token_revoke, audit_record


def identifier_html(value) -> str:
    """A login name, an address, a path or a browser's user agent: data shown as it is,
    the same in every language (`translate="no"`)."""
    if value in (None, ""):
        return "—"
    return format_html('<span translate="no">{}</span>', value)


admin.site.unregister(Group)
if admin.site.is_registered(TokenProxy):
    # DRF's clear-text authtoken keys no longer authenticate (see ApiToken); don't offer them.
    admin.site.unregister(TokenProxy)


# --- login throttling (django-axes): its lists in the portal's admin, named in our words ---

apps.get_app_config("axes").verbose_name = _("Sign-in protection")


class _AccessAdminMixin:
    """django-axes' lists, themed, their data values (login names, addresses, paths, user
    agents) shown as they are. A row holds nothing the list does not show: no detail page."""

    list_display_links = None

    @admin.display(description=_("username"), ordering="username")
    def username_shown(self, row) -> str:
        return identifier_html(row.username)

    @admin.display(description=_("IP address"), ordering="ip_address")
    def ip_shown(self, row) -> str:
        return identifier_html(row.ip_address)

    @admin.display(description=_("browser"), ordering="user_agent")
    def user_agent_shown(self, row) -> str:
        return identifier_html(row.user_agent)

    @admin.display(description=_("path"), ordering="path_info")
    def path_shown(self, row) -> str:
        return identifier_html(row.path_info)

    def has_change_permission(self, request, obj=None) -> bool:
        return False


for _model in (AccessAttempt, AccessLog, AccessFailureLog):
    if admin.site.is_registered(_model):
        admin.site.unregister(_model)


@admin.register(AccessAttempt)
class AccessAttemptAdmin(_AccessAdminMixin, AxesAccessAttemptAdmin, ModelAdmin):
    list_display = [
        "attempt_time",
        "ip_shown",
        "user_agent_shown",
        "username_shown",
        "path_shown",
        "failures_since_start",
    ]
    list_filter = ["attempt_time"]

    def has_delete_permission(self, request, obj=None) -> bool:
        # a lockout is lifted by deleting its attempt (docs/operations.md)
        return super().has_delete_permission(request, obj)


@admin.register(AccessLog)
class AccessLogAdmin(_AccessAdminMixin, AxesAccessLogAdmin, ModelAdmin):
    list_display = [
        "attempt_time",
        "logout_time",
        "ip_shown",
        "username_shown",
        "user_agent_shown",
        "path_shown",
    ]
    list_filter = ["attempt_time", "logout_time"]


@admin.register(AccessFailureLog)
class AccessFailureLogAdmin(_AccessAdminMixin, AxesAccessFailureLogAdmin, ModelAdmin):
    list_display = [
        "attempt_time",
        "ip_shown",
        "username_shown",
        "user_agent_shown",
        "path_shown",
        "locked_out",
    ]
    list_filter = ["attempt_time", "locked_out"]


@admin.register(Department)
class DepartmentAdmin(MatrixModelAdmin):
    change_action = "portal.manage_organisation"
    list_display = ["name", "code_shown"]
    search_fields = ["code", "name"]

    @admin.display(description=_("code"), ordering="code")
    def code_shown(self, department: Department) -> str:
        return code_html(department.code)


@admin.register(Branch)
class BranchAdmin(MatrixModelAdmin):
    change_action = "portal.manage_organisation"
    list_display = ["name", "code_shown", "level", "parent"]
    list_filter = ["level"]
    search_fields = ["code", "name"]

    @admin.display(description=_("code"), ordering="code")
    def code_shown(self, branch: Branch) -> str:
        return code_html(branch.code)


@admin.register(User)
class UserAdmin(BaseUserAdmin, MatrixModelAdmin):
    view_action = "portal.manage_organisation"
    change_action = "portal.manage_organisation"
    form = UserChangeForm
    add_form = UserCreationForm
    change_password_form = AdminPasswordChangeForm
    list_display = ["full_name", "username_shown", "branch", "department", "is_active"]
    list_filter = ["groups", "branch", "department", "is_active"]
    # Roles (groups) are the permission model: no per-user permission picker, whose options
    # are English strings stored in the database.
    fieldsets = (
        (None, {"fields": ("username", "password")}),
        (_("Personal info"), {"fields": ("last_name", "first_name", "email")}),
        (
            _("Roles"),
            {"fields": ("is_active", "is_staff", "is_superuser", "groups")},
        ),
        (_("Organisation"), {"fields": ("branch", "department")}),
        (_("Important dates"), {"fields": ("last_login", "date_joined")}),
    )
    filter_horizontal = ()

    @admin.display(description=_("full name"), ordering="last_name")
    def full_name(self, user: User) -> str:
        return person_name(user)

    @admin.display(description=_("username"), ordering="username")
    def username_shown(self, user: User) -> str:
        return identifier_html(user.username)

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        field = super().formfield_for_manytomany(db_field, request, **kwargs)
        if db_field.name == "groups":
            field.label_from_instance = shown_name  # a role by its name in the language
            field.help_text = _("What the user may do comes from these roles.")
        return field

    def save_related(self, request, form, formsets, change):
        """Role changes are security changes: each one is an audit entry naming the roles
        granted and withdrawn (the group table itself has no history trigger)."""
        before = set(form.instance.groups.values_list("name", flat=True)) if change else set()
        super().save_related(request, form, formsets, change)
        after = set(form.instance.groups.values_list("name", flat=True))
        if before != after:
            audit_record(
                actor=request.user,
                action="user.roles",
                obj=form.instance,
                changes={"granted": sorted(after - before), "withdrawn": sorted(before - after)},
                ip=client_ip(request),
            )


class _AuditLabelFilter(admin.SimpleListFilter):
    """A filter over a code column of the audit trail whose options read as words."""

    field: str

    def lookups(self, request, model_admin):
        codes = (
            AuditEntry.objects.exclude(**{self.field: ""})
            .order_by(self.field)
            .values_list(self.field, flat=True)
            .distinct()
        )
        return [(code, self.label(code)) for code in codes]

    def queryset(self, request, queryset):
        return queryset.filter(**{self.field: self.value()}) if self.value() else queryset


class AuditActionFilter(_AuditLabelFilter):
    title = _("action")
    parameter_name = field = "action"
    label = staticmethod(action_label)


class AuditObjectTypeFilter(_AuditLabelFilter):
    title = _("object type")
    parameter_name = field = "object_type"
    label = staticmethod(object_type_label)


@admin.register(AuditEntry)
class AuditEntryAdmin(MatrixModelAdmin):
    view_action = "portal.view_audit"
    list_display = ["at", "actor", "action_shown", "object_type_shown", "object_repr", "ip_shown"]
    list_filter = [AuditActionFilter, AuditObjectTypeFilter]
    search_fields = ["object_repr", "object_id", "actor__username"]
    list_select_related = ["actor"]
    fields = [
        "at",
        "actor",
        "action_shown",
        "object_type_shown",
        "object_id",
        "object_repr",
        "changes_shown",
        "reason",
        "ip_shown",
    ]
    readonly_fields = fields

    def object_title(self, entry: AuditEntry) -> str:
        return f"{entry.at:%Y-%m-%d %H:%M} {action_label(entry.action)}"

    @admin.display(description=_("action"), ordering="action")
    def action_shown(self, entry: AuditEntry) -> str:
        return action_label(entry.action)

    @admin.display(description=_("object type"), ordering="object_type")
    def object_type_shown(self, entry: AuditEntry) -> str:
        return object_type_label(entry.object_type) if entry.object_type else "—"

    @admin.display(description=_("IP address"), ordering="ip")
    def ip_shown(self, entry: AuditEntry) -> str:
        return identifier_html(entry.ip)

    @admin.display(description=_("changes"))
    def changes_shown(self, entry: AuditEntry) -> str:
        rows = masked_changes(entry.changes)
        if not rows:
            return "—"
        return format_html_join(
            mark_safe("<br>"),
            "{}: {}{}",
            (
                (
                    change_field_label(entry.object_type, name) if name else "",
                    f"{old} → " if old else "",
                    new,
                )
                for name, old, new in rows
            ),
        )


@admin.register(JobRun)
class JobRunAdmin(MatrixModelAdmin):
    view_action = "portal.view_jobruns"
    list_display = [
        "kind_shown",
        "business_date",
        "status",
        "started_at",
        "finished_at",
        "progress_shown",
    ]
    list_filter = ["kind", "status"]
    fields = [
        "kind_shown",
        "business_date",
        "status",
        ("started_at", "finished_at"),
        "progress_shown",
        "counts_shown",
        "message",
        "error",
        "triggered_by",
        "runner_shown",
        "heartbeat_at",
    ]
    readonly_fields = [
        "kind_shown",
        "business_date",
        "status",
        "started_at",
        "finished_at",
        "progress_shown",
        "counts_shown",
        "message",
        "error",
        "triggered_by",
        "runner_shown",
        "heartbeat_at",
    ]

    def object_title(self, run: JobRun) -> str:
        return f"{run.kind} {run.business_date:%Y-%m-%d} {run.get_status_display()}"

    @admin.display(description=_("kind"), ordering="kind")
    def kind_shown(self, run: JobRun) -> str:
        return code_html(run.kind)

    @admin.display(description=_("progress"))
    def progress_shown(self, run: JobRun) -> str:
        return jobrun_progress_text(run.progress) or "—"

    @admin.display(description=_("counts"))
    def counts_shown(self, run: JobRun) -> str:
        if not isinstance(run.counts, dict) or not run.counts:
            return "—"
        return format_html_join(
            mark_safe("<br>"),
            "{}: {}",
            (
                (code_html(key), f"{value:,}" if isinstance(value, int) else value)
                for key, value in run.counts.items()
            ),
        )

    @admin.display(description=_("run by"))
    def runner_shown(self, run: JobRun) -> str:
        return identifier_html(run.runner)


# --- API tokens: issued and revoked through their services, by administrators only ---

MANAGE_API_TOKENS = "portal.manage_api_tokens"


class ApiTokenIssueForm(forms.Form):
    name = forms.CharField(
        label=_("Client system"),
        max_length=100,
        widget=UnfoldAdminTextInputWidget,
        help_text=_("Which system will hold the key, e.g. “Mobile banking”."),
    )
    user = forms.ModelChoiceField(
        label=_("Acts as user"),
        queryset=User.objects.filter(is_active=True).order_by("username"),
        widget=UnfoldAdminSelectWidget,
        help_text=_("The token can do no more than this user's roles allow."),
    )
    scopes = forms.MultipleChoiceField(
        label=_("Scopes"),
        choices=ApiScope.choices,
        widget=UnfoldAdminCheckboxSelectMultipleWidget,
    )
    valid_until = forms.DateField(
        label=_("Valid until (inclusive)"),
        required=False,
        widget=UnfoldAdminSingleDateWidget,
        help_text=_("Empty: valid until revoked."),
    )

    def expires_at(self) -> datetime | None:
        day = self.cleaned_data.get("valid_until")
        if day is None:
            return None
        return timezone.make_aware(datetime.combine(day + timedelta(days=1), time.min))


class ApiTokenRevokeForm(BaseDialogForm):
    reason = forms.CharField(
        label=_("Why is it revoked?"),
        max_length=255,
        required=False,
        widget=UnfoldAdminTextareaWidget,
    )


@admin.register(ApiToken)
class ApiTokenAdmin(MatrixModelAdmin):
    """API tokens of the client systems. A token is issued on the add page (its key is shown
    there once) and revoked, never edited or deleted."""

    view_action = MANAGE_API_TOKENS
    change_action = MANAGE_API_TOKENS
    list_display = [
        "name",
        "prefix",
        "user",
        "scope_list",
        "status",
        "created_at",
        "expires_at",
        "last_used_at",
    ]
    list_filter = ["user"]
    search_fields = ["name", "prefix", "user__username"]
    list_select_related = ["user"]
    fields = [
        "name",
        "prefix",
        "user",
        "scope_list",
        "status",
        ("created_by", "created_at"),
        "expires_at",
        ("revoked_by", "revoked_at"),
        "last_used_at",
    ]
    readonly_fields = [
        "name",
        "prefix",
        "user",
        "scope_list",
        "status",
        "created_by",
        "created_at",
        "expires_at",
        "revoked_by",
        "revoked_at",
        "last_used_at",
    ]
    actions = ["revoke_selected"]
    actions_detail = ["revoke_detail"]

    @admin.display(description=_("scopes"))
    def scope_list(self, token: ApiToken) -> str:
        return ", ".join(
            str(ApiScope(scope).label) if scope in ApiScope.values else scope
            for scope in token.scopes
        )

    @admin.display(description=_("status"))
    def status(self, token: ApiToken) -> str:
        if token.is_revoked:
            return _("revoked")
        if token.is_expired(timezone.now()):
            return _("expired")
        return _("active")

    def has_change_permission(self, request, obj=None) -> bool:
        return False  # nothing about a token is edited; it is revoked (detail action)

    def has_view_permission(self, request, obj=None) -> bool:
        return user_can(request.user, MANAGE_API_TOKENS)

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # revoked tokens stay, with who revoked them

    def has_revoke_permission(self, request, obj=None) -> bool:
        return user_can(request.user, MANAGE_API_TOKENS)

    def add_view(self, request, form_url="", extra_context=None):
        """Issue a token: the form, then a page that shows the new key once."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = ApiTokenIssueForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                token, key = api_token_issue(
                    user=form.cleaned_data["user"],
                    name=form.cleaned_data["name"],
                    scopes=form.cleaned_data["scopes"],
                    expires_at=form.expires_at(),
                    actor=request.user,
                    ip=client_ip(request),
                )
            except DomainError as exc:
                form_add_domain_error(form, exc)
            else:
                # shown once, in this response (admin_view marks it never cached), not as a
                # message that would travel through the session
                return render(
                    request,
                    "portal/admin/apitoken_issued.html",
                    {**self._context(request, _("API token issued")), "token": token, "key": key},
                )
        return render(
            request,
            "portal/admin/apitoken_issue.html",
            {**self._context(request, _("Issue an API token")), "form": form},
        )

    def _context(self, request, title) -> dict:
        return {**self.admin_site.each_context(request), "title": title, "opts": self.model._meta}

    def _revoke(self, request, tokens, reason: str) -> int:
        ip = client_ip(request)
        return sum(
            api_token_revoke(token=token, actor=request.user, reason=reason, ip=ip)
            for token in tokens
        )

    @admin.action(description=_("Revoke selected tokens"), permissions=["revoke"])
    def revoke_selected(self, request, queryset):
        revoked = self._revoke(request, queryset, reason="")
        self.message_user(request, _("%d token(s) revoked.") % revoked, messages.SUCCESS)

    @unfold_action(
        description=_("Revoke"),
        url_path="revoke",
        permissions=["revoke"],
        variant=ActionVariant.DANGER,
        dialog={
            "title": _("Revoke this API token"),
            "description": _("Its key is refused from now on; this cannot be undone."),
            "form_class": ApiTokenRevokeForm,
            "form_submit_text": _("Revoke"),
        },
    )
    def revoke_detail(self, request, form, object_id):
        token = self.get_object(request, object_id)
        if token is None:
            raise PermissionDenied
        if self._revoke(request, [token], reason=form.cleaned_data["reason"]):
            self.message_user(request, _("%s revoked.") % token, messages.SUCCESS)
        else:
            self.message_user(request, _("%s was already revoked.") % token, messages.WARNING)
        url = reverse("admin:portal_apitoken_change", args=[token.pk])
        if request.headers.get("HX-Request"):  # the dialog posts with htmx: reload the page
            return HttpResponse(headers={"HX-Redirect": url})
        return redirect(url)
