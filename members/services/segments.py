"""Saved member segments: created, changed and deleted here (the admin and the configuration
API both call these). The rules must be valid conditions (`members.segments`); they are
frozen while something launched uses them, and a segment something targets is kept
(`SegmentInUse`; the users register with `members.registry`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from portal.errors import StateConflict
from portal.models import User
from portal.services import audit_changes, audit_gone, audit_record

from ..models import Segment
from ..registry import segment_frozen_by, segment_targeted_by, segment_users_text
from ..segments import segment_rules_validate

__all__ = [
    "SEGMENT_CONFIG_FIELDS",
    "SegmentInUse",
    "segment_create",
    "segment_delete",
    "segment_update",
]

#: what a product operator configures on a segment
SEGMENT_CONFIG_FIELDS = ("code", "name", "description", "department", "rules")


class SegmentInUse(StateConflict):
    """Something targets the segment, so the change asked for would change it too."""

    code = "segment_in_use"

    def __init__(self, message: str, *, users: list[tuple[str, list[str]]]):
        #: the codes of what uses the segment (e.g. campaign codes)
        self.codes = [code for _noun, codes in users for code in codes]
        super().__init__(message)


def _configuration(data: Mapping[str, Any]) -> dict:
    unknown = sorted(set(data) - set(SEGMENT_CONFIG_FIELDS))
    if unknown:
        raise ValueError(f"Not segment configuration: {', '.join(unknown)}.")
    return dict(data)


def _rules(rules) -> list[dict]:
    try:
        return segment_rules_validate(rules)
    except ValidationError as exc:
        raise ValidationError({"rules": exc.messages}) from None


def _snapshot(segment: Segment) -> dict:
    return {
        "code": segment.code,
        "name": segment.name,
        "description": segment.description,
        "department": segment.department.code,
        "rules": segment.rules,
    }


@transaction.atomic
def segment_create(*, actor: User | None, data: Mapping[str, Any]) -> Segment:
    """A new member segment authored by `actor`; its rules must be valid conditions."""
    values = _configuration(data)
    if "rules" in values:
        values["rules"] = _rules(values["rules"])
    segment = Segment.objects.create(**values, created_by=actor)
    audit_record(
        actor=actor,
        action="segment.create",
        obj=segment,
        changes=audit_changes({}, _snapshot(segment)),
    )
    return segment


@transaction.atomic
def segment_update(*, segment: Segment, actor: User | None, changes: Mapping[str, Any]) -> Segment:
    """Change a segment, its row locked. Its rules must be valid, and they are frozen
    (`SegmentInUse`) while something launched uses them (a pending, scheduled, active or
    paused campaign): they are part of what was approved. Name and description may always
    change."""
    values = _configuration(changes)
    segment = Segment.objects.select_for_update().get(pk=segment.pk)
    if "rules" in values:
        values["rules"] = _rules(values["rules"])
        if values["rules"] != segment.rules and (users := segment_frozen_by(segment)):
            raise SegmentInUse(
                f"{segment_users_text(users)} were submitted with this segment's rules; "
                "make a new segment instead.",
                users=users,
            )
    before = _snapshot(segment)
    for name, value in values.items():
        setattr(segment, name, value)
    segment.save()
    audit_record(
        actor=actor,
        action="segment.change",
        obj=segment,
        changes=audit_changes(before, _snapshot(segment)),
    )
    return segment


@transaction.atomic
def segment_delete(*, segment: Segment, actor: User | None) -> None:
    """Delete a segment nothing targets (else `SegmentInUse`): deleting it would silently
    widen what targets it. The audit entry keeps what the segment was."""
    segment = Segment.objects.select_for_update().get(pk=segment.pk)
    users = segment_targeted_by(Segment.objects.filter(pk=segment.pk)).get(segment.code)
    if users:
        raise SegmentInUse(
            f"{segment_users_text(users)} target this segment; it is kept.", users=users
        )
    audit_record(
        actor=actor,
        action="segment.delete",
        obj=segment,
        changes=audit_gone(_snapshot(segment)),
    )
    segment.delete()
