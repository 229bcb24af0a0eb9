"""How campaigns use saved member segments, told to members (`members.registry`) from
`CampaignsConfig.ready()`: a launched campaign freezes the rules of the segments it targets,
and any campaign keeps its segments from being deleted."""

from __future__ import annotations

from django.db.models import QuerySet
from django.utils.translation import gettext_lazy as _

from members.registry import SEGMENT_USES, SegmentUse

from .models import Campaign
from .services.config import LAUNCHED_STATUSES


def segment_launched_campaign_codes(segment) -> list[str]:
    """Codes of the pending, scheduled, active or paused campaigns targeting the segment."""
    return list(
        Campaign.objects.filter(segments=segment, status__in=LAUNCHED_STATUSES)
        .order_by("code")
        .values_list("code", flat=True)
    )


def segment_campaigns(segments: QuerySet) -> dict[str, list[str]]:
    """{segment code: codes of the campaigns targeting it}, in one query."""
    targeted: dict[str, list[str]] = {}
    rows = (
        Campaign.objects.filter(segments__in=segments)
        .order_by("segments__code", "code")
        .values_list("segments__code", "code")
    )
    for segment_code, campaign_code in rows:
        targeted.setdefault(segment_code, []).append(campaign_code)
    return targeted


CAMPAIGN_SEGMENT_USE = SegmentUse(
    noun=_("Campaign(s)"),
    frozen_by=segment_launched_campaign_codes,
    targeted_by=segment_campaigns,
)


def register() -> None:
    if CAMPAIGN_SEGMENT_USE not in SEGMENT_USES:
        SEGMENT_USES.append(CAMPAIGN_SEGMENT_USE)
