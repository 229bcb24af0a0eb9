"""Nightly writes of a campaign's holdout measurement (`campaigns.uplift` reads them):

- **the audience** of a campaign with a holdout, recorded once, on the night before its first
  day (or the first night after, for a campaign approved late): every member it targets then,
  whether they are held out, and their lifecycle stage on that night — the cohort whose
  outcomes are compared (members who join the audience later are offered the tasks or held
  out by the same rule, but are not in the comparison);
- **the outcomes** of each group of that cohort from the first day of the window to the
  business date, recounted every night from the first day to the end of the follow-up:
  dormant members reactivated (active on a day of the period), active days, fund buyers
  and purchases (FUND_PURCHASE events), the change in MADA from the month before the window
  to the latest complete month (over the members with assets in either month: a member
  without statistics in both has no MADA to change), and the points and cost the campaign's
  rewards charged.

Both are set-based: one INSERT … SELECT per campaign for the audience, one grouped SELECT
per campaign for the outcomes (counts, sums and sums of squares), whatever the audience.
Both are idempotent for the business date and safe to run twice at once (the campaign's
row is locked while it is written).
"""

from __future__ import annotations

import calendar
import logging
from datetime import date, timedelta

from django.db import connection, transaction
from django.db.models import BooleanField, ExpressionWrapper, F

from members.models import Member

from ..choices import CampaignStatus, EventType
from ..holdout import Holdout
from ..models import Campaign, CampaignAudience, CampaignOutcome
from ..reports import DORMANT_STAGES
from ..selectors import campaign_targeting

__all__ = [
    "campaign_audience_record",
    "campaign_audiences_record",
    "campaign_outcomes_compute",
    "campaign_outcomes_record",
    "mada_months",
]

logger = logging.getLogger(__name__)

#: campaigns whose audience is recorded when their window comes (launched and not ended)
_LAUNCHED = (CampaignStatus.SCHEDULED, CampaignStatus.ACTIVE, CampaignStatus.PAUSED)


# --- the audience -----------------------------------------------------------------------------


def campaign_audiences_record(*, business_date: date) -> int:
    """Record the audience of every launched campaign with a holdout whose window starts
    the next day or has started (and not ended); returns how many campaigns were recorded."""
    due = Campaign.objects.filter(
        status__in=_LAUNCHED,
        holdout_share__gt=0,
        audience_recorded_on__isnull=True,
        starts_on__lte=business_date + timedelta(days=1),
        ends_on__gte=business_date,
    ).values_list("pk", flat=True)
    return sum(campaign_audience_record(campaign_id=pk, on=business_date) for pk in due)


@transaction.atomic
def campaign_audience_record(*, campaign_id: int, on: date) -> int:
    """The campaign's audience on business date `on`, each member with their group and
    stage, in one INSERT … SELECT; 1 when recorded now, 0 when it already was."""
    campaign = (
        Campaign.objects.select_for_update()
        .prefetch_related("target_tiers", "segments")
        .get(pk=campaign_id)
    )
    holdout = Holdout.of(campaign)
    if campaign.audience_recorded_on is not None or holdout is None:
        return 0
    targeting = campaign_targeting(campaign)
    members = Member.objects.filter(targeting.audience(on=on)).values(
        member=F("pk"),
        stage=F("lifecycle_stage"),
        held=ExpressionWrapper(holdout.condition(), output_field=BooleanField()),
    )
    select, params = members.query.sql_with_params()
    table = CampaignAudience._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (campaign_id, member_id, held_out, stage_at_launch) "
            f"SELECT %s, q.member, q.held, q.stage FROM ({select}) q",
            [campaign.pk, *params],
        )
        recorded = cursor.rowcount
    Campaign.objects.filter(pk=campaign.pk).update(audience_recorded_on=on)
    logger.info("campaign %s: audience of %s members recorded on %s", campaign.code, recorded, on)
    return 1


# --- the outcomes -----------------------------------------------------------------------------


def mada_months(campaign: Campaign, period_end: date) -> tuple[date, date | None]:
    """The month before the window (the baseline of the MADA change) and the latest month
    complete by `period_end` after it (None: none yet)."""
    before = (campaign.starts_on.replace(day=1) - timedelta(days=1)).replace(day=1)
    after = (period_end.replace(day=1) - timedelta(days=1)).replace(day=1)
    if period_end.day == calendar.monthrange(period_end.year, period_end.month)[1]:
        after = period_end.replace(day=1)  # the last day of a month completes it
    return before, (after if after > before else None)


def _days_in(month: date) -> int:
    return calendar.monthrange(month.year, month.month)[1]


_OUTCOMES_SQL = """
SELECT a.held_out,
       COUNT(*),
       SUM(CASE WHEN a.stage_at_launch IN ({dormant}) THEN 1 ELSE 0 END),
       SUM(CASE WHEN a.stage_at_launch IN ({dormant}) AND d.days IS NOT NULL THEN 1 ELSE 0 END),
       COALESCE(SUM(d.days), 0),
       COALESCE(SUM(d.days * d.days), 0),
       SUM(CASE WHEN p.amount IS NOT NULL THEN 1 ELSE 0 END),
       COALESCE(SUM(p.amount), 0),
       COALESCE(SUM(CAST(p.amount AS NUMERIC) * p.amount), 0),
       COALESCE(SUM(COALESCE(m.after_fen, 0) - COALESCE(m.before_fen, 0)), 0),
       COALESCE(SUM(CAST(COALESCE(m.after_fen, 0) - COALESCE(m.before_fen, 0) AS NUMERIC)
                    * (COALESCE(m.after_fen, 0) - COALESCE(m.before_fen, 0))), 0),
       COALESCE(SUM(c.cost_fen), 0),
       COALESCE(SUM(c.points), 0),
       SUM(CASE WHEN m.member_id IS NOT NULL THEN 1 ELSE 0 END)
FROM campaigns_campaignaudience a
LEFT JOIN (
    SELECT ad.member_id, COUNT(*) AS days
    FROM members_memberactivityday ad
    JOIN campaigns_campaignaudience x ON x.member_id = ad.member_id AND x.campaign_id = %(c)s
    WHERE ad.date >= %(start)s AND ad.date <= %(end)s
    GROUP BY ad.member_id
) d ON d.member_id = a.member_id
LEFT JOIN (
    SELECT e.member_id, SUM(e.amount_fen) AS amount
    FROM campaigns_memberevent e
    JOIN campaigns_campaignaudience x ON x.member_id = e.member_id AND x.campaign_id = %(c)s
    WHERE e.type = %(purchase)s AND e.occurred_on >= %(start)s AND e.occurred_on <= %(end)s
    GROUP BY e.member_id
) p ON p.member_id = a.member_id
LEFT JOIN (
    SELECT s.member_id,
           SUM(CASE WHEN s.month = %(before)s THEN s.financial_day_sum_fen / %(before_days)s
                    ELSE 0 END) AS before_fen,
           SUM(CASE WHEN s.month = %(after)s THEN s.financial_day_sum_fen / %(after_days)s
                    ELSE 0 END) AS after_fen
    FROM members_membermonthlystat s
    JOIN campaigns_campaignaudience x ON x.member_id = s.member_id AND x.campaign_id = %(c)s
    WHERE s.month IN (%(before)s, %(after)s) AND %(with_mada)s = 1
    GROUP BY s.member_id
) m ON m.member_id = a.member_id
LEFT JOIN (
    SELECT t.member_id, SUM(t.cost_fen) AS cost_fen, SUM(t.reward_points) AS points
    FROM campaigns_taskcompletion t
    WHERE t.campaign_id = %(c)s
    GROUP BY t.member_id
) c ON c.member_id = a.member_id
WHERE a.campaign_id = %(c)s
GROUP BY a.held_out
"""

_FIELDS = CampaignOutcome.FIGURES  # the SELECT above lists them in this order


def campaign_outcomes_compute(*, campaign: Campaign, period_end: date) -> dict[bool, dict]:
    """held_out → the outcomes of that group of the campaign's recorded audience from the
    first day of the window to `period_end` (one grouped query; zeros for an empty group)."""
    before, after = mada_months(campaign, period_end)
    dormant = ", ".join(["%(dormant" + str(i) + ")s" for i in range(len(DORMANT_STAGES))])
    params = {
        "c": campaign.pk,
        "start": campaign.starts_on,
        "end": period_end,
        "purchase": EventType.FUND_PURCHASE,
        "before": before,
        "before_days": _days_in(before),
        "after": after or before,
        "after_days": _days_in(after or before),
        "with_mada": 1 if after else 0,
        **{f"dormant{i}": str(stage) for i, stage in enumerate(DORMANT_STAGES)},
    }
    with connection.cursor() as cursor:
        cursor.execute(_OUTCOMES_SQL.format(dormant=dormant), params)
        found = {bool(row[0]): dict(zip(_FIELDS, row[1:], strict=True)) for row in cursor}
    empty = dict.fromkeys(_FIELDS, 0)
    groups = {held_out: found.get(held_out, empty) for held_out in (False, True)}
    for values in groups.values():
        for name in _FIELDS:
            values[name] = int(values[name] or 0)
    return groups


def campaign_outcomes_record(*, business_date: date) -> dict:
    """Nightly: the outcomes of every campaign whose audience is recorded, from the first
    day of its window to the business date, until its follow-up is over (one row per group
    and night, replaced when the night runs again)."""
    campaigns = [
        campaign
        for campaign in Campaign.objects.filter(
            audience_recorded_on__isnull=False, starts_on__lte=business_date
        ).exclude(status=CampaignStatus.DRAFT)
        if business_date <= campaign.ends_on + timedelta(days=campaign.follow_up_days)
    ]
    for campaign in campaigns:
        _outcomes_write(campaign, business_date)
    return {"campaigns_measured": len(campaigns)}


@transaction.atomic
def _outcomes_write(campaign: Campaign, business_date: date) -> None:
    # one writer at once: the campaign row is locked until the rows are replaced
    list(Campaign.objects.select_for_update().filter(pk=campaign.pk).values_list("pk"))
    groups = campaign_outcomes_compute(campaign=campaign, period_end=business_date)
    CampaignOutcome.objects.filter(campaign=campaign, business_date=business_date).delete()
    CampaignOutcome.objects.bulk_create(
        CampaignOutcome(
            campaign=campaign,
            business_date=business_date,
            held_out=held_out,
            period_end=business_date,
            **values,
        )
        for held_out, values in groups.items()
    )
