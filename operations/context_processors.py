"""Template context shared by every portal page: the navigation the user may see, and the
notice of a tier scheme approved to take effect on a coming night."""

from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from members.selectors import tier_scheme_scheduled
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


def scheme_notice(request):
    """Until its effective night every page grades by the active scheme; this says when the
    approved one takes over (one indexed query, for signed-in users only)."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {"scheme_notice": tier_scheme_scheduled()}
