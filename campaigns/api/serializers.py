"""Serializers of the configuration API: campaigns, their tasks (with ladder steps) and
member segments (API.md, "Configuration endpoints").

Everything is referenced by business code (department, budget, tier, segment, benefit,
campaign), amounts and targets are decimal strings, and the people on a campaign are
usernames. The serializers only parse requests and shape answers; the checks a product
operator can act on (window, targets, ladders, stages, segment protection) and every write
are the services' in `campaigns.services.config`.
"""

from __future__ import annotations

from decimal import Decimal

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers

from benefits.models import Benefit, Budget
from members.choices import LifecycleStage, SchemeStatus
from members.models import Member, Segment, Tier
from members.segments import segment_filter, segment_rules_validate
from members.services import SEGMENT_CONFIG_FIELDS
from portal.api.serializers import ApprovalRequestSerializer
from portal.bounds import Bound
from portal.models import Department

from ..models import Campaign, Task, TaskStep
from ..services.config import (
    CAMPAIGN_CONFIG_FIELDS,
    MAX_REWARDS_PER_MEMBER,
    MAX_REWARDS_PER_PERIOD,
    REWARD_POINTS,
    STEP_CONFIG_FIELDS,
    TASK_CONFIG_FIELDS,
)

# --- shared fields -----------------------------------------------------------------------------


def _active_tiers():
    """Tiers are named by code within the active scheme (the one members are graded by)."""
    return Tier.objects.filter(scheme__status=SchemeStatus.ACTIVE)


def _stage_list() -> serializers.ListField:
    return serializers.ListField(
        child=serializers.ChoiceField(choices=LifecycleStage.choices),
        required=False,
        help_text="Lifecycle stage codes; empty: every stage.",
    )


# --- tasks -------------------------------------------------------------------------------------


def _bounded(bound: Bound, **options) -> serializers.IntegerField:
    """A whole number within `bound`, refused in the bound's words (`portal.bounds`)."""

    def check(value):
        if value is not None and (problem := bound.problem(value)):
            raise serializers.ValidationError(problem)

    return serializers.IntegerField(validators=[check], **options)


class TaskStepSerializer(serializers.ModelSerializer):
    target = serializers.DecimalField(max_digits=16, decimal_places=2)
    reward_points = _bounded(REWARD_POINTS, required=False)
    reward_benefit = serializers.SlugRelatedField(
        slug_field="code",
        queryset=Benefit.objects.filter(active=True),
        allow_null=True,
        required=False,
    )

    class Meta:
        model = TaskStep
        fields = list(STEP_CONFIG_FIELDS)


class TaskSerializer(serializers.ModelSerializer):
    """A task of a campaign; `steps` (optional) is its ladder, written as a whole list."""

    campaign = serializers.SlugRelatedField(slug_field="code", queryset=Campaign.objects.all())
    target = serializers.DecimalField(
        max_digits=16,
        decimal_places=2,
        required=False,
        help_text="Events, CNY or days, as the measure says (a decimal string).",
    )
    min_event_amount = serializers.DecimalField(
        max_digits=16, decimal_places=2, min_value=Decimal("0"), required=False
    )
    reward_points = _bounded(REWARD_POINTS, required=False)
    max_rewards_per_member = _bounded(MAX_REWARDS_PER_MEMBER, required=False, allow_null=True)
    max_rewards_per_period = _bounded(MAX_REWARDS_PER_PERIOD, required=False, allow_null=True)
    reward_benefit = serializers.SlugRelatedField(
        slug_field="code",
        queryset=Benefit.objects.filter(active=True),
        allow_null=True,
        required=False,
    )
    offered_tiers = serializers.SlugRelatedField(
        slug_field="code", many=True, queryset=_active_tiers(), required=False
    )
    offered_stages = _stage_list()
    steps = TaskStepSerializer(many=True, required=False)

    class Meta:
        model = Task
        fields = ["id", "campaign", *TASK_CONFIG_FIELDS, "steps"]


# --- campaigns ---------------------------------------------------------------------------------


class CampaignSerializer(serializers.ModelSerializer):
    """A campaign with its tasks (read-only here; tasks are written through `tasks/`). The
    status moves only through the workflow actions (submit, approve, reject, pause, …)."""

    department = serializers.SlugRelatedField(slug_field="code", queryset=Department.objects.all())
    budget = serializers.SlugRelatedField(slug_field="code", queryset=Budget.objects.all())
    target_tiers = serializers.SlugRelatedField(
        slug_field="code", many=True, queryset=_active_tiers(), required=False
    )
    target_stages = _stage_list()
    segments = serializers.SlugRelatedField(
        slug_field="code", many=True, queryset=Segment.objects.all(), required=False
    )
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    submitted_by = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True
    )
    decided_by = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True
    )
    tasks = TaskSerializer(many=True, read_only=True)

    class Meta:
        model = Campaign
        fields = [
            "id",
            *CAMPAIGN_CONFIG_FIELDS,
            "status",
            "created_by",
            "created_at",
            "submitted_by",
            "submitted_at",
            "decided_by",
            "decided_at",
            "decision_comment",
            "updated_at",
            "tasks",
        ]
        read_only_fields = [
            "status",
            "created_at",
            "submitted_at",
            "decided_at",
            "decision_comment",
            "updated_at",
        ]


class CampaignProposalSerializer(CampaignSerializer):
    """202 of a launched campaign's PATCH: the campaign as it still is, and the approval
    request that will change it."""

    approval = ApprovalRequestSerializer(read_only=True)

    class Meta(CampaignSerializer.Meta):
        fields = [*CampaignSerializer.Meta.fields, "approval"]


class TaskProposalSerializer(TaskSerializer):
    """202 of a launched campaign's task PATCH: the task as it still is, and the approval
    request that will change it."""

    approval = ApprovalRequestSerializer(read_only=True)

    class Meta(TaskSerializer.Meta):
        fields = [*TaskSerializer.Meta.fields, "approval"]


class CampaignDecisionSerializer(serializers.Serializer):
    comment = serializers.CharField(max_length=255, required=False, allow_blank=True, default="")


class CampaignOperationSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=255, required=False, allow_blank=True, default="")


# --- segments ----------------------------------------------------------------------------------


class SegmentSerializer(serializers.ModelSerializer):
    """A member segment: all `rules` must hold. `size` is how many members match now."""

    department = serializers.SlugRelatedField(slug_field="code", queryset=Department.objects.all())
    rules = serializers.JSONField(
        required=False,
        help_text='A list of conditions {"field": ..., "op": ..., "value": ...}, all of which '
        "must hold.",
    )
    size = serializers.SerializerMethodField()
    created_by = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True
    )

    class Meta:
        model = Segment
        fields = [
            "id",
            *SEGMENT_CONFIG_FIELDS,
            "size",
            "created_by",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["created_at", "updated_at"]

    def validate_rules(self, rules):
        # Parsed into their clean form here so a bad condition is reported with the other
        # field errors; segment_create / segment_update check them again before writing.
        try:
            return segment_rules_validate(rules)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.messages) from None

    def get_size(self, segment: Segment) -> int:
        sizes = self.context.get("sizes") or {}
        if segment.pk in sizes:
            return sizes[segment.pk]
        return Member.objects.filter(segment_filter(segment)).count()


__all__ = [
    "CampaignDecisionSerializer",
    "CampaignOperationSerializer",
    "CampaignProposalSerializer",
    "CampaignSerializer",
    "SegmentSerializer",
    "TaskProposalSerializer",
    "TaskSerializer",
    "TaskStepSerializer",
]
