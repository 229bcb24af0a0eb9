"""Serializers of the configuration API: campaigns, their tasks (with ladder steps) and
member segments (API.md, "Configuration endpoints").

Everything is referenced by business code (department, budget, tier, segment, benefit,
campaign), amounts and targets are decimal strings, and the people on a campaign are
usernames. The checks a product operator can act on (targets, ladders, stages, segment
rules) answer 400 with field errors; whether a campaign may still be edited is the view's
409.
"""

from __future__ import annotations

from decimal import Decimal
from itertools import pairwise

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from rest_framework import serializers

from benefits.models import Benefit, Budget
from members.choices import LifecycleStage, SchemeStatus
from members.models import Member, Segment, Tier
from members.segments import segment_rules_validate
from portal.models import Department

from ..choices import Measure
from ..models import Campaign, Task, TaskStep
from ..rules import MEASURES

# --- the target rules, shared with the admin forms ---------------------------------------------


def target_problems(*, measure: str | None, target: Decimal | None) -> list[str]:
    """Why a task's (or a step's) target does not fit its measure: it must be above 0, and a
    whole number when the measure counts events or days."""
    if target is None:
        return []
    problems = []
    if target <= 0:
        problems.append("The target must be more than 0.")
    rule = MEASURES.get(measure) if measure else None
    if rule is not None and rule.whole_targets and target != target.to_integral_value():
        problems.append(
            f"The target must be a whole number for the measure {measure} "
            f"({Measure(measure).label}); {target} is not."
        )
    return problems


def ladder_problems(*, measure: str | None, steps: list[tuple[int, Decimal]]) -> list[str]:
    """Why ladder steps `(step_no, target)` are not a ladder: numbered 1..n without gaps,
    targets strictly rising with the step number, each target valid for the measure."""
    if not steps:
        return []
    problems = []
    numbers = sorted(step_no for step_no, _ in steps)
    if numbers != list(range(1, len(steps) + 1)):
        problems.append(
            "Number the steps 1 to n without gaps or repeats (1, 2, 3…); got "
            + ", ".join(str(n) for n in numbers)
            + "."
        )
    ordered = sorted(steps, key=lambda step: step[0])
    for (lower_no, lower), (higher_no, higher) in pairwise(ordered):
        if higher <= lower:
            problems.append(
                f"Step {higher_no}'s target ({higher}) must be higher than step {lower_no}'s "
                f"({lower})."
            )
    for step_no, target in ordered:
        problems.extend(
            f"Step {step_no}: {problem}"
            for problem in target_problems(measure=measure, target=target)
        )
    return problems


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


def _unique(values: list) -> list:
    return list(dict.fromkeys(values))


# --- tasks -------------------------------------------------------------------------------------


class TaskStepSerializer(serializers.ModelSerializer):
    target = serializers.DecimalField(max_digits=16, decimal_places=2)
    reward_benefit = serializers.SlugRelatedField(
        slug_field="code",
        queryset=Benefit.objects.filter(active=True),
        allow_null=True,
        required=False,
    )

    class Meta:
        model = TaskStep
        fields = ["step_no", "target", "reward_points", "reward_benefit"]


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
        fields = [
            "id",
            "campaign",
            "name",
            "description",
            "event_type",
            "measure",
            "target",
            "recurrence",
            "difficulty",
            "min_event_amount",
            "reward_points",
            "reward_benefit",
            "max_rewards_per_member",
            "max_rewards_per_period",
            "offered_tiers",
            "offered_stages",
            "position",
            "steps",
        ]

    def validate_offered_stages(self, stages: list[str]) -> list[str]:
        return _unique(stages)

    def validate(self, attrs: dict) -> dict:
        task = self.instance
        measure = attrs.get("measure", getattr(task, "measure", None))
        target = attrs.get("target", getattr(task, "target", None))
        if "steps" in attrs:
            steps = [(step["step_no"], step["target"]) for step in attrs["steps"]]
        elif task is not None:
            steps = list(task.steps.values_list("step_no", "target"))
        else:
            steps = []
        errors = {}
        if problems := target_problems(measure=measure, target=target):
            errors["target"] = problems
        if problems := ladder_problems(measure=measure, steps=steps):
            errors["steps"] = problems
        if errors:
            raise serializers.ValidationError(errors)
        return attrs

    @transaction.atomic
    def create(self, validated_data: dict) -> Task:
        steps = validated_data.pop("steps", [])
        tiers = validated_data.pop("offered_tiers", [])
        task = Task.objects.create(**validated_data)
        task.offered_tiers.set(tiers)
        TaskStep.objects.bulk_create(TaskStep(task=task, **step) for step in steps)
        return task

    @transaction.atomic
    def update(self, task: Task, validated_data: dict) -> Task:
        steps = validated_data.pop("steps", None)
        tiers = validated_data.pop("offered_tiers", None)
        for name, value in validated_data.items():
            setattr(task, name, value)
        task.save()
        if tiers is not None:
            task.offered_tiers.set(tiers)
        if steps is not None:  # the ladder is replaced as a whole (the campaign is a draft)
            task.steps.all().delete()
            TaskStep.objects.bulk_create(TaskStep(task=task, **step) for step in steps)
        return task


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
    submitted_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    decided_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    tasks = TaskSerializer(many=True, read_only=True)

    class Meta:
        model = Campaign
        fields = [
            "id",
            "code",
            "name",
            "description",
            "department",
            "budget",
            "starts_on",
            "ends_on",
            "target_tiers",
            "target_stages",
            "segments",
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

    def validate_target_stages(self, stages: list[str]) -> list[str]:
        return _unique(stages)

    def validate(self, attrs: dict) -> dict:
        starts_on = attrs.get("starts_on", getattr(self.instance, "starts_on", None))
        ends_on = attrs.get("ends_on", getattr(self.instance, "ends_on", None))
        if starts_on and ends_on and ends_on < starts_on:
            raise serializers.ValidationError(
                {"ends_on": [f"The window ends ({ends_on}) before it starts ({starts_on})."]}
            )
        return attrs


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
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = Segment
        fields = [
            "id",
            "code",
            "name",
            "description",
            "department",
            "rules",
            "size",
            "created_by",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["created_at", "updated_at"]

    def validate_rules(self, rules):
        try:
            return segment_rules_validate(rules)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.messages) from None

    def get_size(self, segment: Segment) -> int:
        sizes = self.context.get("sizes") or {}
        if segment.pk in sizes:
            return sizes[segment.pk]
        return Member.objects.filter(segment.member_filter()).count()


__all__ = [
    "CampaignDecisionSerializer",
    "CampaignOperationSerializer",
    "CampaignSerializer",
    "SegmentSerializer",
    "TaskSerializer",
    "TaskStepSerializer",
    "ladder_problems",
    "target_problems",
]
