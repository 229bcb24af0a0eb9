"""Synthetic campaigns measured against a holdout, for the uplift tests (tests/campaigns/
test_uplift.py) and the campaign effect page's (tests/operations/test_campaign_effect.py):
members loaded in bulk, a campaign whose window ran from 40 to 10 days ago with its audience
recorded on its eve, and member behaviour drawn with known probabilities per group.

Deterministic whatever runs before: member numbers follow the members already loaded in
the test, every campaign holds out with the same fixed key, and behaviour is drawn from a
seed in member order — a test's figures are the same on every run (no 5 % chance of an
interval missing its truth on some runs)."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from campaigns.models import Campaign, CampaignAudience, MemberEvent
from campaigns.services.outcomes import campaign_audience_record
from members.models import Member, MemberActivityDay
from portal.clock import today_in_shanghai as today
from portal.services import audit_context
from tests.factories import SHANGHAI, BranchFactory, CampaignFactory, TaskFactory

#: the holdout key of every synthetic campaign (a real campaign's is random)
KEY = "0123456789abcdef" * 2


def population(count: int, *, stage: str = "DORMANT") -> list[Member]:
    first = Member.objects.filter(member_no__startswith="U").count()
    branch = BranchFactory()
    registered = datetime(2024, 1, 2, 9, 0, tzinfo=SHANGHAI)
    with audit_context(job="test population"):
        return Member.objects.bulk_create(
            Member(
                member_no=f"U{first + number:08d}",
                name="客户",
                registered_at=registered,
                branch=branch,
                lifecycle_stage=stage,
            )
            for number in range(count)
        )


def measured_campaign(members: list[Member], *, share: int = 50) -> Campaign:
    """A campaign whose window ran from 40 to 10 days ago, follow-up 5 days, its audience
    recorded on the eve of its first day."""
    campaign = CampaignFactory(
        holdout_share=share,
        holdout_key=KEY,
        starts_on=today() - timedelta(days=40),
        ends_on=today() - timedelta(days=10),
        follow_up_days=5,
        status="ENDED",
    )
    TaskFactory(campaign=campaign)
    campaign_audience_record(campaign_id=campaign.pk, on=campaign.starts_on - timedelta(days=1))
    return campaign


def behave(campaign: Campaign, *, treated: float, held: float, seed: int, buy: float = 0.1):
    """Each dormant member comes back (1–5 active days in the window) with the probability
    of their group, and buys a fund with probability `buy` in both groups."""
    rng = random.Random(seed)
    held_out = dict(
        CampaignAudience.objects.filter(campaign=campaign).values_list("member_id", "held_out")
    )
    days, events = [], []
    for member_id, out in sorted(held_out.items()):
        if rng.random() < (held if out else treated):
            for offset in rng.sample(range(30), rng.randint(1, 5)):
                day = campaign.starts_on + timedelta(days=offset)
                days.append(
                    MemberActivityDay(member_id=member_id, date=day, month=day.replace(day=1))
                )
        if rng.random() < buy:
            day = campaign.starts_on + timedelta(days=rng.randrange(30))
            events.append(
                MemberEvent(
                    event_id=f"buy-{campaign.pk}-{member_id}",
                    member_id=member_id,
                    type="FUND_PURCHASE",
                    amount_fen=rng.randint(1_000, 5_000_000),
                    occurred_at=datetime(day.year, day.month, day.day, 10, tzinfo=SHANGHAI),
                    occurred_on=day,
                    channel="MOBILE",
                    batch_id=0,
                    received_at=datetime(day.year, day.month, day.day, 10, tzinfo=SHANGHAI),
                )
            )
    MemberActivityDay.objects.bulk_create(days, ignore_conflicts=True)
    MemberEvent.objects.bulk_create(events)
