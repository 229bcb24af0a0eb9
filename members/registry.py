"""What apps above members plug into it, filled from their `AppConfig.ready()`.

Saved segments are targeted by campaigns (an app above members): members keeps the rules of
a segment frozen while something launched uses them, and keeps a segment something targets,
without importing those apps. Each user of segments registers a `SegmentUse`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.db.models import QuerySet

__all__ = [
    "SEGMENT_USES",
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
