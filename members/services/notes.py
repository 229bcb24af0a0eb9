"""Follow-up notes: an account manager's notes on a customer, with a due date."""

from __future__ import annotations

from datetime import date

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from portal.errors import InvalidInput, NotAllowed
from portal.permissions import user_can
from portal.services import audit_record

from ..models import FollowUpNote, Member
from ..selectors import member_scope


class NoteError(InvalidInput):
    """The note cannot be written as asked (the message says why)."""


def _check(member: Member, actor) -> None:
    if not user_can(actor, "members.write_notes"):
        raise NotAllowed(_("Your role cannot write notes on customers."))
    if not member_scope(user=actor).filter(pk=member.pk).exists():
        raise NotAllowed(_("This customer is not in your scope."))


@transaction.atomic
def followup_note_add(*, member: Member, actor, text: str, due_on: date | None) -> FollowUpNote:
    """An account manager (or branch manager) notes a customer conversation, optionally with a
    follow-up date (shown on their workbench until done)."""
    _check(member, actor)
    text = text.strip()
    if not text:
        raise NoteError(_("Write the note first."), field="text")
    if due_on is not None and due_on < timezone.localdate():
        raise NoteError(_("The follow-up date cannot be in the past."), field="due_on")
    note = FollowUpNote.objects.create(member=member, author=actor, text=text, due_on=due_on)
    audit_record(
        actor=actor,
        action="note.add",
        obj=note,
        changes={"member": member.member_no, "due_on": due_on.isoformat() if due_on else None},
    )
    return note


@transaction.atomic
def followup_note_done(*, note: FollowUpNote, actor) -> FollowUpNote:
    """Mark a follow-up as done (only the note's author)."""
    _check(note.member, actor)
    if note.author_id != actor.pk:
        raise NotAllowed(_("Only the note's author can close its follow-up."))
    if note.done_at is None:
        note.done_at = timezone.now()
        note.save(update_fields=["done_at"])
        audit_record(actor=actor, action="note.done", obj=note)
    return note
