"""Masking of personal data. Everything a page, the admin, the API or an export shows
goes through these; the raw values are only shown by an audited reveal."""

from __future__ import annotations

import csv
import io
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


#: where a number may start: not after a letter or a digit (a member number M13900000001
#: is no phone), unless they end a percent escape, as in a logged query (`q%3D139…`)
_START = r"(?:(?<=%[0-9A-Fa-f]{2})|(?<![0-9A-Za-z.]))"
#: between the groups of a typed mobile number: a space or a dash, also as a query string
#: writes them (`+` or `%20` for a space, `%2D`)
_SEP = r"(?:[ +\-]|%20|%2[Dd])"
_ID_SHAPED = re.compile(_START + r"(\d{17}[\dXx]|\d{15})(?![0-9A-Za-z])")
#: a mainland mobile number as people write it: 13900000001, 139 0000 0001, 139-0000-0001,
#: with a country code +86, 86-, (+86) or %2B86 in front; never the digits of an amount
#: (13900000001.50)
_MOBILE_SHAPED = re.compile(
    _START
    + r"(?P<prefix>(?:\(|%28)?(?:\+|%2[Bb])?86(?:\)|%29)?"
    + _SEP
    + r"{0,2})?"
    + r"(?P<head>1[3-9]\d)(?P<sep1>"
    + _SEP
    + r"?)\d{4}(?P<sep2>"
    + _SEP
    + r"?)(?P<tail>\d{4})(?!\d|\.\d)"
)
_PHONE_SHAPED = re.compile(_START + r"\+?\d{7,14}(?![0-9.])")


def _masked_mobile(match: re.Match) -> str:
    """The mobile number of `match` with its middle four digits hidden, written as typed."""
    return "".join(
        (match["prefix"] or "", match["head"], match["sep1"], "****", match["sep2"], match["tail"])
    )


def mask_personal_numbers(text: str, *, broad: bool = True) -> str:
    """Mask every ID-number-shaped and phone-shaped run of digits in free text (a raw feed
    row, a log line, a percent-encoded query string). `broad` also masks any 7–14 digit
    number; without it only Chinese mobile numbers (in every common form: spaces, dashes,
    +86), so that amounts in asset or consumption rows stay readable."""
    text = _ID_SHAPED.sub(lambda m: mask_id_number(m.group(0)), text)
    text = _MOBILE_SHAPED.sub(_masked_mobile, text)
    if broad:
        text = _PHONE_SHAPED.sub(lambda m: mask_phone(m.group(0)), text)
    return text


_WHOLE_ID = re.compile(r"^(\d{17}[\dXx]|\d{15})$", re.ASCII)
_WHOLE_PHONE = re.compile(r"^\+?\d{7,15}$", re.ASCII)
_DATE_LIKE = re.compile(r"^\d{4}-\d{2}-\d{2}([ T][0-9:.+\-Z]*)?$", re.ASCII)


def mask_digits(text: str, *, keep_first: int = 3, keep_last: int = 2) -> str:
    """Mask every digit of `text` but the first and last few (separators stay as typed)."""
    positions = [i for i, char in enumerate(text) if char.isdigit() or char in "Xx"]
    hidden = set(positions[keep_first : len(positions) - keep_last])
    return "".join("*" if i in hidden else char for i, char in enumerate(text))


def mask_members_row(raw: str) -> str:
    """A raw members-feed row for display: every field with 7 or more digits (a phone or ID
    number, however mistyped) is masked, except the member number and dates."""
    try:
        fields = next(csv.reader([raw]))
    except (csv.Error, StopIteration):
        return mask_personal_numbers(raw)

    def mask_field(index: int, field: str) -> str:
        value = field.strip()
        if index == 0 or _DATE_LIKE.match(value) or sum(c.isdigit() for c in value) < 7:
            return field
        if _WHOLE_ID.match(value):
            return mask_id_number(value)
        if _WHOLE_PHONE.match(value):
            return mask_phone(value)
        return mask_digits(field)

    masked = [mask_field(index, field) for index, field in enumerate(fields)]
    out = io.StringIO()
    csv.writer(out, lineterminator="").writerow(masked)
    return out.getvalue()
