from datetime import datetime, time, timedelta

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from rest_framework.authtoken.models import TokenProxy
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

from .admin_base import MatrixModelAdmin
from .choices import ApiScope
from .errors import DomainError, form_add_domain_error
from .middleware import client_ip
from .models import ApiToken, AuditEntry, Branch, Department, JobRun, User
from .permissions import user_can
from .services import api_token_issue, api_token_revoke, audit_record

admin.site.unregister(Group)
if admin.site.is_registered(TokenProxy):
    # DRF's clear-text authtoken keys no longer authenticate (see ApiToken); don't offer them.
    admin.site.unregister(TokenProxy)


@admin.register(Department)
class DepartmentAdmin(MatrixModelAdmin):
    change_action = "portal.manage_organisation"
    list_display = ["code", "name"]
    search_fields = ["code", "name"]


@admin.register(Branch)
class BranchAdmin(MatrixModelAdmin):
    change_action = "portal.manage_organisation"
    list_display = ["code", "name", "level", "parent", "path"]
    list_filter = ["level"]
    search_fields = ["code", "name"]


@admin.register(User)
class UserAdmin(BaseUserAdmin, MatrixModelAdmin):
    view_action = "portal.manage_organisation"
    change_action = "portal.manage_organisation"
    form = UserChangeForm
    add_form = UserCreationForm
    change_password_form = AdminPasswordChangeForm
    list_display = ["username", "first_name", "last_name", "branch", "department", "is_active"]
    list_filter = ["groups", "branch", "department", "is_active"]
    fieldsets = (
        *BaseUserAdmin.fieldsets,
        (_("Organisation"), {"fields": ("branch", "department")}),
    )

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


@admin.register(AuditEntry)
class AuditEntryAdmin(MatrixModelAdmin):
    view_action = "portal.view_audit"
    list_display = ["at", "actor", "action", "object_type", "object_repr", "ip"]
    list_filter = ["action", "object_type"]
    search_fields = ["object_repr", "object_id", "actor__username"]
    readonly_fields = [f.name for f in AuditEntry._meta.fields]


@admin.register(JobRun)
class JobRunAdmin(MatrixModelAdmin):
    view_action = "portal.view_jobruns"
    list_display = ["kind", "business_date", "status", "started_at", "finished_at", "progress"]
    list_filter = ["kind", "status"]
    readonly_fields = [f.name for f in JobRun._meta.fields]


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
        return ", ".join(token.scopes)

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
