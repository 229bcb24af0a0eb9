"""API authentication: `Authorization: Token <key>` with the keys of `portal.models.ApiToken`.

A key is looked up by its SHA-256 digest (never compared in clear); a revoked or expired
token gets a 401 that says so. What a valid token may do is checked by `MatrixPermission`
(the user's roles and the token's scopes, portal/permissions.py).
"""

from __future__ import annotations

import hmac

from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from rest_framework.authentication import TokenAuthentication
from rest_framework.exceptions import AuthenticationFailed

from ..models import ApiToken, api_key_digest
from ..services import api_token_mark_used


class ApiTokenAuthentication(TokenAuthentication):
    """Accepts the keys of `ApiToken`s; `request.auth` is the token."""

    keyword = "Token"
    model = ApiToken

    def authenticate_credentials(self, key: str):
        digest = api_key_digest(key)
        token = ApiToken.objects.select_related("user").filter(key_digest=digest).first()
        if token is None or not hmac.compare_digest(token.key_digest, digest):
            raise AuthenticationFailed(_("Invalid token."))
        now = timezone.now()
        if token.is_revoked:
            raise AuthenticationFailed(
                _("This API token was revoked on %(date)s; ask an administrator for a new one.")
                % {"date": timezone.localtime(token.revoked_at).strftime("%Y-%m-%d %H:%M")},
                code="token_revoked",
            )
        if token.is_expired(now):
            raise AuthenticationFailed(
                _("This API token expired on %(date)s; ask an administrator for a new one.")
                % {"date": timezone.localtime(token.expires_at).strftime("%Y-%m-%d %H:%M")},
                code="token_expired",
            )
        if not token.user.is_active:
            raise AuthenticationFailed(_("User inactive or deleted."))
        api_token_mark_used(token=token, now=now)
        return token.user, token
