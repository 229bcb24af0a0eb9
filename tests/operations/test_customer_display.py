"""The customer 360 page and the member export as people read them (issue 16): names where
the data holds codes, money with its currency, month-to-date marked on the chart with the
tiers' thresholds drawn, long lists capped at 10 behind an "all N" control; in 简体中文 and
in English."""

from __future__ import annotations

import csv
import io
import re
from datetime import date, timedelta

import pytest

from benefits.services import grant_create
from members.models import PointsEntry, Tier, TierChange
from portal.choices import Role
from portal.clock import today_in_shanghai
from portal.periods import add_months, month_start
from tests.crawl import visible_text
from tests.factories import BenefitFactory, MemberFactory, MemberMonthlyStatFactory, TaskFactory

pytestmark = pytest.mark.django_db

PAGE = "/members/M0000777/"


def _tier(code: str) -> Tier:
    return Tier.objects.get(scheme__code="DEFAULT_MADA", code=code)


@pytest.fixture
def manager(make_user):
    return make_user(
        Role.ACCOUNT_MANAGER, username="am_zhou", branch="B01S1", last_name="周", first_name="敏"
    )


@pytest.fixture
def customer(org, manager):
    """A GOLD customer 62,326.54 short of SUNFLOWER, on mobile banking, with 12 months of
    figures (the last one in progress), 12 benefits, 12 points entries from a task, a tier
    change and 12 notes."""
    member = MemberFactory(
        member_no="M0000777",
        name="郑兰",
        phone="13912345678",
        id_number="110101199001011234",
        branch=org["B01S1"],
        account_manager=manager,
        tier=_tier("GOLD"),
        tier_basis=437_673_46,
        tier_since=date(2026, 10, 2),
        channels=["MOBILE"],
        lifecycle_stage="ACTIVE",
    )
    this_month = month_start(today_in_shanghai())
    for back in range(12):
        month = add_months(this_month, -back)
        MemberMonthlyStatFactory(
            member=member, month=month, financial_day_sum_fen=30 * (400_000_00 + back * 1000_00)
        )
    benefit = BenefitFactory(name="机场贵宾厅", name_en="Airport lounge")
    for i in range(12):
        grant_create(
            member=member,
            benefit=benefit,
            budget=benefit.budget,
            source="MANUAL",
            idempotency_key=f"display-grant-{i}",
            expires_on=today_in_shanghai() + timedelta(days=30),
            actor=None,
        )
    task = TaskFactory(name="每日签到", campaign__name="月度活跃计划", campaign__code="C202612-ACT")
    for i in range(12):
        PointsEntry.objects.create(
            member=member,
            kind="EARN",
            points=5,
            remaining=5,
            business_date=date(2026, 11, 1) + timedelta(days=i),
            source=f"task C202612-ACT #{task.pk} step 1",
            idempotency_key=f"display-points-{i}",
        )
    TierChange.objects.create(
        member=member,
        from_tier=_tier("STANDARD"),
        to_tier=_tier("GOLD"),
        cause="UPGRADE",
        business_date=date(2026, 10, 2),
    )
    from members.models import FollowUpNote

    for i in range(12):
        FollowUpNote.objects.create(member=member, author=manager, text=f"跟进 {i}")
    return member


def _page(client, user, language: str) -> str:
    client.cookies["django_language"] = language
    client.force_login(user)
    response = client.get(PAGE, HTTP_ACCEPT_LANGUAGE=language)
    assert response.status_code == 200
    return response.content.decode()


def _text(html: str) -> str:
    return " ".join(visible_text(html))


def _plain(html: str) -> str:
    """The page's text with the markup removed (names marked translate="no" included)."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", html))


def _section(html: str, section_id: str) -> str:
    start = html.index(f'id="{section_id}"')
    return html[start : html.index("</section>", start)]


def test_the_chinese_page_names_the_next_tier_and_the_gap_in_yuan(client, customer, manager):
    html = _page(client, manager, "zh-hans")
    text = _text(html)

    assert "距金葵花尚差" in text and "¥62,326.54" in text
    assert "月日均资产需达 ¥500,000.00" in text
    assert "SUNFLOWER" not in text and "GOLD" not in text
    assert "金卡" in text  # the current tier by its name
    assert re.search(r"¥\d{3},\d{3}\.\d{2}", _section(html, "monthly-figures"))


def test_the_chinese_page_shows_labels_not_codes(client, customer, manager):
    html = _page(client, manager, "zh-hans")
    text = _text(html)

    assert "已发放" in text and "GRANTED" not in text  # the benefits' status
    assert "人工发放" in text  # their source
    assert "手机银行" in text and "MOBILE" not in text  # the channel
    assert "升级" in _text(_section(html, "tier-history")) and "UPGRADE" not in text
    assert "周敏" in text and "am_zhou" not in text  # the account manager and the notes' author


def test_a_points_source_reads_as_words(client, customer, manager):
    html = _page(client, manager, "zh-hans")
    points = _plain(_section(html, "points"))

    assert "活动「月度活跃计划」任务「每日签到」第 1 步" in points
    assert "task C202612-ACT" not in html


def test_long_lists_show_ten_rows_and_a_control_for_the_rest(client, customer, manager):
    html = _page(client, manager, "zh-hans")

    for section_id, control in [
        ("benefits", "more-grants"),
        ("points", "more-points"),
        ("notes", "more-notes"),
        ("monthly-figures", "more-stats"),
    ]:
        section = _section(html, section_id)
        rows = section.count("<tr") - 1  # the header row
        assert rows == 12, section_id
        assert section.count('class="more"') == 2, section_id
        assert f'<input type="checkbox" class="more-toggle" id="{control}">' in section
        assert "全部 12 条" in section and "收起" in section


def test_the_english_page_names_the_tiers_in_english_with_cny(client, customer, manager):
    html = _page(client, manager, "en")
    text = _text(html)

    assert "Missing for Sunflower" in text and "CNY 62,326.54" in text
    assert "Gold" in text and "金卡" not in text and "金葵花" not in text
    assert "Airport lounge" in text and "机场贵宾厅" not in text
    assert "Granted" in text and "Mobile app" in text and "Upgrade" in text
    assert "Show all 12" in text
    assert "¥" not in text


def test_the_chart_marks_the_month_to_date_and_draws_the_thresholds(client, customer, manager):
    html = _page(client, manager, "zh-hans")
    chart = html[html.index("<svg") : html.index("</svg>")]
    this_month = f"{today_in_shanghai():%Y-%m}"

    assert chart.count('class="bar"') == 11 and chart.count('class="bar partial"') == 1
    partial = chart[chart.index('class="bar partial"') :]
    assert f"{this_month}（本月至今" in partial and "至今" in partial
    assert '<g class="threshold"><title>金葵花 ≥ ¥500,000.00</title>' in chart
    assert '<g class="threshold"><title>金卡 ≥ ¥50,000.00</title>' in chart
    assert 'class="tick"' in chart and ">40万<" in chart  # an axis with values
    assert "<script" not in chart and "style=" not in chart  # CSP-safe
    assert f"{this_month} 为本月至今" in _text(html)


def test_the_english_chart_labels_its_values(client, customer, manager):
    html = _page(client, manager, "en")
    chart = html[html.index("<svg") : html.index("</svg>")]

    assert "<title>Sunflower ≥ CNY 500,000.00</title>" in chart
    assert "month to date" in chart and "400k" in chart


def _export(client, user, language: str) -> list[list[str]]:
    client.cookies["django_language"] = language
    client.force_login(user)
    response = client.get("/members/export.csv", {"q": "M0000777"}, HTTP_ACCEPT_LANGUAGE=language)
    assert response.status_code == 200
    body = b"".join(response.streaming_content).decode("utf-8-sig")
    return list(csv.reader(io.StringIO(body)))


def test_the_member_export_is_for_people_and_stays_masked(client, customer, make_user):
    operator = make_user(Role.PRODUCT_OPERATOR, username="op_display", branch="HO")

    header, row = _export(client, operator, "zh-hans")

    assert header[:7] == [
        "客户号",
        "姓名",
        "手机号（脱敏）",
        "证件号（脱敏）",
        "机构",
        "客户经理",
        "等级",
    ]
    assert re.fullmatch(r"月日均资产 \d{4}-\d{2}（元）", header[7])
    assert row[:7] == [
        "M0000777",
        "郑兰",
        customer.masked_phone,
        customer.masked_id_number,
        customer.branch.name,
        "周敏",
        "金卡",
    ]
    assert re.fullmatch(r"\d+\.\d{2}", row[7])  # yuan with 2 decimals
    assert row[8:10] == ["活跃", "正常"]
    assert "13912345678" not in ",".join(row) and "110101199001011234" not in ",".join(row)

    english_header, english_row = _export(client, operator, "en")
    assert english_header[6] == "Tier" and english_row[6] == "Gold"
    assert english_row[8:10] == ["Active", "Active"]
