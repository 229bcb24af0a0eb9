"""An approval as its reader sees it (/approvals/, /approvals/<id>/): amounts in ¥ (简体中文)
and CNY (English), names where codes are stored, the requester by full name, and what a
request stored in its requester's language said again in the reader's."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import translation

from benefits.services import budget_increase_request
from campaigns.services import campaign_submit
from members.models import Tier
from members.services import tier_override_request
from portal.choices import Role
from portal.clock import today_in_shanghai
from portal.models import ApprovalRequest
from tests.crawl import chinese_runs, visible_text
from tests.factories import BudgetFactory, CampaignFactory, MemberFactory, TaskFactory

pytestmark = pytest.mark.django_db


def page(client, user, path: str, language: str) -> str:
    client.force_login(user)
    client.cookies["django_language"] = language
    response = client.get(path, HTTP_ACCEPT_LANGUAGE=language)
    assert response.status_code == 200
    return " ".join(visible_text(response.content.decode()))


@pytest.fixture
def budget_request(make_user):
    maker = make_user(Role.BUDGET_APPROVER, username="ba_maker", branch="HO")
    maker.first_name, maker.last_name = "敏", "周"
    maker.save()
    checker = make_user(Role.BUDGET_APPROVER, username="ba_checker", branch="HO")
    budget = BudgetFactory(code="CAMPAIGN-2026", name="任务活动预算", amount_fen=30_000_000)
    with translation.override("zh-hans"):
        approval = budget_increase_request(
            budget=budget, amount=Decimal("360000.00"), actor=maker, reason="Q4"
        )
    return approval, checker


def test_an_increase_reads_in_yuan_in_chinese_and_cny_in_english(client, budget_request):
    approval, checker = budget_request
    detail = reverse("approval-detail", args=[approval.pk])

    chinese = page(client, checker, detail, "zh-hans")
    english = page(client, checker, detail, "en")
    inbox = page(client, checker, reverse("approvals"), "en")

    assert "¥300,000.00 → ¥360,000.00" in chinese
    assert "CNY 300,000.00 → CNY 360,000.00" in english
    assert "CNY 300,000.00 → CNY 360,000.00" in inbox  # the summary, said when read
    assert "300000.00" not in english and "¥" not in english


def test_the_requester_is_named_in_full_and_the_tabs_follow_the_reader(client, budget_request):
    approval, checker = budget_request

    english = page(client, checker, reverse("approvals"), "en")
    chinese = page(client, checker, reverse("approvals"), "zh-hans")

    assert "周敏" in english and "ba_maker" not in english
    assert "Waiting for me" in english and "待我审批" not in english
    assert "待我审批" in chinese


def test_a_manual_tier_shows_tier_names_in_the_readers_language(client, org, make_user):
    am = make_user(Role.ACCOUNT_MANAGER, username="am", branch="B01S1")
    bm = make_user(Role.BRANCH_MANAGER, username="bm", branch="B01")
    member = MemberFactory(member_no="M0000001", branch=org["B01S1"], account_manager=am)
    sunflower = Tier.objects.get(scheme__code="DEFAULT_MADA", code="SUNFLOWER")
    with translation.override("zh-hans"):
        tier_override_request(
            member=member,
            tier=sunflower,
            reason="deposit",
            expires_on=today_in_shanghai() + timedelta(days=30),
            actor=am,
        )
    approval = ApprovalRequest.objects.get()
    detail = reverse("approval-detail", args=[approval.pk])

    english = page(client, bm, detail, "en")
    chinese = page(client, bm, detail, "zh-hans")

    assert sunflower.name_en in english and sunflower.name not in english
    assert sunflower.name in chinese
    assert "SUNFLOWER" not in english and "SUNFLOWER" not in chinese


def test_a_launch_proposed_in_chinese_reads_in_english_for_an_english_reader(client, make_user):
    author = make_user(Role.PRODUCT_OPERATOR, username="po", branch="HO")
    approver = make_user(Role.BUDGET_APPROVER, username="ba", branch="HO")
    campaign = CampaignFactory(status="DRAFT", created_by=author, name="Payroll season")
    TaskFactory(campaign=campaign, name="Monthly payroll")
    with translation.override("zh-hans"):
        campaign_submit(campaign=campaign, actor=author)
    approval = ApprovalRequest.objects.get()
    assert "草稿" in approval.current["status"]  # stored as the requester wrote it
    detail = reverse("approval-detail", args=[approval.pk])

    english = page(client, approver, detail, "en")
    chinese = page(client, approver, detail, "zh-hans")

    assert "Draft" in english and "Target tiers" in english and "every tier" in english
    assert chinese_runs(english.replace(campaign.budget.name, "")) == []
    assert "草稿" in chinese and "目标等级" in chinese
