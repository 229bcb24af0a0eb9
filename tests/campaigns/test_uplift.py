"""Measured uplift (issue 18): on synthetic campaigns with a known true effect the estimate
and its interval cover the truth and the verdict says 显著提升; a campaign without effect is
reported as not significant; tiny groups say 样本不足; the intervals have their stated
coverage; the report costs one query whatever the audience."""

from __future__ import annotations

import calendar
import random
from datetime import date, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import translation

from campaigns.holdout import Holdout
from campaigns.models import Campaign
from campaigns.services.outcomes import campaign_outcomes_record, mada_months
from campaigns.uplift import campaign_uplift, mean_difference, proportion_difference
from members.models import MemberMonthlyStat
from tests.uplift_data import behave as _behave
from tests.uplift_data import measured_campaign as _campaign
from tests.uplift_data import population as _population

from .conftest import today

pytestmark = pytest.mark.django_db


def _measured(campaign: Campaign, day: date | None = None):
    """The outcomes as the night of the follow-up's last day counts them."""
    last = campaign.ends_on + timedelta(days=campaign.follow_up_days)
    campaign_outcomes_record(business_date=day or last)
    return campaign_uplift(campaign=campaign)


def test_a_campaign_with_a_true_uplift_of_ten_points_is_measured_as_such():
    campaign = _campaign(_population(3000))
    _behave(campaign, treated=0.30, held=0.20, seed=7)
    report = _measured(campaign)
    reactivation = report.reactivation

    assert report.treatment["dormant"] + report.holdout["dormant"] == 3000
    assert abs(report.holdout["members"] / 3000 - 0.5) < 0.05
    assert reactivation.low < 0.10 < reactivation.high  # the interval covers the truth
    assert abs(reactivation.difference - 0.10) < 0.05
    assert reactivation.verdict == "UPLIFT"
    with translation.override("zh-hans"):
        assert report.verdict_text == "显著提升"
    with translation.override("en"):
        assert report.verdict_text == "Significant uplift"
    # incremental reactivations = uplift × dormant members offered, cost shared over them
    estimate, low, high = report.incremental
    assert estimate == pytest.approx(reactivation.difference * report.treatment["dormant"])
    assert low < estimate < high
    # buying a fund was as likely in both groups: not significant
    buyers = next(m for m in report.metrics if m.key == "fund_buyers").estimate
    assert buyers.verdict == "NO_DIFFERENCE"
    # active days: the reactivated add 3 days on average, so ≈ 0.3 more per member
    days = next(m for m in report.metrics if m.key == "active_days").estimate
    assert days.low < 0.3 < days.high and days.verdict == "UPLIFT"


def test_a_campaign_without_effect_is_reported_as_not_significant():
    campaign = _campaign(_population(3000))
    _behave(campaign, treated=0.20, held=0.20, seed=11)
    report = _measured(campaign)
    assert report.reactivation.low < 0 < report.reactivation.high
    assert report.verdict == "NO_DIFFERENCE"
    assert report.cost_per_incremental is None  # nothing incremental to pay for
    with translation.override("zh-hans"):
        assert report.verdict_text == "差异不显著"


def test_tiny_groups_say_the_sample_is_too_small():
    campaign = _campaign(_population(24))
    _behave(campaign, treated=0.9, held=0.1, seed=3)
    report = _measured(campaign)
    assert report.verdict == "TOO_FEW"
    assert {metric.estimate.verdict for metric in report.metrics} == {"TOO_FEW"}
    with translation.override("zh-hans"):
        assert report.verdict_text == "样本不足"


def test_held_out_members_are_the_campaigns_holdout_and_measured_apart():
    members = _population(400)
    campaign = _campaign(members, share=25)
    holdout = Holdout.of(campaign)
    expected = sum(holdout.holds_out(m.member_no) for m in members)
    report = _measured(campaign)
    assert report.holdout["members"] == expected
    assert report.treatment["members"] == 400 - expected


def test_outcomes_are_recorded_each_night_until_the_follow_up_ends_and_a_rerun_replaces():
    campaign = _campaign(_population(200))
    _behave(campaign, treated=0.5, held=0.2, seed=5)
    for offset in range(30, -1, -1):
        campaign_outcomes_record(business_date=today() - timedelta(days=offset))
    campaign_outcomes_record(business_date=today() - timedelta(days=8))  # a night again
    days = sorted(set(campaign.outcomes.values_list("business_date", flat=True)))
    assert days[0] == today() - timedelta(days=30)
    assert days[-1] == campaign.ends_on + timedelta(days=5)  # the follow-up's last night
    assert campaign.outcomes.count() == 2 * len(days)
    report = campaign_uplift(campaign=campaign)
    assert report.complete and report.measured_until == days[-1]
    rates = [treated for _day, treated, _held in report.series]
    assert rates == sorted(rates)  # reactivation so far only grows


def test_the_report_costs_one_query_whatever_the_audience():
    small, large = _campaign(_population(40)), _campaign(_population(2000))
    for campaign in (small, large):
        _behave(campaign, treated=0.3, held=0.2, seed=1)
    campaign_outcomes_record(business_date=today() - timedelta(days=5))
    counts = []
    for campaign in (small, large):
        with CaptureQueriesContext(connection) as queries:
            campaign_uplift(campaign=campaign)
        counts.append(len(queries))
    assert counts == [1, 1]


# --- the intervals themselves --------------------------------------------------------------


def test_the_interval_of_a_difference_of_rates_covers_the_truth_95_times_in_100():
    rng = random.Random(2026)
    covered = 0
    for _ in range(400):
        n_t, n_h = 900, 300
        hits_t = sum(rng.random() < 0.25 for _ in range(n_t))
        hits_h = sum(rng.random() < 0.18 for _ in range(n_h))
        estimate = proportion_difference(hits_t, n_t, hits_h, n_h)
        covered += estimate.low <= 0.07 <= estimate.high
    assert 0.92 <= covered / 400 <= 0.98


def test_the_interval_of_a_difference_of_skewed_means_covers_the_truth():
    rng = random.Random(18)
    covered = 0
    for _ in range(300):
        treated = [int(rng.lognormvariate(8, 1.2)) + 500 for _ in range(400)]
        held = [int(rng.lognormvariate(8, 1.2)) for _ in range(150)]
        estimate = mean_difference(
            len(treated), sum(treated), sum(x * x for x in treated),
            len(held), sum(held), sum(x * x for x in held),
        )  # fmt: skip
        covered += estimate.low <= 500 <= estimate.high
    assert 0.91 <= covered / 300 <= 0.98


def test_the_change_in_mada_is_measured_from_the_month_before_to_the_latest_complete_month():
    campaign = _campaign(_population(800))
    last = campaign.ends_on + timedelta(days=campaign.follow_up_days)
    before, after = mada_months(campaign, last)
    assert after is not None and after > before
    rng = random.Random(30)
    held = dict(campaign.audience.values_list("member_id", "held_out"))
    rows = []
    for member_id, out in held.items():
        for month, mada in ((before, 50_000), (after, 50_000 + (0 if out else 1_000))):
            days = calendar.monthrange(month.year, month.month)[1]
            fen = (mada + rng.randint(-3_000, 3_000)) * 100
            rows.append(
                MemberMonthlyStat(
                    member_id=member_id, month=month, financial_day_sum_fen=fen * days
                )
            )
    MemberMonthlyStat.objects.bulk_create(rows)

    report = _measured(campaign)
    change = next(m for m in report.metrics if m.key == "mada_change")
    assert change.unit == "money"
    assert change.estimate.low < 1_000 < change.estimate.high  # CNY per member
    assert change.estimate.verdict == "UPLIFT"
    assert report.treatment["mada_members"] + report.holdout["mada_members"] == 800


def test_members_without_assets_are_no_change_in_mada():
    campaign = _campaign(_population(100))
    report = _measured(campaign)
    assert report.treatment["mada_members"] == report.holdout["mada_members"] == 0
    assert "mada_change" not in {m.key for m in report.metrics}
