from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class OperationsConfig(AppConfig):
    """The bank's operations, on top of the domains: the nightly chain, the dashboard, the
    workbench and customer 360, the member centre and the demo bank. No models of its own."""

    name = "operations"
    verbose_name = _("Operations")
