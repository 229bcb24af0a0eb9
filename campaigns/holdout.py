"""Who a campaign holds out (DESIGN.md): a random, stable share of its audience that is not
offered the campaign's tasks, so that what the campaign changed can be measured against
them (`campaigns.uplift`).

A member is held out of a campaign when the keyed hash of (campaign, member) falls below
the campaign's share:

    bucket = the first 4 bytes of SHA-256(key ":" member_no), big-endian, in [0, 2³²)
    held out  ⇔  bucket < share × 2³² / 100

- the key is the campaign's own random `holdout_key`, made when the campaign is created and
  never changed: the same members stay held out across nights, pauses and re-launches;
  keys of two campaigns are independent, so are their holdouts;
- the member enters by their bank member number, not by a row id: a member deleted and
  loaded again by the members feed keeps their group;
- one rule, two doors: `Holdout.holds_out` for the events of one batch (Python), and
  `Holdout.condition` over `Member` for counts and the audience snapshot (SQL: PostgreSQL's
  own sha256; on SQLite the same Python function, registered on each connection).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from django.db.models import BigIntegerField, F, Func, Q, Value
from django.db.models.lookups import LessThan

__all__ = [
    "DEFAULT_SHARE",
    "Holdout",
    "HoldoutBucket",
    "MAX_FOLLOW_UP_DAYS",
    "MAX_SHARE",
    "bucket",
    "holdout_key_new",
    "sqlite_functions_register",
]

#: share held out of a new campaign, in whole percent of its audience
DEFAULT_SHARE = 10
#: at most half the audience is held out (the rest must be offered the campaign)
MAX_SHARE = 50
#: outcomes are measured at most this long after a campaign's window
MAX_FOLLOW_UP_DAYS = 180
#: buckets are 32-bit
SPACE = 2**32
_SQLITE_FUNCTION = "campaign_holdout_bucket"


def holdout_key_new() -> str:
    """A campaign's holdout key: 128 random bits, hex."""
    return secrets.token_hex(16)


def bucket(key: str, member_no: str) -> int:
    """The member's bucket in the campaign with this key, in [0, 2³²)."""
    digest = hashlib.sha256(f"{key}:{member_no}".encode()).digest()
    return int.from_bytes(digest[:4], "big")


class HoldoutBucket(Func):
    """`bucket(key, member_no)` in SQL: the same number as the Python function."""

    function = _SQLITE_FUNCTION
    output_field = BigIntegerField()
    arity = 2

    def as_postgresql(self, compiler, connection, **extra):
        return self.as_sql(
            compiler,
            connection,
            template=(
                "('x' || substr(encode(sha256(convert_to("
                "CAST(%(expressions)s AS text), 'UTF8')), 'hex'), 1, 8))::bit(32)::bigint"
            ),
            arg_joiner=" || ':' || ",
            **extra,
        )


def sqlite_functions_register(sender, connection, **kwargs) -> None:
    """`connection_created` receiver: SQLite gets the bucket as a Python function."""
    if connection.vendor == "sqlite":
        connection.connection.create_function(
            _SQLITE_FUNCTION, 2, lambda key, member_no: bucket(key, member_no), deterministic=True
        )


@dataclass(frozen=True)
class Holdout:
    """The holdout of one campaign: its key and the share held out."""

    key: str
    share: int  # percent

    @classmethod
    def of(cls, campaign) -> Holdout | None:
        """The campaign's holdout; None when it holds out nobody."""
        share = int(campaign.holdout_share or 0)
        return cls(campaign.holdout_key, share) if share > 0 else None

    @property
    def threshold(self) -> int:
        return self.share * SPACE // 100

    def holds_out(self, member_no: str) -> bool:
        return bucket(self.key, member_no) < self.threshold

    def condition(self, member_no: str = "member_no") -> Q:
        """The members held out, as a condition over the model with field `member_no`."""
        return Q(LessThan(HoldoutBucket(Value(self.key), F(member_no)), self.threshold))
