"""Task campaigns: campaigns and their tasks, member events, task progress and rewards."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.core.validators import MaxValueValidator
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

from members.choices import LifecycleStage
from members.models import Member, Segment, Tier
from portal.models import Department, audit_trail
from portal.money import fen_to_decimal

from .choices import (
    EDITABLE_STATUSES,
    CampaignStatus,
    Difficulty,
    EventType,
    Measure,
    Recurrence,
    RewardStatus,
)
from .holdout import DEFAULT_SHARE, MAX_FOLLOW_UP_DAYS, MAX_SHARE, holdout_key_new


@audit_trail(exclude=["updated_at", "audience_recorded_on"])
class Campaign(models.Model):
    """A task programme of one department, for a window of dates, aimed at tiers, lifecycle
    stages and segments (empty = everyone), with a budget that pays its rewards.

    Launching needs approval by someone other than its author (maker-checker); only a
    draft (or a rejected campaign, which goes back to draft) is edited freely. A launched
    campaign's names change at once, its task rewards, caps and budget only through
    approval (`services.changes`).

    A share of the audience may be held out (`holdout`): not offered the tasks, so that the
    outcomes of those offered can be compared with theirs (`uplift`). The share and the
    follow-up are chosen before launch and approved with it.
    """

    code = models.CharField(_("code"), max_length=32, unique=True)
    name = models.CharField(_("name"), max_length=100)
    description = models.TextField(_("description"), blank=True)
    department = models.ForeignKey(Department, on_delete=models.PROTECT, related_name="campaigns")
    budget = models.ForeignKey(
        "benefits.Budget",
        on_delete=models.PROTECT,
        related_name="campaigns",
        help_text=_("Points and benefit rewards of this campaign are charged here."),
    )
    starts_on = models.DateField(_("starts on"))
    ends_on = models.DateField(_("ends on"))
    target_tiers = models.ManyToManyField(
        Tier,
        blank=True,
        related_name="+",
        verbose_name=_("target tiers"),
        help_text=_("Empty: every tier."),
    )
    target_stages = models.JSONField(
        _("target lifecycle stages"), default=list, blank=True, help_text=_("Empty: every stage.")
    )
    segments = models.ManyToManyField(
        Segment,
        blank=True,
        related_name="campaigns",
        verbose_name=_("target segments"),
        help_text=_("Empty: no segment restriction; otherwise the member must be in one."),
    )
    holdout_share = models.PositiveSmallIntegerField(
        _("holdout share (%)"),
        default=DEFAULT_SHARE,
        validators=[MaxValueValidator(MAX_SHARE)],
        help_text=_(
            "Percent of the audience not offered the tasks, to measure what the campaign "
            "changed (0–50; 0: nobody held out)."
        ),
    )
    holdout_key = models.CharField(
        _("holdout key"), max_length=32, default=holdout_key_new, editable=False
    )
    follow_up_days = models.PositiveSmallIntegerField(
        _("follow-up (days)"),
        default=30,
        validators=[MaxValueValidator(MAX_FOLLOW_UP_DAYS)],
        help_text=_("How long after the window its outcomes are still measured (0–180 days)."),
    )
    audience_recorded_on = models.DateField(
        _("audience recorded on"), null=True, blank=True, editable=False
    )
    status = models.CharField(
        _("status"), max_length=16, choices=CampaignStatus.choices, default=CampaignStatus.DRAFT
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("author"),
    )
    submitted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    submitted_at = models.DateTimeField(_("submitted at"), null=True, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    decided_at = models.DateTimeField(_("decided at"), null=True, blank=True)
    decision_comment = models.CharField(_("decision comment"), max_length=255, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        ordering = ["-starts_on", "code"]
        verbose_name = _("campaign")
        verbose_name_plural = _("campaigns")
        constraints = [
            models.CheckConstraint(
                condition=Q(ends_on__gte=F("starts_on")), name="campaign_window_ordered"
            ),
            models.CheckConstraint(
                condition=Q(holdout_share__lte=MAX_SHARE),
                name="campaign_holdout_share_bounded",
            ),
            models.CheckConstraint(
                condition=Q(follow_up_days__lte=MAX_FOLLOW_UP_DAYS),
                name="campaign_follow_up_bounded",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.code} {self.name}"

    @property
    def is_editable(self) -> bool:
        return self.status in EDITABLE_STATUSES


@audit_trail()
class Task(models.Model):
    """One task of a campaign: which events count, how (measure), the target, how often it
    can be earned (recurrence), the reward, caps, and who is offered it.

    With ladder steps (`TaskStep`), each step has its own rising target and reward and the
    task's own target / reward are not used.
    """

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="tasks")
    name = models.CharField(_("name"), max_length=100)
    description = models.CharField(_("description"), max_length=255, blank=True)
    event_type = models.CharField(_("event type"), max_length=16, choices=EventType.choices)
    min_event_amount = models.DecimalField(
        _("minimum event amount (CNY)"),
        max_digits=16,
        decimal_places=2,
        default=Decimal("0"),
        help_text=_("Events below this amount do not count."),
    )
    measure = models.CharField(_("measure"), max_length=16, choices=Measure.choices)
    target = models.DecimalField(
        _("target"),
        max_digits=16,
        decimal_places=2,
        default=Decimal("1"),
        help_text=_("Events, CNY or days, as the measure says."),
    )
    recurrence = models.CharField(_("recurrence"), max_length=8, choices=Recurrence.choices)
    difficulty = models.CharField(
        _("difficulty"), max_length=8, choices=Difficulty.choices, default=Difficulty.EASY
    )
    reward_points = models.PositiveIntegerField(_("reward points"), default=0)
    reward_benefit = models.ForeignKey(
        "benefits.Benefit",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("reward benefit"),
    )
    max_rewards_per_member = models.PositiveIntegerField(
        _("max rewarded periods per member"),
        null=True,
        blank=True,
        help_text=_("Empty: no limit. Counts the periods in which a member was rewarded."),
    )
    max_rewards_per_period = models.PositiveIntegerField(
        _("max rewarded members per period"),
        null=True,
        blank=True,
        help_text=_("Empty: no limit (e.g. the first 1,000 members each day)."),
    )
    offered_tiers = models.ManyToManyField(
        Tier,
        blank=True,
        related_name="+",
        verbose_name=_("offered to tiers"),
        help_text=_("Empty: every tier the campaign targets."),
    )
    offered_stages = models.JSONField(
        _("offered to lifecycle stages"),
        default=list,
        blank=True,
        help_text=_("Empty: every stage the campaign targets."),
    )
    position = models.PositiveSmallIntegerField(_("position"), default=0)

    class Meta:
        ordering = ["campaign", "position", "id"]
        verbose_name = _("task")
        verbose_name_plural = _("tasks")
        constraints = [
            models.CheckConstraint(condition=Q(target__gt=0), name="task_target_positive"),
            models.CheckConstraint(
                condition=Q(min_event_amount__gte=0), name="task_min_amount_not_negative"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.campaign.code}: {self.name}" if self.campaign_id else self.name


@audit_trail()
class TaskStep(models.Model):
    """A ladder step: reaching `target` in a period earns this step's reward (steps 1/2/3
    with rising targets)."""

    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="steps")
    step_no = models.PositiveSmallIntegerField(_("step"))
    target = models.DecimalField(_("target"), max_digits=16, decimal_places=2)
    reward_points = models.PositiveIntegerField(_("reward points"), default=0)
    reward_benefit = models.ForeignKey(
        "benefits.Benefit",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("reward benefit"),
    )

    class Meta:
        ordering = ["task", "step_no"]
        verbose_name = _("ladder step")
        verbose_name_plural = _("ladder steps")
        constraints = [
            models.UniqueConstraint(fields=["task", "step_no"], name="task_step_unique"),
            models.CheckConstraint(condition=Q(target__gt=0), name="task_step_target_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.task_id} step {self.step_no}"


class EventBatch(models.Model):
    """One `POST /api/v1/events/`: who sent it and how it reconciled (received = accepted +
    duplicates + rejected), with every refused event and its reasons."""

    client = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+"
    )
    received_at = models.DateTimeField(_("received at"), auto_now_add=True)
    received = models.PositiveIntegerField(_("received"))
    accepted = models.PositiveIntegerField(_("accepted"))
    duplicates = models.PositiveIntegerField(_("duplicates"))
    rejected = models.PositiveIntegerField(_("rejected"))
    rejections = models.JSONField(_("refused events"), default=list, blank=True)
    completions = models.PositiveIntegerField(_("task completions"), default=0)

    class Meta:
        ordering = ["-received_at", "-id"]
        verbose_name = _("event batch")
        verbose_name_plural = _("event batches")
        constraints = [
            models.CheckConstraint(
                condition=Q(received=F("accepted") + F("duplicates") + F("rejected")),
                name="event_batch_reconciles",
            )
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.received_at:%Y-%m-%d %H:%M}"


class MemberEvent(models.Model):
    """Something a member did in another system. `event_id` (from the source) is the
    idempotency key: the same id again is a duplicate and changes nothing."""

    event_id = models.CharField(_("event id"), max_length=64, unique=True)
    member = models.ForeignKey(
        Member, on_delete=models.CASCADE, db_constraint=False, db_index=False
    )  # the (member, occurred_at) index serves member lookups
    type = models.CharField(_("type"), max_length=16, choices=EventType.choices)
    amount_fen = models.BigIntegerField(_("amount (fen)"), default=0)
    occurred_at = models.DateTimeField(_("occurred at"))
    occurred_on = models.DateField(_("occurred on"), help_text=_("Asia/Shanghai date."))
    channel = models.CharField(_("channel"), max_length=16, blank=True)
    batch = models.ForeignKey(EventBatch, on_delete=models.PROTECT, db_constraint=False)
    received_at = models.DateTimeField(_("received at"))

    class Meta:
        verbose_name = _("member event")
        verbose_name_plural = _("member events")
        indexes = [models.Index(fields=["member", "occurred_at"])]

    def __str__(self) -> str:
        return self.event_id

    @property
    def amount(self) -> Decimal:
        return fen_to_decimal(self.amount_fen)


class TaskProgress(models.Model):
    """A member's progress on a task in one period (`2026-11-26`, `2026-W48`, `2026-11`,
    `once`). `value` is in the measure's unit (events, fen, or days of the current streak);
    `best` is the highest value reached (for a streak: the longest run), which decides the
    ladder steps reached. `days` lists the distinct event days of a streak task, so a late
    or out-of-order event fills its gap."""

    member = models.ForeignKey(
        Member, on_delete=models.CASCADE, db_constraint=False, db_index=False
    )  # the unique (member, task, period_key) index serves member lookups
    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="progress")
    period_key = models.CharField(_("period"), max_length=16)
    period_start = models.DateField(_("period start"))
    period_end = models.DateField(_("period end"))
    value = models.BigIntegerField(_("progress"), default=0)
    best = models.BigIntegerField(_("best"), default=0)
    days = models.JSONField(_("event days"), default=list, blank=True)
    steps_reached = models.PositiveSmallIntegerField(_("steps reached"), default=0)
    stage_at_start = models.CharField(
        _("lifecycle stage when it started"), max_length=16, choices=LifecycleStage.choices
    )
    started_at = models.DateTimeField(_("started at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)
    completed_at = models.DateTimeField(_("completed at"), null=True, blank=True)

    class Meta:
        verbose_name = _("task progress")
        verbose_name_plural = _("task progress")
        constraints = [
            models.UniqueConstraint(
                fields=["member", "task", "period_key"], name="progress_one_per_period"
            )
        ]
        # Reports find a task's rows through the task_id index; the night counts the periods
        # that closed. No second index on (task, period_key): without statistics (a new or
        # never-analysed table) the planner would pick it over the unique index for the
        # batch's key lookups and scan every member of a period.
        indexes = [models.Index(fields=["period_end"], name="progress_period_end_idx")]

    def __str__(self) -> str:
        return f"{self.member_id} {self.task_id} {self.period_key}"


class TaskCompletion(models.Model):
    """A member reached a step of a task in a period: recorded exactly once (unique), with
    the reward it issued, or why the reward was refused (budget exhausted, cap reached)."""

    member = models.ForeignKey(
        Member, on_delete=models.CASCADE, db_constraint=False, db_index=False
    )
    task = models.ForeignKey(Task, on_delete=models.PROTECT, related_name="completions")
    campaign = models.ForeignKey(Campaign, on_delete=models.PROTECT, related_name="completions")
    period_key = models.CharField(_("period"), max_length=16)
    step_no = models.PositiveSmallIntegerField(_("step"), default=1)
    completed_at = models.DateTimeField(_("completed at"), auto_now_add=True)
    reward_status = models.CharField(_("reward"), max_length=16, choices=RewardStatus.choices)
    reward_points = models.PositiveIntegerField(_("points issued"), default=0)
    points_entry = models.ForeignKey(
        "members.PointsEntry", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    grant = models.ForeignKey(
        "benefits.BenefitGrant",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    cost_fen = models.BigIntegerField(_("cost (fen)"), default=0)
    refusal_reason = models.CharField(_("why refused"), max_length=255, blank=True)
    stage_at_start = models.CharField(
        _("lifecycle stage when it started"), max_length=16, choices=LifecycleStage.choices
    )

    class Meta:
        ordering = ["-completed_at", "-id"]
        verbose_name = _("task completion")
        verbose_name_plural = _("task completions")
        constraints = [
            models.UniqueConstraint(
                fields=["member", "task", "period_key", "step_no"], name="completion_once"
            )
        ]
        indexes = [
            models.Index(fields=["campaign", "reward_status"]),
            models.Index(fields=["member", "completed_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.member_id} {self.task_id} {self.period_key} #{self.step_no}"

    @property
    def cost(self) -> Decimal:
        return fen_to_decimal(self.cost_fen)


class TaskCapCounter(models.Model):
    """How many rewards a cap has used: `scope` is `member:<id>` (periods a member was
    rewarded) or `period:<key>` (members rewarded in a period). Moved by one conditional
    UPDATE (`used < cap`), so concurrent completions never pass a cap."""

    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="+")
    scope = models.CharField(max_length=40)
    used = models.PositiveIntegerField(default=0)

    class Meta:
        verbose_name = _("task cap counter")
        verbose_name_plural = _("task cap counters")
        constraints = [models.UniqueConstraint(fields=["task", "scope"], name="cap_counter_unique")]

    def __str__(self) -> str:
        return f"{self.task_id} {self.scope} {self.used}"


class CampaignAudience(models.Model):
    """Who a campaign with a holdout targeted when it began, and in which group: its audience
    on the eve of its first day (`services.campaign_audiences_record`), the cohort whose
    outcomes `uplift` compares. Written once per campaign, never changed."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="audience")
    member = models.ForeignKey(
        Member, on_delete=models.CASCADE, related_name="+", db_constraint=False, db_index=False
    )
    held_out = models.BooleanField(_("held out"))
    stage_at_launch = models.CharField(
        _("lifecycle stage at launch"), max_length=16, choices=LifecycleStage.choices
    )

    class Meta:
        verbose_name = _("campaign audience member")
        verbose_name_plural = _("campaign audience")
        constraints = [
            models.UniqueConstraint(fields=["campaign", "member"], name="campaign_audience_unique")
        ]

    def __str__(self) -> str:
        return f"{self.campaign_id}/{self.member_id}"


class CampaignOutcome(models.Model):
    """The outcomes of one group of a campaign's audience (treatment or holdout) from the
    first day of its window to `period_end`, as the night of `business_date` counted them:
    counts and the sums and sums of squares the uplift's intervals need (`uplift`)."""

    #: the figures of a group, in the order the night's query selects them
    #: (`services.outcomes`), as the report reads them (`uplift`)
    FIGURES = (
        "members",
        "dormant",
        "reactivated",
        "active_days",
        "active_days_sq",
        "purchasers",
        "purchase_fen",
        "purchase_fen_sq",
        "mada_change_fen",
        "mada_change_fen_sq",
        "cost_fen",
        "points",
        "mada_members",
    )

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="outcomes")
    business_date = models.DateField(_("business date"))
    held_out = models.BooleanField(_("held out"))
    period_end = models.DateField(_("measured until"))
    members = models.IntegerField(_("members"))
    dormant = models.IntegerField(_("dormant at launch"))
    reactivated = models.IntegerField(_("reactivated"))
    active_days = models.BigIntegerField(_("active days"))
    active_days_sq = models.BigIntegerField()
    purchasers = models.IntegerField(_("fund buyers"))
    purchase_fen = models.BigIntegerField(_("fund purchases (fen)"))
    purchase_fen_sq = models.DecimalField(max_digits=40, decimal_places=0)
    mada_members = models.IntegerField(_("members with MADA before and after"))
    mada_change_fen = models.BigIntegerField(_("change in MADA (fen)"))
    mada_change_fen_sq = models.DecimalField(max_digits=40, decimal_places=0)
    cost_fen = models.BigIntegerField(_("cost (fen)"))
    points = models.BigIntegerField(_("points issued"))

    class Meta:
        ordering = ["campaign", "business_date", "held_out"]
        verbose_name = _("campaign outcome")
        verbose_name_plural = _("campaign outcomes")
        constraints = [
            models.UniqueConstraint(
                fields=["campaign", "business_date", "held_out"], name="campaign_outcome_unique"
            )
        ]

    def __str__(self) -> str:
        return (
            f"{self.campaign_id} {self.business_date} {'holdout' if self.held_out else 'treatment'}"
        )
