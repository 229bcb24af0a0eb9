"""What apps above members plug into it, filled from their `AppConfig.ready()`.

A tier scheme switch carries the configuration of the apps above across (benefits maps its
entitlements from the old tiers to the new): each registers a `SchemeSwitchPart`, which the
activation's approval asks for its problems and impact, and the effective night applies.

Saved segments are targeted by campaigns (an app above members): members keeps the rules of
a segment frozen while something launched uses them, and keeps a segment something targets,
without importing those apps. Each user of segments registers a `SegmentUse`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

from django.db.models import QuerySet

__all__ = [
    "SCHEME_SWITCH_PARTS",
    "SEGMENT_USES",
    "SchemeSwitchPart",
    "SegmentUse",
    "segment_frozen_by",
    "segment_targeted_by",
    "segment_users_text",
]


@dataclass(frozen=True)
class SegmentUse:
    #: what the users are called in a message, e.g. "Campaign(s)" (translated lazily)
    noun: object
    #: codes of the users whose approved configuration includes the segment's rules
    frozen_by: Callable[[object], list[str]]
    #: {segment code: codes of the users targeting it} for the segments of a queryset
    targeted_by: Callable[[QuerySet], dict[str, list[str]]]


SEGMENT_USES: list[SegmentUse] = []


def segment_frozen_by(segment) -> list[tuple[str, list[str]]]:
    """(noun, codes) of every use that freezes the segment's rules now."""
    return [(use.noun, codes) for use in SEGMENT_USES if (codes := use.frozen_by(segment))]


def segment_targeted_by(segments: QuerySet) -> dict[str, list[tuple[str, list[str]]]]:
    """{segment code: [(noun, codes)]} for the segments anything targets."""
    found: dict[str, list[tuple[str, list[str]]]] = {}
    for use in SEGMENT_USES:
        for code, users in use.targeted_by(segments).items():
            found.setdefault(code, []).append((use.noun, users))
    return found


def segment_users_text(users: list[tuple[str, list[str]]]) -> str:
    """The users of a segment as a message names them: "Campaign(s) C1, C2"."""
    return "; ".join(f"{noun} {', '.join(codes)}" for noun, codes in users)


@dataclass(frozen=True)
class SchemeSwitchPart:
    #: why the scheme may not be approved yet, in the user's language ([] when it may)
    problems: Callable[[object], list[str]]
    #: (label, text) lines for the activation's approval page, given the scheme and its
    #: simulation (`tier_simulate`: "by_tier" and "active_by_tier" {new tier id: members})
    impact: Callable[[object, dict], list[tuple[str, str]]]
    #: carry the app's configuration across, in the switch's transaction:
    #: (new scheme, old scheme or None, business date) → counts for the night's JobRun
    apply: Callable[[object, object, date], dict[str, int]]
    #: the page where the app's decisions for a scheme are made (its URL), if any, and
    #: what a link to it says (translated lazily)
    page: Callable[[object], str] | None = None
    page_label: object = None


SCHEME_SWITCH_PARTS: list[SchemeSwitchPart] = []
