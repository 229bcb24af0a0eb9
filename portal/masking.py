"""Masking of personal data. Everything a page, the admin, the API or an export shows
goes through these; the raw values are only shown by an audited reveal."""

from __future__ import annotations

import re


def mask_phone(phone: str | None) -> str:
    """``13812345678`` → ``138****5678``: keep the first 3 and last 4 digits."""
    if not phone:
        return ""
    if len(phone) <= 7:
        return "*" * (len(phone) - 2) + phone[-2:] if len(phone) > 2 else "*" * len(phone)
    return phone[:3] + "*" * (len(phone) - 7) + phone[-4:]


def mask_id_number(id_number: str | None) -> str:
    """``110101199003071234`` → ``110101**********34``: the region code and last 2 only."""
    if not id_number:
        return ""
    if len(id_number) <= 8:
        return "*" * len(id_number)
    return id_number[:6] + "*" * (len(id_number) - 8) + id_number[-2:]


def mask_name(name: str | None) -> str:
    """``王小明`` → ``王**``: the family name only (used in logs and exports)."""
    if not name:
        return ""
    return name[0] + "*" * (len(name) - 1)


_ID_SHAPED = re.compile(r"(?<![0-9A-Za-z])(\d{17}[\dXx]|\d{15})(?![0-9A-Za-z])")
_MOBILE_SHAPED = re.compile(r"(?<![0-9A-Za-z.])(\+?86)?1[3-9]\d{9}(?![0-9.])")
_PHONE_SHAPED = re.compile(r"(?<![0-9A-Za-z.])\+?\d{7,14}(?![0-9.])")


def mask_personal_numbers(text: str, *, broad: bool = True) -> str:
    """Mask every ID-number-shaped and phone-shaped run of digits in free text (a raw feed
    row, a log line). `broad` also masks any 7–14 digit number; without it only Chinese
    mobile numbers, so that amounts in asset or consumption rows stay readable."""
    text = _ID_SHAPED.sub(lambda m: mask_id_number(m.group(0)), text)
    text = _MOBILE_SHAPED.sub(lambda m: mask_phone(m.group(0)), text)
    if broad:
        text = _PHONE_SHAPED.sub(lambda m: mask_phone(m.group(0)), text)
    return text
