"""Money at the edges is `Decimal` CNY with 2 places; high-volume tables store integer fen.

Integer fen (分) keeps sums exact on both PostgreSQL and SQLite (whose NUMERIC columns
would silently become binary floats) and makes inclusive-threshold tests exact:
``day_sum_fen >= threshold_fen * days`` needs no division at all.
"""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal

from portal.display import money_text

CENT = Decimal("0.01")
_AMOUNT = re.compile(r"^(\d{1,15})(?:\.(\d{1,2}))?$", re.ASCII)


def parse_fen(text: str) -> int | None:
    """Parse a non-negative amount with at most 2 decimals ("1234.5") into fen; None if invalid."""
    match = _AMOUNT.match(text)
    if match is None:
        return None
    whole, frac = match.groups()
    return int(whole) * 100 + (int(frac.ljust(2, "0")) if frac else 0)


def fen_to_decimal(fen: int) -> Decimal:
    return (Decimal(fen) / 100).quantize(CENT)


def decimal_to_fen(amount: Decimal) -> int:
    return int((amount.quantize(CENT, rounding=ROUND_HALF_UP) * 100).to_integral_value())


def average_fen(total_fen: int, days: int) -> Decimal:
    """A day-sum divided by a number of days, as CNY rounded half-up to the cent."""
    if days <= 0:
        return Decimal("0.00")
    return (Decimal(total_fen) / Decimal(days) / 100).quantize(CENT, rounding=ROUND_HALF_UP)


def yuan_text(amount: Decimal) -> str:
    """An amount as people read it: ¥1,234.50 in 简体中文, CNY 1,234.50 in English."""
    return money_text(amount)
