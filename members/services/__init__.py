"""Writes of the members app, one module per concern: the data-warehouse feeds (`feeds`),
the nightly tier recompute and scheme simulation (`tiers`), manual tier overrides
(`overrides`), tier scheme activation (`schemes`), lifecycle stages (`lifecycle`), activity
days (`activity`), the points ledger (`points`), saved segments (`segments`), follow-up
notes (`notes`) and personal data (`personal`). Other apps call these; none writes a
members table itself."""

from .activity import (
    ACTIVITY_COLUMNS,
    member_activity_record_many,
    member_last_active_advance_many,
)
from .feeds import (
    FeedFileError,
    asset_feed_missing_days,
    feed_arrival_check,
    feed_arrival_warning,
    feed_batches_interrupted_mark,
    feed_import,
)
from .lifecycle import LIFECYCLE_DEFAULTS, lifecycle_recompute
from .notes import NoteError, followup_note_add, followup_note_done
from .overrides import (
    tier_override_apply,
    tier_override_latest_expiry,
    tier_override_problems,
    tier_override_refuse,
    tier_override_replaces,
    tier_override_request,
    tier_override_withdraw,
    tier_override_withdrawn,
)
from .personal import member_marketing_opt_out_set, member_personal_data_reveal
from .points import (
    InsufficientPoints,
    PointsCredit,
    PointsEarned,
    expiry_policy,
    points_adjust,
    points_balances_add,
    points_earn,
    points_earn_many,
    points_expire,
    points_spend,
)
from .schemes import (
    SCHEME_EFFECTIVE_MAX_DAYS,
    tier_scheme_activation_apply,
    tier_scheme_activation_refuse,
    tier_scheme_effective_problems,
    tier_scheme_next_night,
    tier_scheme_overrides_ending,
    tier_scheme_request_activation,
    tier_scheme_switch_due,
    tier_scheme_switch_problems,
)
from .segments import (
    SEGMENT_CONFIG_FIELDS,
    SegmentInUse,
    segment_create,
    segment_delete,
    segment_update,
)
from .tiers import TierRuleError, tier_recompute, tier_simulate

__all__ = [
    "ACTIVITY_COLUMNS",
    "SEGMENT_CONFIG_FIELDS",
    "SegmentInUse",
    "LIFECYCLE_DEFAULTS",
    "FeedFileError",
    "InsufficientPoints",
    "NoteError",
    "PointsCredit",
    "PointsEarned",
    "TierRuleError",
    "asset_feed_missing_days",
    "expiry_policy",
    "feed_arrival_check",
    "feed_arrival_warning",
    "feed_batches_interrupted_mark",
    "feed_import",
    "followup_note_add",
    "followup_note_done",
    "lifecycle_recompute",
    "member_activity_record_many",
    "member_last_active_advance_many",
    "member_marketing_opt_out_set",
    "member_personal_data_reveal",
    "points_adjust",
    "points_balances_add",
    "points_earn",
    "points_earn_many",
    "points_expire",
    "points_spend",
    "segment_create",
    "segment_delete",
    "segment_update",
    "tier_override_apply",
    "tier_override_latest_expiry",
    "tier_override_problems",
    "tier_override_refuse",
    "tier_override_replaces",
    "tier_override_request",
    "tier_override_withdraw",
    "tier_override_withdrawn",
    "tier_recompute",
    "SCHEME_EFFECTIVE_MAX_DAYS",
    "tier_scheme_activation_apply",
    "tier_scheme_activation_refuse",
    "tier_scheme_effective_problems",
    "tier_scheme_next_night",
    "tier_scheme_overrides_ending",
    "tier_scheme_request_activation",
    "tier_scheme_switch_due",
    "tier_scheme_switch_problems",
    "tier_simulate",
]
