"""Bounds of configuration numbers: one declaration per input, one refusal text.

A domain declares each bounded input once (`Bound(field, label, low, high)`) and checks
values with it wherever they come in — services, admin forms, API serializers, the nightly
steps that read stored rows — so that a quantity of 99,999,999,999 or a unit cost of
¥99,999,999.00 is refused at the door with the field named in the user's language, and a
row that reached the database some other way is recognised as bad by the night.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from django.utils.formats import number_format
from django.utils.functional import Promise
from django.utils.translation import gettext as _

from .errors import InvalidInput
from .money import CENT, yuan_text

__all__ = ["Bound", "BoundError"]


class BoundError(InvalidInput):
    """A configuration number is not a number, or outside its bounds (the field is named)."""

    code = "out_of_bounds"


def _shown(value: Decimal | int, *, money: bool) -> str:
    if money:
        return yuan_text(value)
    return number_format(value, force_grouping=True)


@dataclass(frozen=True)
class Bound:
    """A number input: whole (`whole=True`) or an amount of money in yuan to the fen
    (`money=True`), from `low` to `high` inclusive."""

    field: str
    label: str | Promise
    low: Decimal | int
    high: Decimal | int
    whole: bool = True
    money: bool = False

    def describe(self) -> str:
        """ "from 1 to 999" in the user's language, the way people read numbers."""
        return _("from %(low)s to %(high)s") % {
            "low": _shown(self.low, money=self.money),
            "high": _shown(self.high, money=self.money),
        }

    def problem(self, value) -> str:
        """Why `value` (a number, or text as typed: separators allowed) does not fit, in the
        user's language; "" when it does."""
        try:
            self.parse(value)
        except BoundError as exc:
            return exc.message
        return ""

    def parse(self, value) -> Decimal | int:
        """`value` (a number, or text as typed, with or without thousands separators) as an
        int (whole) or a Decimal (money), or `BoundError` naming the field."""
        number = self._number(value)
        if number is None:
            raise self._refusal()
        if number < self.low or number > self.high:
            raise self._refusal()
        return int(number) if self.whole else number

    check = parse

    def _number(self, value) -> Decimal | None:
        if isinstance(value, bool) or value is None:
            return None
        if isinstance(value, float):
            return None  # never money, never a count: a float is a client's mistake
        if isinstance(value, str):
            value = value.strip().replace(",", "").replace("，", "").replace("¥", "")
            if not value or len(value) > 24 or not value.isascii():
                return None  # "٣" or "３" are digits to Python, not to a bank's forms
        try:
            number = Decimal(value)
        except (InvalidOperation, TypeError, ValueError):
            return None
        if not number.is_finite():
            return None
        if self.whole and number != number.to_integral_value():
            return None
        if self.money and number != number.quantize(CENT):
            return None
        return number

    def _refusal(self) -> BoundError:
        if self.whole:
            text = _("%(label)s must be a whole number %(range)s.")
        elif self.money:
            text = _("%(label)s must be an amount in yuan, to the fen, %(range)s.")
        else:
            text = _("%(label)s must be a number %(range)s.")
        label = str(self.label)
        message = text % {"label": label[:1].upper() + label[1:], "range": self.describe()}
        return BoundError(
            message,
            field=self.field,
            details={"field": self.field, "min": str(self.low), "max": str(self.high)},
        )
