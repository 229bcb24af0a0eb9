"""The tier basis moves to its own narrow table (members_membertierbasis), and the tier
columns lose the indexes that made every tier move a non-HOT update of the member row."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("members", "0015_scheme_effective_date_override_end"),
    ]

    operations = [
        migrations.CreateModel(
            name="MemberTierBasis",
            fields=[
                (
                    "member",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        primary_key=True,
                        related_name="basis",
                        serialize=False,
                        to="members.member",
                    ),
                ),
                (
                    "value",
                    models.BigIntegerField(
                        help_text="The latest basis value: MADA in fen, or points.",
                        verbose_name="tier basis",
                    ),
                ),
            ],
            options={
                "verbose_name": "tier basis",
                "verbose_name_plural": "tier bases",
            },
        ),
        migrations.RunSQL(
            "INSERT INTO members_membertierbasis (member_id, value) "
            "SELECT id, tier_basis FROM members_member WHERE tier_basis IS NOT NULL",
            reverse_sql=(
                "UPDATE members_member SET tier_basis = (SELECT b.value FROM "
                "members_membertierbasis b WHERE b.member_id = members_member.id)"
            ),
        ),
        migrations.RemoveField(
            model_name="member",
            name="tier_basis",
        ),
        migrations.AlterField(
            model_name="member",
            name="tier",
            field=models.ForeignKey(
                blank=True,
                db_index=False,
                help_text="The tier in force: the computed tier, or an approved override.",
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="members.tier",
                verbose_name="tier",
            ),
        ),
        migrations.AlterField(
            model_name="tierchange",
            name="from_tier",
            field=models.ForeignKey(
                blank=True,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="members.tier",
            ),
        ),
        migrations.AlterField(
            model_name="tierchange",
            name="member",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="tier_changes",
                to="members.member",
            ),
        ),
        migrations.AlterField(
            model_name="tierchange",
            name="to_tier",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="members.tier",
            ),
        ),
    ]
