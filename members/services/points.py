"""Writes of the points ledger: earn, spend, adjust and the nightly expiry.

The ledger (`PointsEntry`) is append-only; a member's balance is the sum of its entries and
`Member.points_balance` is that sum, moved in the same transaction as each entry. Spending
and expiry draw down the oldest earnings first (FIFO over EARN entries' `remaining`).
"""

from __future__ import annotations

import calendar
from collections import defaultdict
from dataclasses import dataclass
from datetime import date

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from portal.errors import InvalidInput, StateConflict
from portal.services import audit_record
from portal.sql import db_time, execute, rows_source

from ..choices import PointsEntryKind
from ..models import Member, PointsEntry


class InsufficientPoints(StateConflict):
    """The member has fewer points than asked for; nothing was written."""


@dataclass(frozen=True)
class NextYearEnd:
    """Points earned in year Y expire after 31 December of Y + 1 (积分有效期至次年年底)."""

    def expires_on(self, earned_on: date) -> date:
        return date(earned_on.year + 1, 12, 31)


@dataclass(frozen=True)
class RollingMonths:
    """Points expire at the end of the month N months after the month they were earned."""

    months: int

    def expires_on(self, earned_on: date) -> date:
        index = earned_on.year * 12 + earned_on.month - 1 + self.months
        year, month = divmod(index, 12)
        return date(year, month + 1, calendar.monthrange(year, month + 1)[1])


#: POINTS_EXPIRY_POLICY → how to build the policy from the settings
EXPIRY_POLICIES = {
    "NEXT_YEAR_END": lambda: NextYearEnd(),
    "MONTHS": lambda: RollingMonths(settings.POINTS_EXPIRY_MONTHS),
}


def expiry_policy():
    """The configured policy (settings.POINTS_EXPIRY_POLICY)."""
    name = settings.POINTS_EXPIRY_POLICY
    try:
        return EXPIRY_POLICIES[name]()
    except KeyError:
        raise ValueError(
            f"POINTS_EXPIRY_POLICY={name!r} is not a policy: use "
            + " or ".join(EXPIRY_POLICIES)
            + "."
        ) from None


def points_earn(
    *, member_id: int, points: int, business_date: date, source: str, idempotency_key: str
) -> PointsEntry | None:
    """Credit `points` once per idempotency key (the same key again returns None and
    changes nothing). Runs inside the caller's transaction."""
    if points <= 0:
        raise InvalidInput("points_earn needs a positive number of points.")
    try:
        with transaction.atomic():
            entry = PointsEntry.objects.create(
                member_id=member_id,
                kind=PointsEntryKind.EARN,
                points=points,
                remaining=points,
                business_date=business_date,
                expires_on=expiry_policy().expires_on(business_date),
                source=source[:100],
                idempotency_key=idempotency_key,
            )
    except IntegrityError:
        return None
    Member.objects.filter(pk=member_id).update(points_balance=F("points_balance") + points)
    return entry


@dataclass(frozen=True)
class PointsCredit:
    """One credit of a set: `points` to a member, once per idempotency `key`."""

    member_id: int
    points: int
    source: str
    key: str


@dataclass
class PointsEarned:
    """What `points_earn_many` wrote: entry id per idempotency key written now, and the points
    per member that `points_balances_add` moves onto the balances."""

    entries: dict[str, int]
    balances: dict[int, int]


def points_earn_many(*, credits: list[PointsCredit], business_date: date) -> PointsEarned:
    """Credit a set of rewards with ONE ledger INSERT, skipping keys already credited (by
    anyone, even concurrently: the unique key makes the second writer wait, then skip).
    The balances are NOT moved here: the caller moves them with `points_balances_add` in
    the same transaction, after any other row it must lock first (a batch locks budget rows
    before member rows)."""
    if not credits:
        return PointsEarned({}, {})
    if any(credit.points <= 0 for credit in credits):
        raise InvalidInput(_("Every credit needs a positive number of points."))
    source, params = rows_source(
        {"member_id": "bigint", "points": "bigint", "source": "varchar", "key": "varchar"},
        sorted(
            (credit.member_id, credit.points, credit.source[:100], credit.key) for credit in credits
        ),
    )
    written = execute(
        "INSERT INTO members_pointsentry (member_id, kind, points, remaining, business_date, "
        "expires_on, source, idempotency_key, note, created_at) SELECT v.member_id, %s, "
        f"v.points, v.points, %s, %s, v.source, v.key, '', %s FROM {source} AS v WHERE true "
        "ORDER BY v.key ON CONFLICT (idempotency_key) DO NOTHING "
        "RETURNING id, idempotency_key, member_id, points",
        [
            PointsEntryKind.EARN,
            business_date,
            expiry_policy().expires_on(business_date),
            db_time(timezone.now()),
            *params,
        ],
    )
    balances: dict[int, int] = defaultdict(int)
    for _pk, _key, member_id, points in written:
        balances[member_id] += points
    return PointsEarned({key: pk for pk, key, _, _ in written}, dict(balances))


def points_balances_add(*, balances: dict[int, int]) -> None:
    """Move members' points balances by the points credited (`PointsEarned.balances`): one
    UPDATE, in member id order. The balance stays the sum of the ledger."""
    if not balances:
        return
    source, params = rows_source({"id": "bigint", "points": "bigint"}, sorted(balances.items()))
    execute(
        "UPDATE members_member SET points_balance = members_member.points_balance + v.points "
        f"FROM {source} AS v WHERE members_member.id = v.id",
        params,
    )


def _draw_down(*, member_id: int, points: int) -> None:
    """Take `points` from the member's oldest open earnings (locked, in expiry order)."""
    left = points
    earnings = (
        PointsEntry.objects.select_for_update()
        .filter(member_id=member_id, kind=PointsEntryKind.EARN, remaining__gt=0)
        .order_by("expires_on", "id")
    )
    for earning in earnings:
        take = min(left, earning.remaining)
        PointsEntry.objects.filter(pk=earning.pk).update(remaining=F("remaining") - take)
        left -= take
        if not left:
            return
    raise InsufficientPoints(_("The member has fewer than %(n)s points.") % {"n": points})


@transaction.atomic
def points_spend(
    *, member: Member, points: int, business_date: date, source: str, idempotency_key: str
) -> PointsEntry:
    """Spend points (oldest first); `InsufficientPoints` if the balance is short. The same
    idempotency key again returns the first spend."""
    existing = PointsEntry.objects.filter(idempotency_key=idempotency_key).first()
    if existing is not None:
        return existing
    if points <= 0:
        raise InvalidInput(_("Spend a positive number of points."))
    Member.objects.select_for_update().filter(pk=member.pk).first()  # one spender at a time
    _draw_down(member_id=member.pk, points=points)
    entry = PointsEntry.objects.create(
        member=member,
        kind=PointsEntryKind.SPEND,
        points=-points,
        business_date=business_date,
        source=source[:100],
        idempotency_key=idempotency_key,
    )
    Member.objects.filter(pk=member.pk).update(points_balance=F("points_balance") - points)
    return entry


@transaction.atomic
def points_adjust(
    *, member: Member, points: int, business_date: date, reason: str, actor, idempotency_key: str
) -> PointsEntry:
    """A staff correction, audited: positive credits new points (with the normal expiry),
    negative takes points away oldest first."""
    if not points:
        raise InvalidInput(_("An adjustment needs a non-zero number of points."))
    if not reason.strip():
        raise InvalidInput(_("An adjustment needs a reason."))
    existing = PointsEntry.objects.filter(idempotency_key=idempotency_key).first()
    if existing is not None:
        return existing
    Member.objects.select_for_update().filter(pk=member.pk).first()
    if points < 0:
        _draw_down(member_id=member.pk, points=-points)
    entry = PointsEntry.objects.create(
        member=member,
        kind=PointsEntryKind.EARN if points > 0 else PointsEntryKind.ADJUST,
        points=points,
        remaining=max(points, 0),
        business_date=business_date,
        expires_on=expiry_policy().expires_on(business_date) if points > 0 else None,
        source="adjust",
        note=reason[:200],
        idempotency_key=idempotency_key,
        actor=actor if getattr(actor, "pk", None) else None,
    )
    Member.objects.filter(pk=member.pk).update(points_balance=F("points_balance") + points)
    audit_record(
        actor=actor, action="points.adjust", obj=member, changes={"points": points}, reason=reason
    )
    return entry


# The nightly expiry: three statements over every open earning that expired before the
# business date. One EXPIRE entry per member and date (its key makes a re-run a no-op).
_EXPIRE_SQL = [
    """
INSERT INTO members_pointsentry
    (member_id, kind, points, remaining, business_date, source, idempotency_key, note, created_at)
SELECT member_id, 'EXPIRE', -SUM(remaining), 0, %(d)s, 'expiry',
       'expire:' || CAST(member_id AS VARCHAR(20)) || ':' || %(key)s, '', %(now)s
FROM members_pointsentry
WHERE kind = 'EARN' AND remaining > 0 AND expires_on < %(d)s
GROUP BY member_id
ON CONFLICT (idempotency_key) DO NOTHING
""",
    """
UPDATE members_member SET points_balance = members_member.points_balance - t.expired
FROM (SELECT member_id, SUM(remaining) AS expired FROM members_pointsentry
      WHERE kind = 'EARN' AND remaining > 0 AND expires_on < %(d)s GROUP BY member_id) t
WHERE members_member.id = t.member_id
""",
    """
UPDATE members_pointsentry SET remaining = 0
WHERE kind = 'EARN' AND remaining > 0 AND expires_on < %(d)s
""",
]


@transaction.atomic
def points_expire(*, business_date: date) -> dict:
    """Expire every earning whose `expires_on` is before the business date: set-based, one
    EXPIRE entry per member, idempotent for the date (a second run finds nothing open)."""
    params = {"d": business_date, "key": business_date.isoformat(), "now": timezone.now()}
    with connection.cursor() as cursor:
        cursor.execute(_EXPIRE_SQL[0], params)
        members = cursor.rowcount
        cursor.execute(
            "SELECT COALESCE(SUM(points), 0) FROM members_pointsentry "
            "WHERE kind = 'EXPIRE' AND business_date = %(d)s",
            params,
        )
        points = -int(cursor.fetchone()[0])
        for sql in _EXPIRE_SQL[1:]:
            cursor.execute(sql, params)
    return {"members": max(members, 0), "points_expired": points}
