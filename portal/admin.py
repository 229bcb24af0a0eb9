from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.contrib.auth.models import Group
from django.utils.translation import gettext_lazy as _
from unfold.forms import AdminPasswordChangeForm, UserChangeForm, UserCreationForm

from .admin_base import MatrixModelAdmin
from .models import AuditEntry, Branch, Department, JobRun, User

admin.site.unregister(Group)


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
