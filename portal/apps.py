from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps
from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

from .crypto import personal_keys


def personal_data_keys_check(app_configs, **kwargs) -> list[checks.CheckMessage]:
    """`PERSONAL_DATA_KEYS` must parse (every command and `check --deploy` say so at once,
    not the first request that stores a phone number)."""
    try:
        personal_keys()
    except ImproperlyConfigured as exc:
        return [checks.Error(str(exc), id="portal.E001")]
    return []


class PortalConfig(AppConfig):
    default = True
    name = "portal"
    verbose_name = _("Portal")

    def ready(self) -> None:
        checks.register(personal_data_keys_check, checks.Tags.security)


class PortalAdminConfig(admin_apps.AdminConfig):
    """The Django admin, on our site class (matrix-guarded, themed by django-unfold)."""

    default = False
    default_site = "portal.admin_base.PortalAdminSite"
