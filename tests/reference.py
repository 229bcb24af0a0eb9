"""Reference data the migrations create, put back after a flush."""

from __future__ import annotations

from portal.choices import Role


def ensure_reference_data() -> None:
    """Put back what the data migrations create (role groups, the default tier schemes) when
    a transactional test elsewhere has flushed the database. Two queries when present."""
    import importlib

    from django.apps import apps
    from django.contrib.auth.models import Group

    from members.models import TierScheme

    roles = [str(role) for role in Role]
    if (
        Group.objects.filter(name__in=roles).count() == len(roles)
        and TierScheme.objects.filter(code__in=["DEFAULT_MADA", "DEFAULT_POINTS"]).count() == 2
    ):
        return
    importlib.import_module("portal.migrations.0002_roles").create_roles(apps, None)
    importlib.import_module("members.migrations.0004_default_tier_schemes").create_defaults(
        apps, None
    )
