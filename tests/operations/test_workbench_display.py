"""The workbench as an account manager reads it: the gap to the next tier as money (¥ in
简体中文, CNY in English) for a MADA scheme, tier names in the reader's language, and the
user greeted by full name."""

from __future__ import annotations

import pytest
from django.urls import reverse

from members.models import Tier
from operations.views import gap_text
from portal.choices import Role
from tests.crawl import visible_text
from tests.factories import MemberFactory

pytestmark = pytest.mark.django_db


def workbench(client, user, language: str) -> str:
    client.force_login(user)
    client.cookies["django_language"] = language
    response = client.get(reverse("home"), HTTP_ACCEPT_LANGUAGE=language)
    assert response.status_code == 200
    return " ".join(visible_text(response.content.decode()))


@pytest.fixture
def about_to_upgrade(org, make_user):
    am = make_user(Role.ACCOUNT_MANAGER, username="am_b01s1", branch="B01S1")
    am.first_name, am.last_name = "丽", "张"
    am.save()
    tiers = list(Tier.objects.filter(scheme__code="DEFAULT_MADA").order_by("rank"))
    tier, upper = tiers[0], tiers[1]
    gap = max(upper.threshold // 20, 1)  # within 10 % of the next tier
    MemberFactory(
        member_no="M0000042",
        branch=org["B01S1"],
        account_manager=am,
        tier=tier,
        tier_basis=upper.threshold - gap,
    )
    return am, tier, gap


def test_the_gap_to_the_next_tier_is_money_in_each_language(client, about_to_upgrade):
    am, tier, gap = about_to_upgrade
    yuan = f"{gap // 100:,}.{gap % 100:02d}"

    chinese = workbench(client, am, "zh-hans")
    english = workbench(client, am, "en")

    assert f"¥{yuan}" in chinese
    assert f"CNY {yuan}" in english


def test_tiers_are_named_in_the_readers_language_and_the_user_in_full(client, about_to_upgrade):
    am, tier, _gap = about_to_upgrade

    chinese = workbench(client, am, "zh-hans")
    english = workbench(client, am, "en")

    assert tier.name in chinese and tier.code not in chinese
    assert tier.name_en in english
    assert "张丽" in chinese and "张丽" in english and "am_b01s1" not in english


def test_a_points_gap_says_points():
    assert gap_text("POINTS", 1350) in ("1,350 points", "1,350 积分")
