"""Template context shared by every portal page: the navigation the user may see."""

from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from portal.permissions import user_can

#: (url name, label, action required); shown only when the user may perform the action.
NAVIGATION = [
    ("home", _("Home"), "portal.view_home"),
    ("dashboard", _("Dashboard"), "portal.view_dashboard"),
    ("members:list", _("Customers"), "members.view_members"),
    ("members:feeds", _("Feeds"), "members.view_feeds"),
    ("approvals", _("Approvals"), "portal.view_approvals"),
    ("jobruns", _("Job runs"), "portal.view_jobruns"),
    ("audit", _("Audit trail"), "portal.view_audit"),
]


def navigation(request):
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"nav_items": []}
    items = [
        {"url": reverse(name), "label": label, "active": request.path == reverse(name)}
        for name, label, action in NAVIGATION
        if user_can(user, action)
    ]
    return {"nav_items": items, "can_admin": user_can(user, "portal.access_admin")}
