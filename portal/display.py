"""How values read on a page, in a CSV for people and in an approval: one place for money,
percentages, names by language, people and codes.

- Money: ¥1,234,567.89 in 简体中文, CNY 1,234,567.89 in English (2 decimals, grouped).
- Percentages carry %: 1.2%.
- A tier or a benefit by its name in the user's language (its English name when set).
- A person by their full name (Chinese order, no space: 周敏), else their username.
- A code shown beside a name for staff who need it: grey, and marked `translate="no"`.
Codes stay in the data and in API payloads; this module is for what people read.
"""

from __future__ import annotations

from decimal import Decimal

from django.utils.formats import number_format
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import get_language
from django.utils.translation import gettext as _

__all__ = [
    "code_html",
    "in_english",
    "money_text",
    "name_of",
    "percent_text",
    "person_name",
]

CENT = Decimal("0.01")


def in_english() -> bool:
    return (get_language() or "").startswith("en")


def money_text(amount: Decimal | int | str | None) -> str:
    """An amount of CNY as people read it in the current language; "—" for none."""
    if amount is None or amount == "":
        return "—"
    value = Decimal(str(amount)).quantize(CENT)
    sign, value = ("−", -value) if value < 0 else ("", value)
    digits = number_format(value, 2, force_grouping=True)
    if in_english():
        return f"{sign}CNY {digits}"
    return f"{sign}¥{digits}"


def percent_text(value: Decimal | float | int | None, places: int = 1) -> str:
    """A percentage with its sign: 1.2% (trailing zeros of the places dropped: 80%)."""
    if value is None or value == "":
        return "—"
    number = Decimal(str(value)).quantize(Decimal(1).scaleb(-places))
    text = number_format(number, places, force_grouping=True)
    if places and "." in text:
        text = text.rstrip("0").rstrip(".")
    return f"{text}%"


def name_of(row) -> str:
    """A tier, a benefit or anything with `name` / `name_en` by its name in the user's
    language (its English name when set, else its Chinese one); "—" for none."""
    if row is None:
        return "—"
    if isinstance(row, dict):
        name, english = row.get("name", ""), row.get("name_en", "")
    else:
        name, english = getattr(row, "name", ""), getattr(row, "name_en", "")
    return english if in_english() and english else name


def person_name(user) -> str:
    """A staff user as people name them: the full name, else the username; "—" for none."""
    if user is None:
        return "—"
    return user.get_full_name() or user.get_username()


def system_or_person(user) -> str:
    """A person, or "the system" for work that no person did (a night, a feed)."""
    return person_name(user) if user is not None else _("system")


def code_html(code: str) -> SafeString:
    """A code for staff beside the name it belongs to: grey, never translated."""
    return format_html('<span class="code" translate="no">{}</span>', code)
