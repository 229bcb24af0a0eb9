"""The search by a full ID or phone number (DESIGN.md, "members"; security probe finding 3).

Only roles that may reveal personal data may search by them: an exact-match search is a
reveal by guessing (8 of an ID number's 18 characters are shown masked, and its checksum
narrows the rest), so each search is audited like a reveal ("member.search_personal": the
number masked, how many customers it found, an optional reason, the address) and a user
makes at most `PERSONAL_SEARCH_LIMIT` of them in `PERSONAL_SEARCH_WINDOW_MINUTES`, counted
from those audit entries (durable, the same for every process). Every door — the customer
list, the admin's search, the API's `q` — calls `member_personal_search` and adds the
condition it returns; without it a phone- or ID-shaped text matches only member numbers
and names, so a refused search finds nothing by the number anywhere.
"""

from __future__ import annotations

import logging
import math
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext

from portal.errors import InvalidInput, NotAllowed
from portal.masking import mask_id_number, mask_personal_numbers, mask_phone
from portal.models import AuditEntry
from portal.permissions import user_can
from portal.services import audit_record

from ..selectors import member_scope, personal_number_parse, personal_number_q
from .personal import REASON_MAX_LENGTH

__all__ = [
    "PERSONAL_SEARCH_ACTION",
    "PersonalSearchThrottled",
    "member_personal_search",
    "personal_search_refusal_text",
]

logger = logging.getLogger(__name__)

#: the audit action of a search by a full ID or phone number
PERSONAL_SEARCH_ACTION = "member.search_personal"
#: searches a user may make per window, unless settings say otherwise
PERSONAL_SEARCH_LIMIT_DEFAULT = 20
PERSONAL_SEARCH_WINDOW_MINUTES_DEFAULT = 60
#: PostgreSQL advisory-lock class serialising one user's searches, so that two requests at
#: once cannot both pass the count (the second key is the user's id)
PERSONAL_SEARCH_LOCK_CLASS = 7_302_100
_LOCK_IDS = 2**31
#: the member numbers an audit entry lists at most (a phone or ID number finds one or two)
AUDIT_MEMBERS_LISTED = 20


class PersonalSearchThrottled(NotAllowed):
    """The user has made as many searches by a personal number as the window allows; the
    API answers 429 with `Retry-After`."""

    http_status = 429
    code = "throttled"

    def __init__(self, message: str, *, retry_after: int):
        super().__init__(message, details={"retry_after": retry_after})
        #: seconds until the user may search again
        self.retry_after = retry_after


def personal_search_refusal_text() -> str:
    """What a user without the reveal right is told when they type a full ID or phone
    number."""
    return gettext(
        "Search by ID or phone number needs the reveal right; search by member number or name."
    )


def _limits() -> tuple[int, timedelta]:
    limit = getattr(settings, "PERSONAL_SEARCH_LIMIT", PERSONAL_SEARCH_LIMIT_DEFAULT)
    minutes = getattr(
        settings, "PERSONAL_SEARCH_WINDOW_MINUTES", PERSONAL_SEARCH_WINDOW_MINUTES_DEFAULT
    )
    return max(1, int(limit)), timedelta(minutes=max(1, int(minutes)))


def _lock_searches_of(user) -> None:
    """Hold, until the transaction ends, the lock of this user's searches (PostgreSQL; on
    SQLite, the development database, writes are serialised anyway)."""
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_advisory_xact_lock(%s, %s)",
            [PERSONAL_SEARCH_LOCK_CLASS, user.pk % _LOCK_IDS],
        )


def _refuse_over_the_limit(user) -> None:
    limit, window = _limits()
    now = timezone.now()
    recent = list(
        AuditEntry.objects.filter(actor=user, action=PERSONAL_SEARCH_ACTION, at__gt=now - window)
        .order_by("-at")
        .values_list("at", flat=True)[:limit]
    )
    if len(recent) < limit:
        return
    # one search more is allowed once the limit-th newest leaves the window
    frees_at = recent[limit - 1] + window
    retry_after = max(1, math.ceil((frees_at - now).total_seconds()))
    # shown to the minute, rounded up: trying at the minute shown succeeds
    shown = timezone.localtime(frees_at + timedelta(seconds=59)).replace(second=0)
    time_format = "%H:%M" if shown.date() == timezone.localtime(now).date() else "%Y-%m-%d %H:%M"
    logger.warning("Search by personal number refused to %s: over the limit", user.username)
    raise PersonalSearchThrottled(
        gettext(
            "You have searched by ID or phone number %(limit)d times in the last %(minutes)d "
            "minutes, the most allowed. You may search again at %(time)s."
        )
        % {
            "limit": limit,
            "minutes": int(window.total_seconds() // 60),
            "time": shown.strftime(time_format),
        },
        retry_after=retry_after,
    )


def _clean_reason(reason: str, *, text: str) -> str:
    """The optional reason, with the number searched for (or any other) masked in it."""
    reason = (reason or "").strip()
    if len(reason) > REASON_MAX_LENGTH:
        raise InvalidInput(
            gettext("The reason is too long (at most %(max)d characters).")
            % {"max": REASON_MAX_LENGTH},
            field="reason",
        )
    typed = text.strip()
    if typed:
        reason = reason.replace(typed, mask_personal_numbers(typed))
    return mask_personal_numbers(reason, broad=False)


def member_personal_search(*, user, text: str, reason: str = "", ip: str | None = None) -> Q | None:
    """The condition that finds the customers in `user`'s scope whose phone or ID number
    `text` is, or None when `text` is shaped like neither (nothing is recorded then).

    Refused (`NotAllowed`) to a role that may not reveal personal data, and
    (`PersonalSearchThrottled`) past the limit of searches in the window; otherwise
    recorded, in one transaction with the count of the user's searches, as
    "member.search_personal" with the number masked, never in clear."""
    parsed = personal_number_parse(text)
    if parsed is None:
        return None
    if not user_can(user, "members.reveal_personal_data"):
        raise NotAllowed(personal_search_refusal_text())
    reason = _clean_reason(reason, text=text)
    field, number = parsed
    with transaction.atomic():
        _lock_searches_of(user)
        _refuse_over_the_limit(user)
        matches = member_scope(user=user).filter(personal_number_q(text))
        found = list(
            matches.only("pk", "member_no").order_by("member_no")[: AUDIT_MEMBERS_LISTED + 1]
        )
        count = len(found) if len(found) <= AUDIT_MEMBERS_LISTED else matches.count()
        audit_record(
            actor=user,
            action=PERSONAL_SEARCH_ACTION,
            obj=found[0] if count == 1 else None,
            changes={
                "field": field,
                "q": mask_phone(number) if field == "phone" else mask_id_number(number),
                "matches": count,
                "members": [member.member_no for member in found[:AUDIT_MEMBERS_LISTED]],
            },
            reason=reason,
            ip=ip,
        )
    logger.info("Search by %s by %s found %d customers", field, user.username, count)
    if count > AUDIT_MEMBERS_LISTED:
        return Q(pk__in=matches.values("pk"))
    return Q(pk__in=[member.pk for member in found])
