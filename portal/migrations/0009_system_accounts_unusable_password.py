"""System integration accounts sign in to the API with their token only (portal.accounts):
the passwords they still hold are made unusable, so no browser session can be opened with
them. Going back restores none: the old hashes are gone on purpose."""

from django.contrib.auth.hashers import make_password
from django.db import migrations

SYSTEM_ROLE = "System integration"  # portal.choices.Role.SYSTEM (stable group name)


def make_system_passwords_unusable(apps, schema_editor):
    User = apps.get_model("portal", "User")
    unusable = {"password__startswith": "!"}  # what make_password(None) writes
    for user in User.objects.filter(groups__name=SYSTEM_ROLE).exclude(**unusable):
        user.password = make_password(None)  # "!" + random: never matches any password
        user.save(update_fields=["password"])


class Migration(migrations.Migration):
    dependencies = [("portal", "0008_jobrun_heartbeat_one_running")]
    operations = [
        migrations.RunPython(make_system_passwords_unusable, migrations.RunPython.noop),
    ]
