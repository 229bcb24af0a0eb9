"""The tier schemes of a fresh database, exactly as API.md ("Defaults") states:
DEFAULT_MADA active, DEFAULT_POINTS as a draft."""

from django.db import migrations

MADA_TIERS = [
    # code, zh-Hans, en, rank, MADA ≥ (fen)
    ("STANDARD", "普卡", "Standard", 0, 0),
    ("GOLD", "金卡", "Gold", 1, 5_000_000),
    ("SUNFLOWER", "金葵花", "Sunflower", 2, 50_000_000),
    ("PRIVATE", "私人银行", "Private banking", 3, 1_000_000_000),
]
POINTS_TIERS = [
    # code, zh-Hans, en, rank, points ≥ (PRE is "> 0": points are whole numbers, so ≥ 1)
    ("NONE", "无星级", "No star", 0, 0),
    ("PRE", "准星级", "Pre-star", 1, 1),
    ("STAR3", "三星", "3 stars", 2, 50),
    ("STAR4", "四星", "4 stars", 3, 500),
    ("STAR5", "五星", "5 stars", 4, 2_000),
    ("STAR6", "六星", "6 stars", 5, 10_000),
    ("STAR7", "七星", "7 stars", 6, 80_000),
]
TEN_THOUSAND_CNY = 1_000_000  # fen
POINTS_INDICATORS = [
    # kind, category, points per 10,000 CNY
    ("CATEGORY_BALANCE", "DEMAND", 135),
    ("CATEGORY_BALANCE", "TIME", 100),
    ("CATEGORY_BALANCE", "WEALTH", 100),
    ("CATEGORY_BALANCE", "FUND", 100),
    ("CATEGORY_BALANCE", "INSURANCE", 100),
    ("CATEGORY_BALANCE", "BOND", 100),
    ("CATEGORY_BALANCE", "MORTGAGE", 100),
    ("CATEGORY_BALANCE", "LOAN", 200),
    ("FUND_PURCHASE", "", 200),
]


def create_defaults(apps, schema_editor):
    TierScheme = apps.get_model("members", "TierScheme")
    Tier = apps.get_model("members", "Tier")
    PointsIndicator = apps.get_model("members", "PointsIndicator")
    mada, _ = TierScheme.objects.get_or_create(
        code="DEFAULT_MADA",
        defaults={
            "name": "月日均资产定级 (MADA)",
            "method": "MADA",
            "status": "ACTIVE",
            "window_months": 1,
            "downgrade_after_months": 3,
        },
    )
    for code, name, name_en, rank, threshold in MADA_TIERS:
        Tier.objects.get_or_create(
            scheme=mada,
            code=code,
            defaults={"name": name, "name_en": name_en, "rank": rank, "threshold": threshold},
        )
    points, _ = TierScheme.objects.get_or_create(
        code="DEFAULT_POINTS",
        defaults={
            "name": "星级积分定级 (POINTS)",
            "method": "POINTS",
            "status": "DRAFT",
            "window_months": 1,
            "downgrade_after_months": 3,
        },
    )
    for code, name, name_en, rank, threshold in POINTS_TIERS:
        Tier.objects.get_or_create(
            scheme=points,
            code=code,
            defaults={"name": name, "name_en": name_en, "rank": rank, "threshold": threshold},
        )
    if not PointsIndicator.objects.filter(scheme=points).exists():
        PointsIndicator.objects.bulk_create(
            PointsIndicator(
                scheme=points,
                kind=kind,
                category=category,
                points=per_10k,
                per_unit=TEN_THOUSAND_CNY,
            )
            for kind, category, per_10k in POINTS_INDICATORS
        )


class Migration(migrations.Migration):
    dependencies = [("members", "0003_tier_engine")]
    operations = [migrations.RunPython(create_defaults, migrations.RunPython.noop)]
