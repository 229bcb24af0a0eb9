"""Carry the keys of DRF's authtoken `Token` (stored in clear) over to `ApiToken`.

A system that holds such a key keeps working: the key becomes an `ApiToken` of the same
user, stored as its SHA-256 digest, with every scope (the user's roles still limit it, as
before). An administrator can revoke it and issue a narrower one. The clear keys are then
deleted; `ApiTokenAuthentication` does not accept authtoken keys. Not reversible: the clear
keys are gone.
"""

import hashlib

from django.db import migrations

#: the scopes at the time of this migration (portal.choices.ApiScope)
ALL_SCOPES = ["config-read", "config-write", "events-write", "grants-redeem", "members-read"]


def carry_over(apps, schema_editor):
    Token = apps.get_model("authtoken", "Token")
    ApiToken = apps.get_model("portal", "ApiToken")
    AuditEntry = apps.get_model("portal", "AuditEntry")
    for legacy in Token.objects.select_related("user").order_by("created"):
        token = ApiToken.objects.create(
            name=f"{legacy.user.username} (authtoken key carried over)",
            user=legacy.user,
            prefix=legacy.key[:8],
            key_digest=hashlib.sha256(legacy.key.encode("utf-8")).hexdigest(),
            scopes=ALL_SCOPES,
        )
        AuditEntry.objects.create(
            action="api_token.issue",
            object_type="portal.apitoken",
            object_id=str(token.pk),
            object_repr=f"{token.name} ({token.prefix}…)"[:200],
            changes={"user": legacy.user.username, "scopes": ALL_SCOPES, "prefix": token.prefix},
            reason="migration 0004: authtoken key carried over",
        )
    Token.objects.all().delete()


class Migration(migrations.Migration):
    dependencies = [
        ("portal", "0003_api_token"),
        ("authtoken", "0004_alter_tokenproxy_options"),
    ]
    operations = [migrations.RunPython(carry_over, migrations.RunPython.noop)]
