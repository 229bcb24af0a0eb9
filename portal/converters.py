"""Path converters for the portal's addresses (`<member_no:member_no>`).

A member number in an address is matched by its shape — up to 32 letters, digits, `_` or
`-`, as the members feed takes it (`members.feeds`) — so a malformed one (a NUL, a space, a
hundred characters) is a 404 from the resolver, never a query that fails in the database.
Importing this module registers the converters; every URLconf that uses one imports it.
"""

from __future__ import annotations

from django.urls import register_converter

__all__ = ["MEMBER_NO_PATTERN", "MemberNoConverter"]

#: a member number as the members feed accepts it (members.feeds)
MEMBER_NO_PATTERN = r"[A-Za-z0-9_-]{1,32}"


class MemberNoConverter:
    regex = MEMBER_NO_PATTERN

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


register_converter(MemberNoConverter, "member_no")
