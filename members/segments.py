"""Segment rules: a small class per member field, chosen from a map (STYLE.md).

A segment is a list of conditions `{"field": "lifecycle_stage", "op": "in", "value":
["DORMANT"]}`, all of which must hold. Each field class checks its operator and value when
the segment is saved (`segment_rules_validate`) and turns a condition into a `Q` over
`Member`, so a segment's live size and its use in campaign targeting are one query.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation

from django.core.exceptions import ValidationError
from django.db.models import Q
from django.utils.translation import gettext as _

from portal.clock import today_in_shanghai
from portal.models import Branch

from .choices import LifecycleStage, MemberStatus, SchemeStatus, SegmentField
from .models import Segment, Tier

NUMBER_OPS = {"gte": "gte", "lte": "lte", "gt": "gt", "lt": "lt", "eq": "exact"}


@dataclass(frozen=True)
class ChoiceField:
    """A field with a fixed set of codes; `in` / `not_in` a list of them."""

    lookup: str
    choices: tuple[str, ...] | None = None  # None: validated against the database

    ops = ("in", "not_in")

    def clean(self, op: str, value) -> list[str]:
        if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
            raise ValidationError(_("Give a non-empty list of codes."))
        if self.choices is not None:
            unknown = sorted(set(value) - set(self.choices))
            if unknown:
                raise ValidationError(_("Unknown code(s): %s.") % ", ".join(unknown))
        return value

    def q(self, op: str, value, on: date) -> Q:
        q = Q(**{f"{self.lookup}__in": value})
        return ~q if op == "not_in" else q


class TierField(ChoiceField):
    def clean(self, op: str, value) -> list[str]:
        value = super().clean(op, value)
        # Members are graded by the active scheme only: a code that exists just in a draft or
        # retired scheme (e.g. STAR3 of DEFAULT_POINTS) would match nobody.
        known = set(
            Tier.objects.filter(scheme__status=SchemeStatus.ACTIVE, code__in=value).values_list(
                "code", flat=True
            )
        )
        unknown = sorted(set(value) - known)
        if unknown:
            raise ValidationError(_("Not a tier of the active scheme: %s.") % ", ".join(unknown))
        return value


class BranchField(ChoiceField):
    """A branch and everything under it (the branch's materialised path)."""

    def clean(self, op: str, value) -> list[str]:
        value = super().clean(op, value)
        known = set(Branch.objects.filter(code__in=value).values_list("code", flat=True))
        unknown = sorted(set(value) - known)
        if unknown:
            raise ValidationError(_("Unknown branch code(s): %s.") % ", ".join(unknown))
        return value

    def q(self, op: str, value, on: date) -> Q:
        q = Q()
        for path in Branch.objects.filter(code__in=value).values_list("path", flat=True):
            q |= Q(branch__path__startswith=path)
        return ~q if op == "not_in" else q


@dataclass(frozen=True)
class NumberField:
    """A number compared with gte / lte / gt / lt / eq."""

    lookup: str
    decimal: bool = False

    ops = tuple(NUMBER_OPS)

    def clean(self, op: str, value):
        try:
            number = Decimal(str(value))
        except (InvalidOperation, ValueError):
            raise ValidationError(_("Give a number.")) from None
        if not number.is_finite() or number < 0:
            raise ValidationError(_("Give a number of 0 or more."))
        if not self.decimal and number != number.to_integral_value():
            raise ValidationError(_("Give a whole number."))
        return str(number) if self.decimal else int(number)

    def q(self, op: str, value, on: date) -> Q:
        return Q(**{f"{self.lookup}__{NUMBER_OPS[op]}": value})


class DaysSinceField(NumberField):
    """Days between a member date and the business date: "≥ 90 days since" is a date bound."""

    # days-since ≥ N  ⇔  date ≤ on − N, so each operator flips.
    flipped = {"gte": "lte", "lte": "gte", "gt": "lt", "lt": "gt", "eq": "exact"}

    def q(self, op: str, value, on: date) -> Q:
        bound = on - timedelta(days=int(value))
        return Q(**{f"{self.lookup}__{self.flipped[op]}": bound})


class LastActiveField(DaysSinceField):
    """As lifecycle stages count it: the last activity, or the registration date."""

    def q(self, op: str, value, on: date) -> Q:
        bound = on - timedelta(days=int(value))
        lookup = self.flipped[op]
        return Q(last_active_on__isnull=False, **{f"last_active_on__{lookup}": bound}) | Q(
            last_active_on__isnull=True, **{f"registered_at__date__{lookup}": bound}
        )


class AgeField(NumberField):
    """Whole years of age on the business date, from the birth date (unknown: never)."""

    def q(self, op: str, value, on: date) -> Q:
        years = int(value)

        def born_on_or_before(n: int) -> date:  # aged ≥ n on `on`
            try:
                return on.replace(year=on.year - n)
            except ValueError:  # 29 February
                return on.replace(year=on.year - n, day=28)

        if op == "gte":
            return Q(birth_date__lte=born_on_or_before(years))
        if op == "gt":
            return Q(birth_date__lte=born_on_or_before(years + 1))
        if op == "lte":
            return Q(birth_date__gt=born_on_or_before(years + 1))
        if op == "lt":
            return Q(birth_date__gt=born_on_or_before(years))
        return Q(
            birth_date__lte=born_on_or_before(years), birth_date__gt=born_on_or_before(years + 1)
        )


class MadaField(NumberField):
    """The latest graded basis of a MADA scheme, in CNY (kept in fen, `MemberTierBasis`)."""

    def q(self, op: str, value, on: date) -> Q:
        return super().q(op, int(Decimal(value) * 100), on)  # CNY given, fen stored


SEGMENT_FIELDS = {
    SegmentField.TIER: TierField("tier__code"),
    SegmentField.LIFECYCLE_STAGE: ChoiceField("lifecycle_stage", tuple(LifecycleStage.values)),
    SegmentField.STATUS: ChoiceField("status", tuple(MemberStatus.values)),
    SegmentField.BRANCH: BranchField("branch__code"),
    SegmentField.DAYS_SINCE_ACTIVE: LastActiveField("last_active_on"),
    SegmentField.DAYS_SINCE_REGISTERED: DaysSinceField("registered_at__date"),
    SegmentField.POINTS_BALANCE: NumberField("points_balance"),
    SegmentField.MADA: MadaField("basis__value", decimal=True),
    SegmentField.AGE: AgeField("birth_date"),
}


def segment_rules_validate(rules) -> list[dict]:
    """The rules in their clean form, or `ValidationError` naming the condition at fault."""
    if not isinstance(rules, list):
        raise ValidationError(_("Rules must be a list of conditions."))
    cleaned, errors = [], []
    for index, rule in enumerate(rules, start=1):
        if not isinstance(rule, dict) or set(rule) != {"field", "op", "value"}:
            errors.append(_("Condition %d needs exactly field, op and value.") % index)
            continue
        field = SEGMENT_FIELDS.get(rule["field"])
        if field is None:
            errors.append(
                _("Condition %(n)d: unknown field %(field)s (one of %(known)s).")
                % {"n": index, "field": rule["field"], "known": ", ".join(SEGMENT_FIELDS)}
            )
            continue
        if rule["op"] not in field.ops:
            errors.append(
                _("Condition %(n)d: operator %(op)s is not one of %(ops)s.")
                % {"n": index, "op": rule["op"], "ops": ", ".join(field.ops)}
            )
            continue
        try:
            value = field.clean(rule["op"], rule["value"])
        except ValidationError as exc:
            errors.append(_("Condition %(n)d: %(error)s") % {"n": index, "error": exc.messages[0]})
            continue
        cleaned.append({"field": rule["field"], "op": rule["op"], "value": value})
    if errors:
        raise ValidationError(errors)
    return cleaned


def segment_filter(segment: Segment, *, on: date | None = None) -> Q:
    """The saved segment's rules as one `Q` over `Member`, for business date `on`."""
    return segment_q(segment.rules, on=on)


def segment_q(rules: list[dict], *, on: date | None = None) -> Q:
    """All conditions as one `Q` over `Member`, evaluated for business date `on`."""
    on = on or today_in_shanghai()
    q = Q()
    for rule in rules:
        q &= SEGMENT_FIELDS[rule["field"]].q(rule["op"], rule["value"], on)
    return q


__all__ = ["SEGMENT_FIELDS", "segment_filter", "segment_q", "segment_rules_validate"]
