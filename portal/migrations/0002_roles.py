"""Create the staff roles as Django groups (names are stable; see portal.choices.Role)."""

from django.db import migrations

ROLE_NAMES = [
    "Account manager",
    "Branch manager",
    "Product operator",
    "Budget approver",
    "Risk auditor",
    "Administrator",
    "System integration",
]


def create_roles(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    for name in ROLE_NAMES:
        Group.objects.get_or_create(name=name)


def remove_roles(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=ROLE_NAMES).delete()


class Migration(migrations.Migration):
    dependencies = [("portal", "0001_initial"), ("auth", "0012_alter_user_first_name_max_length")]
    operations = [migrations.RunPython(create_roles, remove_roles)]
