"""Response headers every page and API answer carries: the Content-Security-Policy's
per-area allowances, Permissions-Policy, and `Cache-Control: no-store` on customer data.

The policy itself is `CONTENT_SECURITY_POLICY` in config/settings.py, written into each
response by django-csp's `CSPMiddleware`: scripts only from the portal's own origin or an
inline block carrying the request's nonce (`{{ request.csp_nonce }}`), no plugins, no
framing, forms posting to the portal only. `SecurityHeadersMiddleware` sits just inside
`CSPMiddleware` (after it in MIDDLEWARE), so what it decides here is in the header.

Two third-party interfaces cannot run under that policy as shipped, and get exactly what
they need, on their own pages only (`THIRD_PARTY_UI_ALLOWANCES`):

- the admin (django-unfold): Alpine.js evaluates its `x-data` / `x-on` attributes with
  `new Function` ('unsafe-eval'; unfold ships no CSP build of Alpine) and the theme writes
  its colours in an inline `<style>` ('unsafe-inline' for style elements);
- Swagger UI (/api/docs/): none beyond the base policy; its start-up script and style are
  inline blocks given the nonce by templates/drf_spectacular/swagger_ui.html.

Styles, decided: `style=` attributes are allowed everywhere ('unsafe-inline' in
`style-src-attr`: the dashboard's data-driven colours and unfold's widgets use them, and an
attribute style can neither load a script nor select other elements to read them);
`<style>` elements and style sheets only from the portal (plus the nonce) outside the admin.

No-store: every /api/ answer and every response to a logged-in user carries
`Cache-Control: no-store, private` and `Pragma: no-cache`, so no browser, proxy or shared
computer keeps a copy of a customer's data. Static files (the portal's CSS and scripts,
nothing personal) stay cacheable; the log-in page is never cached either (Django's
`never_cache`: it holds the CSRF token), the other anonymous pages (404, lockout) may be.
"""

from __future__ import annotations

from csp.constants import NONCE, SELF, UNSAFE_EVAL, UNSAFE_INLINE
from django.conf import settings
from django.utils.cache import patch_cache_control

from .api.exceptions import is_api_request

__all__ = [
    "PERMISSIONS_POLICY",
    "THIRD_PARTY_UI_ALLOWANCES",
    "SecurityHeadersMiddleware",
    "carries_customer_data",
]

#: Browser features no page of the portal uses: denied to it and to anything it embeds
#: (only features Chromium knows, or it logs an error for each unknown one).
PERMISSIONS_POLICY = ", ".join(
    f"{feature}=()"
    for feature in (
        "accelerometer",
        "autoplay",
        "camera",
        "display-capture",
        "encrypted-media",
        "geolocation",
        "gyroscope",
        "hid",
        "magnetometer",
        "microphone",
        "midi",
        "payment",
        "publickey-credentials-get",
        "screen-wake-lock",
        "serial",
        "usb",
        "xr-spatial-tracking",
    )
)

#: URL namespace or name -> the directives replaced on its pages (see the module docstring).
THIRD_PARTY_UI_ALLOWANCES: dict[str, dict[str, list]] = {
    "admin": {
        "script-src": [SELF, NONCE, UNSAFE_EVAL],
        "style-src-elem": [SELF, UNSAFE_INLINE],
    },
}


def carries_customer_data(request) -> bool:
    """True for what no cache may keep: every API answer, every page of a logged-in user
    (static files aside: they hold no personal data)."""
    if is_api_request(request):
        return True
    static_url = "/" + settings.STATIC_URL.lstrip("/")
    if request.path_info.startswith(static_url):
        return False
    user = getattr(request, "user", None)
    return bool(user is not None and user.is_authenticated)


def _third_party_ui(request) -> str | None:
    match = getattr(request, "resolver_match", None)
    if match is None:
        return None
    for name in (match.namespace, match.url_name):
        if name in THIRD_PARTY_UI_ALLOWANCES:
            return name
    return None


class SecurityHeadersMiddleware:
    """Just after `csp.middleware.CSPMiddleware` in MIDDLEWARE."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        area = _third_party_ui(request)
        if area is not None and getattr(response, "_csp_replace", None) is None:
            response._csp_replace = THIRD_PARTY_UI_ALLOWANCES[area]
        response.headers.setdefault("Permissions-Policy", PERMISSIONS_POLICY)
        if carries_customer_data(request):
            patch_cache_control(response, no_store=True, private=True)
            response.headers["Pragma"] = "no-cache"
        return response
