"""Writes about a customer's personal data and rights (issue 7): the audited reveal of the
full phone and ID number, and the customer's opt-out of personalised marketing."""

from __future__ import annotations

import logging

from django.db import transaction
from django.utils.translation import gettext as _

from portal.errors import InvalidInput, NotAllowed
from portal.masking import mask_id_number, mask_personal_numbers, mask_phone
from portal.permissions import user_can
from portal.services import audit_record

from ..models import Member
from ..selectors import member_scope

logger = logging.getLogger(__name__)

#: the longest reason an audit entry keeps (AuditEntry.reason)
REASON_MAX_LENGTH = 255


def _require_in_scope(*, member: Member, actor) -> None:
    if not member_scope(user=actor).filter(pk=member.pk).exists():
        raise NotAllowed(_("This customer is not in your scope."))


def _clean_reason(reason: str, *, what: str, required: bool = True) -> str:
    reason = (reason or "").strip()
    if required and not reason:
        raise InvalidInput(_("A reason is required to %(what)s.") % {"what": what}, field="reason")
    if len(reason) > REASON_MAX_LENGTH:
        raise InvalidInput(
            _("The reason is too long (at most %(n)s characters).") % {"n": REASON_MAX_LENGTH}
        )
    return reason


def _without_personal_data(text: str, member: Member) -> str:
    """The text with the member's own phone and ID number (say, typed into a reason) and
    anything shaped like a mobile or ID number masked."""
    for value, masked in (
        (member.phone, mask_phone(member.phone)),
        (member.id_number, mask_id_number(member.id_number)),
    ):
        if value:
            text = text.replace(value, masked)
    return mask_personal_numbers(text, broad=False)


@transaction.atomic
def member_personal_data_reveal(*, member: Member, actor, reason: str, ip: str | None) -> dict:
    """Return the customer's full phone and ID number to a role allowed to see them, for a
    stated reason, and record who saw them, why and from where ("member.reveal"). The audit
    entry never contains the values themselves; nothing is revealed without a reason."""
    if not user_can(actor, "members.reveal_personal_data"):
        raise NotAllowed(_("Your role cannot reveal customers' personal data."))
    _require_in_scope(member=member, actor=actor)
    reason = _without_personal_data(_clean_reason(reason, what=_("reveal personal data")), member)
    audit_record(
        actor=actor,
        action="member.reveal",
        obj=member,
        changes={"fields": ["phone", "id_number"]},
        reason=reason,
        ip=ip,
    )
    # Who saw whose data, never the data: the values are in the return value only.
    logger.info("Personal data of member %s revealed to %s", member.member_no, actor.username)
    return {"phone": member.phone, "id_number": member.id_number}


@transaction.atomic
def member_marketing_opt_out_set(
    *, member: Member, opted_out: bool, actor, reason: str = ""
) -> Member:
    """Record that the customer opts out of (or back into) personalised marketing: while
    opted out they are offered no task of a targeted campaign and left out of segment
    exports ("member.opt_out" / "member.opt_in"). The reason (how the customer asked) is
    optional: a customer's right is not held up by paperwork. Setting the flag it already
    has changes and records nothing."""
    if not user_can(actor, "members.record_opt_out"):
        raise NotAllowed(_("Your role cannot record a customer's marketing opt-out."))
    _require_in_scope(member=member, actor=actor)
    reason = _without_personal_data(
        _clean_reason(reason, what=_("change the marketing opt-out"), required=False), member
    )
    locked = Member.objects.select_for_update().get(pk=member.pk)
    if locked.marketing_opt_out == opted_out:
        member.marketing_opt_out = opted_out
        return member
    locked.marketing_opt_out = opted_out
    locked.save(update_fields=["marketing_opt_out", "updated_at"])
    member.marketing_opt_out = opted_out
    audit_record(
        actor=actor,
        action="member.opt_out" if opted_out else "member.opt_in",
        obj=member,
        changes={"marketing_opt_out": [not opted_out, opted_out]},
        reason=reason,
    )
    return member


__all__ = ["member_marketing_opt_out_set", "member_personal_data_reveal"]
