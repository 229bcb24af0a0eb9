from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CampaignsConfig(AppConfig):
    name = "campaigns"
    verbose_name = _("Campaigns")

    def ready(self) -> None:
        # registers the campaigns approval kinds, and tells members how campaigns use segments
        from . import approvals, segments  # noqa: F401

        segments.register()
