from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CampaignsConfig(AppConfig):
    name = "campaigns"
    verbose_name = _("Campaigns")

    def ready(self) -> None:
        # registers the campaigns approval kinds, and tells members how campaigns use segments
        from django.db.backends.signals import connection_created

        from . import approvals, holdout, segments  # noqa: F401

        segments.register()
        # SQLite computes a member's holdout bucket with the Python function (PostgreSQL in SQL)
        connection_created.connect(holdout.sqlite_functions_register)
