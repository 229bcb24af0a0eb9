from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps
from django.utils.translation import gettext_lazy as _


class PortalConfig(AppConfig):
    default = True
    name = "portal"
    verbose_name = _("Portal")


class PortalAdminConfig(admin_apps.AdminConfig):
    """The Django admin, on our site class (matrix-guarded, themed by django-unfold)."""

    default = False
    default_site = "portal.admin_base.PortalAdminSite"
