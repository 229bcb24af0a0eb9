"""Who may hold a browser session: staff, never a system integration account.

An account of the SYSTEM role (mobile banking and the like) calls the REST API with its API
token, within the token's scopes (`portal.api.authentication`, `portal.permissions`). It
has no usable password (seed_demo and migration 0009 set none), and even one set by hand
opens nothing:

- `StaffModelBackend` refuses it, so `authenticate()` — the portal's /login/, the admin's
  /admin/login/, `Client.login` — never returns it;
- `PortalAuthenticationForm` (both log-in pages) says why instead of "wrong password";
- `SystemAccountSessionMiddleware` ends a session that holds one anyway (opened before this
  rule, or by `login()` called in code) and refuses the request, before any view, DRF's
  `SessionAuthentication` included, reads `request.user`.

`is_system_account` is the one rule all three ask.
"""

from __future__ import annotations

from django import forms
from django.contrib.auth import get_user_model, logout
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.forms import AuthenticationForm
from django.http import HttpResponse, JsonResponse
from django.template.loader import render_to_string
from django.urls import Resolver404, resolve
from django.utils.translation import gettext_lazy as _

from .api.exceptions import is_api_request
from .choices import Role

__all__ = [
    "SYSTEM_ACCOUNT_SIGN_IN_REFUSED",
    "PortalAuthenticationForm",
    "StaffModelBackend",
    "SystemAccountSessionMiddleware",
    "is_system_account",
]

SYSTEM_ACCOUNT_SIGN_IN_REFUSED = _(
    "This is a system integration account: it signs in to the API with its token only."
)


def is_system_account(user) -> bool:
    """True for an account of the SYSTEM role: API token only, never a browser session."""
    return bool(getattr(user, "is_authenticated", False)) and user.has_role(Role.SYSTEM)


class StaffModelBackend(ModelBackend):
    """Django's username + password backend, refusing system integration accounts whatever
    their password (`authenticate()` returns None for them). A session that holds one anyway
    is refused by `SystemAccountSessionMiddleware`, which says why."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        user = super().authenticate(request, username=username, password=password, **kwargs)
        return None if is_system_account(user) else user


class PortalAuthenticationForm(AuthenticationForm):
    """The log-in form of /login/ and /admin/login/: a system integration account is told
    that it signs in with its token, whatever password was typed."""

    error_messages = {
        **AuthenticationForm.error_messages,
        "system_account": SYSTEM_ACCOUNT_SIGN_IN_REFUSED,
    }

    def clean(self):
        username = self.cleaned_data.get("username")
        if username:
            user_model = get_user_model()
            account = user_model._default_manager.filter(
                **{user_model.USERNAME_FIELD: username}
            ).first()
            if account is not None and is_system_account(account):
                raise forms.ValidationError(
                    self.error_messages["system_account"], code="system_account"
                )
        return super().clean()

    @property
    def system_account_refused(self) -> bool:
        """For the template: the refusal is the system account's, not a wrong password."""
        return self.has_error(forms.forms.NON_FIELD_ERRORS, "system_account")


def _is_admin_page(request) -> bool:
    try:
        return resolve(request.path_info).namespace == "admin"
    except Resolver404:
        return False


class SystemAccountSessionMiddleware:
    """Right after AuthenticationMiddleware: a session of a system integration account is
    ended (logged out) and its request refused with 403 — JSON on /api/, a page elsewhere;
    the admin sends it to its log-in page — so it can neither post events nor redeem grants
    outside its token's scopes, nor outlive a revoked token."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if is_system_account(getattr(request, "user", None)):
            logout(request)
            if not _is_admin_page(request):
                return self._refusal(request)
            # the admin, as for anyone logged out: to its log-in page, which refuses it
        return self.get_response(request)

    @staticmethod
    def _refusal(request) -> HttpResponse:
        if is_api_request(request):
            return JsonResponse(
                {"detail": str(SYSTEM_ACCOUNT_SIGN_IN_REFUSED), "code": "system_account_session"},
                status=403,
            )
        page = render_to_string(
            "registration/system_account.html",
            {"message": SYSTEM_ACCOUNT_SIGN_IN_REFUSED},
            request=request,
        )
        return HttpResponse(page, status=403)
