"""The permission matrix: which role may perform which action. One table, tested cell by cell.

Object-level scoping (an account manager sees only their own customers) lives in
`members.selectors.member_scope`; this table answers "may this role do this at all".
Every view and API endpoint names one action from this table. An API token is further
limited to its scopes: `TOKEN_SCOPE_FOR_ACTION` says which scope each API action needs.
"""

from __future__ import annotations

import rules
from django.utils.translation import gettext as _
from rest_framework.exceptions import PermissionDenied
from rest_framework.permissions import SAFE_METHODS, BasePermission

from .choices import ApiScope, Role
from .models import ApiToken

AM = Role.ACCOUNT_MANAGER
BM = Role.BRANCH_MANAGER
PO = Role.PRODUCT_OPERATOR
BA = Role.BUDGET_APPROVER
RA = Role.RISK_AUDITOR
AD = Role.ADMINISTRATOR
SYS = Role.SYSTEM

STAFF_ROLES = frozenset({AM, BM, PO, BA, RA, AD})

#: action -> roles allowed. Superusers are allowed everything.
PERMISSION_MATRIX: dict[str, frozenset[Role]] = {
    # Portal pages
    "portal.view_home": STAFF_ROLES,
    "portal.view_jobruns": frozenset({BM, PO, RA, AD}),
    "portal.rerun_job": frozenset({AD}),
    "portal.view_audit": frozenset({RA, AD}),
    # The KPI dashboard: bank-wide aggregates from the nightly snapshot, no personal data
    "portal.view_dashboard": frozenset({BM, PO, BA, RA, AD}),
    # Maker-checker: everyone sees their own requests and those they may decide
    "portal.view_approvals": STAFF_ROLES,
    # Deciding needs the approving role of the request's kind too (portal.approvals)
    "portal.decide_approvals": STAFF_ROLES,
    # Members
    "members.view_members": frozenset({AM, BM, PO, RA, AD}),
    "members.reveal_personal_data": frozenset({AM, BM, RA}),
    "members.view_member_centre": frozenset({AM, BM, PO, RA, AD, SYS}),
    "members.export_members": frozenset({BM, PO, RA}),
    "members.record_opt_out": frozenset({AM, BM}),
    "members.write_notes": frozenset({AM, BM}),
    "members.request_tier_override": frozenset({AM, BM}),
    "members.approve_tier_override": frozenset({BM}),
    "members.view_tier_schemes": frozenset({PO, BA, RA, AD, BM}),
    "members.simulate_tier_scheme": frozenset({PO, AD}),
    "members.configure_tier_schemes": frozenset({PO, AD}),
    "members.approve_tier_scheme": frozenset({PO, AD}),
    # Benefits and budgets
    "benefits.redeem_grant": frozenset({AM, BM, SYS}),
    "benefits.grant_manually": frozenset({AM, BM}),
    "benefits.approve_manual_grant": frozenset({BA}),
    "benefits.leave_feedback": frozenset({AM, BM}),
    "benefits.view_benefits": frozenset({PO, BA, RA, AD, BM}),
    "benefits.configure_benefits": frozenset({PO, AD}),
    "benefits.view_budgets": frozenset({PO, BA, RA, AD}),
    "benefits.configure_budgets": frozenset({BA, AD}),
    "benefits.approve_budget": frozenset({BA}),
    # Campaigns, tasks, segments and member events
    "campaigns.view_campaigns": frozenset({BM, PO, BA, RA, AD}),
    "campaigns.configure_campaigns": frozenset({PO, AD}),
    "campaigns.approve_campaign": frozenset({BA}),
    "campaigns.operate_campaign": frozenset({PO, AD}),
    "campaigns.post_events": frozenset({SYS}),
    "campaigns.view_events": frozenset({PO, RA, AD}),
    "members.view_segments": frozenset({BM, PO, BA, RA, AD}),
    "members.configure_segments": frozenset({PO, AD}),
    # Feeds from the data warehouse
    "members.view_feeds": frozenset({PO, RA, AD}),
    "members.import_feed": frozenset({PO, AD}),
    # Django admin (configuration UI)
    "portal.access_admin": frozenset({PO, BA, RA, AD}),
    "portal.manage_organisation": frozenset({AD}),
    "portal.manage_api_tokens": frozenset({AD}),
}

#: action -> the scope an API token needs for it (on top of its user's roles). An action
#: missing here is refused to every token; browser sessions are not scoped.
TOKEN_SCOPE_FOR_ACTION: dict[str, ApiScope] = {
    "campaigns.post_events": ApiScope.EVENTS_WRITE,
    "members.view_member_centre": ApiScope.MEMBERS_READ,
    "members.view_members": ApiScope.MEMBERS_READ,
    "benefits.redeem_grant": ApiScope.GRANTS_REDEEM,
    "campaigns.view_campaigns": ApiScope.CONFIG_READ,
    "members.view_segments": ApiScope.CONFIG_READ,
    "benefits.view_benefits": ApiScope.CONFIG_READ,
    "benefits.view_budgets": ApiScope.CONFIG_READ,
    "campaigns.configure_campaigns": ApiScope.CONFIG_WRITE,
    "campaigns.approve_campaign": ApiScope.CONFIG_WRITE,
    "campaigns.operate_campaign": ApiScope.CONFIG_WRITE,
    "members.configure_segments": ApiScope.CONFIG_WRITE,
    "benefits.configure_benefits": ApiScope.CONFIG_WRITE,
    "benefits.configure_budgets": ApiScope.CONFIG_WRITE,
    "portal.view_approvals": ApiScope.CONFIG_READ,
    "portal.decide_approvals": ApiScope.CONFIG_WRITE,
}


def roles_allowed(action: str) -> frozenset[Role]:
    try:
        return PERMISSION_MATRIX[action]
    except KeyError:
        raise KeyError(f"Unknown action {action!r}: add it to PERMISSION_MATRIX.") from None


def user_can(user, action: str) -> bool:
    """True when `user` holds a role allowed to perform `action` (or is a superuser)."""
    allowed = roles_allowed(action)
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return False
    if user.is_superuser:
        return True
    return any(user.has_role(role) for role in allowed)


def _matrix_predicate(action: str) -> rules.Predicate:
    def allowed(user) -> bool:
        return user_can(user, action)

    return rules.predicate(allowed, name=action)


def _register_rules() -> None:
    """Expose every action as a Django permission, so `user.has_perm(action)` and
    `{% if perms... %}` follow the same table."""
    for action in PERMISSION_MATRIX:
        rules.set_perm(action, _matrix_predicate(action))


_register_rules()


def token_scope_check(token, action: str) -> None:
    """Raise a 403 naming the missing scope unless the API token `token` may be used for
    `action`."""
    needed = TOKEN_SCOPE_FOR_ACTION.get(action)
    if needed is None:
        raise PermissionDenied(
            _("API tokens cannot be used for %(action)s.") % {"action": action},
            code="not_available_to_tokens",
        )
    if not token.has_scope(needed):
        raise PermissionDenied(
            _("This API token lacks the scope %(scope)s (needed for %(action)s).")
            % {"scope": repr(needed.value), "action": action},
            code="missing_scope",
        )


def api_action(request, view) -> str:
    """The matrix action an API request needs: reads the view's `action_required`, writes
    its `write_action_required` (a view without one needs `action_required` for writes)."""
    if request.method in SAFE_METHODS or not hasattr(view, "write_action_required"):
        return view.action_required
    return view.write_action_required


class MatrixPermission(BasePermission):
    """DRF permission: the user's roles must allow the request's action (`api_action`), and
    a request made with an API token needs the token scope of that action as well."""

    def has_permission(self, request, view) -> bool:
        action = api_action(request, view)
        if not user_can(request.user, action):
            return False
        token = getattr(request, "auth", None)
        if isinstance(token, ApiToken):
            token_scope_check(token, action)
        return True
