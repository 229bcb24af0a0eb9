"""Admin plumbing: the themed admin site and model admins guarded by the permission matrix."""

from unfold.admin import ModelAdmin
from unfold.sites import UnfoldAdminSite

from .accounts import PortalAuthenticationForm
from .permissions import user_can


class PortalAdminSite(UnfoldAdminSite):
    """Entry to the admin needs the `portal.access_admin` action, not `is_staff`."""

    #: any active staff user may log in (`has_permission` decides); a system integration
    #: account is refused, with the reason (portal.accounts)
    login_form = PortalAuthenticationForm

    def has_permission(self, request) -> bool:
        return request.user.is_active and user_can(request.user, "portal.access_admin")


class MatrixModelAdmin(ModelAdmin):
    """A model admin whose view / change rights come from the permission matrix.

    `view_action` lets a role see the list; `change_action` (None = read-only for everyone)
    lets it add, change and delete.
    """

    view_action: str = "portal.access_admin"
    change_action: str | None = None

    def has_module_permission(self, request) -> bool:
        return self.has_view_permission(request)

    def has_view_permission(self, request, obj=None) -> bool:
        return user_can(request.user, self.view_action) or self.has_change_permission(request)

    def has_add_permission(self, request) -> bool:
        return self.change_action is not None and user_can(request.user, self.change_action)

    def has_change_permission(self, request, obj=None) -> bool:
        return self.change_action is not None and user_can(request.user, self.change_action)

    def has_delete_permission(self, request, obj=None) -> bool:
        return self.has_change_permission(request, obj)


class MatrixInlineMixin:
    """Inline rights from the matrix: view with `view_action`, edit with `change_action`,
    and only while the parent object `is_editable(obj)`."""

    view_action: str = "portal.access_admin"
    change_action: str | None = None

    def is_editable(self, obj) -> bool:
        return True

    def has_view_permission(self, request, obj=None) -> bool:
        return user_can(request.user, self.view_action)

    def has_change_permission(self, request, obj=None) -> bool:
        return (
            self.change_action is not None
            and user_can(request.user, self.change_action)
            and (obj is None or self.is_editable(obj))
        )

    def has_add_permission(self, request, obj=None) -> bool:
        return self.has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None) -> bool:
        return self.has_change_permission(request, obj)
