"""A campaign's effect page `/campaigns/<code>/effect/`, its CSV, and the dashboard's uplift
section (issue 18): rates, differences in percentage points, intervals, the verdict and the
cost in the reader's language; the roles of the dashboard only; the same queries whatever
the audience."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from campaigns.services.outcomes import campaign_outcomes_record
from operations.dashboard import kpi_snapshot_compute
from portal.choices import Role
from tests.crawl import visible_text
from tests.uplift_data import behave, measured_campaign, population

pytestmark = pytest.mark.django_db

ZH = {"HTTP_ACCEPT_LANGUAGE": "zh-hans"}
EN = {"HTTP_ACCEPT_LANGUAGE": "en"}


def _measured(members: int = 3000, *, treated=0.30, held=0.20, seed=7):
    campaign = measured_campaign(population(members))
    campaign.name = "沉睡客户唤醒"
    campaign.save(update_fields=["name"])
    behave(campaign, treated=treated, held=held, seed=seed)
    last = campaign.ends_on + timedelta(days=campaign.follow_up_days)
    for offset in range(10, -1, -1):
        campaign_outcomes_record(business_date=last - timedelta(days=offset))
    return campaign


def _text(html: str) -> str:
    return "\n".join(visible_text(html))


def _page(client, campaign, language=ZH):
    return client.get(f"/campaigns/{campaign.code}/effect/", **language)


def test_the_effect_page_reads_the_uplift_in_chinese_and_in_english(client, make_user):
    campaign = _measured()
    client.force_login(make_user(Role.PRODUCT_OPERATOR, branch="HO"))

    zh = _text(_page(client, campaign).content.decode())
    assert "活动效果: 沉睡客户唤醒" in zh
    assert "显著提升" in zh
    assert "上线时沉睡客户的唤醒率" in zh and "个百分点" in zh
    assert "95% 置信区间" in zh
    assert "仅活动期内（截至" in zh  # the window alone, beside the window with its follow-up
    assert "对照组无成本" in zh
    assert "¥" in zh and "CNY" not in zh
    assert "Significant" not in zh

    en = _text(_page(client, campaign, EN).content.decode())
    assert "Significant uplift" in en
    assert "Reactivation of those dormant at launch" in en and " pp" in en
    assert "CNY " in en and "显著" not in en


def test_the_page_draws_both_groups_over_the_nights(client, make_user):
    campaign = _measured()
    client.force_login(make_user(Role.BUDGET_APPROVER, branch="HO"))
    html = _page(client, campaign, EN).content.decode()
    assert html.count("<polyline") == 2  # offered and held out
    assert "Offered the campaign:" in html and "Held out:" in html
    assert "Month to date" not in html  # a running measure, not a month's figure


def test_a_campaign_without_holdout_says_what_to_do(client, make_user):
    campaign = measured_campaign(population(5), share=0)
    client.force_login(make_user(Role.PRODUCT_OPERATOR, branch="HO"))
    text = _text(_page(client, campaign).content.decode())
    assert "本活动未设对照组" in text and "请在下一个活动上线前设定对照组比例" in text


def test_the_csv_is_for_people_in_their_language(client, make_user):
    campaign = _measured()
    client.force_login(make_user(Role.PRODUCT_OPERATOR, branch="HO"))
    response = client.get(f"/campaigns/{campaign.code}/effect.csv", **ZH)
    assert response.status_code == 200
    assert response["Content-Disposition"].endswith(f'campaign-effect-{campaign.code}.csv"')
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode("utf-8-sig"))))
    assert rows[0][:3] == ["活动", "统计截至", "指标"]
    reactivation = next(row for row in rows if row[2] == "上线时沉睡客户的唤醒率")
    assert reactivation[8] == "显著提升"
    assert reactivation[5].endswith("个百分点") and not reactivation[5].startswith("+")
    assert reactivation[3].endswith("%") and reactivation[4].endswith("%")


@pytest.mark.parametrize(
    ("role", "allowed"),
    [
        (Role.ACCOUNT_MANAGER, False),
        (Role.BRANCH_MANAGER, True),
        (Role.PRODUCT_OPERATOR, True),
        (Role.BUDGET_APPROVER, True),
        (Role.RISK_AUDITOR, True),
        (Role.ADMINISTRATOR, True),
    ],
)
def test_the_effect_page_and_csv_are_for_the_dashboards_roles(client, make_user, role, allowed):
    campaign = measured_campaign(population(5))
    client.force_login(make_user(role, branch="HO"))
    for url in (f"/campaigns/{campaign.code}/effect/", f"/campaigns/{campaign.code}/effect.csv"):
        assert client.get(url).status_code == (200 if allowed else 403), (role, url)


def test_nobody_signed_out_sees_it_and_an_unknown_campaign_is_404(client, make_user):
    campaign = measured_campaign(population(5))
    response = client.get(f"/campaigns/{campaign.code}/effect/")
    assert response.status_code == 302 and "/login/" in response["Location"]
    client.force_login(make_user(Role.PRODUCT_OPERATOR, branch="HO"))
    assert client.get("/campaigns/NO-SUCH/effect/").status_code == 404


def test_the_page_costs_the_same_queries_whatever_the_audience(client, make_user):
    small = _measured(60, seed=1)
    large = _measured(2000, seed=2)
    client.force_login(make_user(Role.PRODUCT_OPERATOR, branch="HO"))
    counts = []
    for campaign in (small, large):
        with CaptureQueriesContext(connection) as queries:
            assert _page(client, campaign).status_code == 200
        counts.append(len(queries))
    assert counts[0] == counts[1]


def test_the_dashboard_shows_the_uplift_and_links_each_campaign(client, make_user):
    campaign = _measured()
    kpi_snapshot_compute(business_date=campaign.ends_on + timedelta(days=campaign.follow_up_days))
    client.force_login(make_user(Role.BRANCH_MANAGER, branch="HO"))
    html = client.get("/dashboard/", **ZH).content.decode()
    assert 'id="campaign-uplift"' in html
    assert f'href="/campaigns/{campaign.code}/effect/"' in html
    text = _text(html)
    assert "活动提升效果（对比对照组）" in text and "显著提升" in text
    exported = client.get("/dashboard/campaign-uplift.csv", **ZH)
    body = b"".join(exported.streaming_content).decode("utf-8-sig")
    assert "沉睡客户唤醒" in body and "显著提升" in body
