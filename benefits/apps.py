from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class BenefitsConfig(AppConfig):
    name = "benefits"
    verbose_name = _("Benefits")

    def ready(self) -> None:
        from members.registry import SCHEME_SWITCH_PARTS

        from . import approvals  # noqa: F401  (registers the benefits approval kinds)
        from .services.scheme_entitlements import SCHEME_ENTITLEMENTS

        if SCHEME_ENTITLEMENTS not in SCHEME_SWITCH_PARTS:
            # entitlements are carried across a tier scheme switch
            SCHEME_SWITCH_PARTS.append(SCHEME_ENTITLEMENTS)
