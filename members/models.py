"""Members, the daily feeds from the data warehouse and their monthly accumulations."""

from __future__ import annotations

import calendar
from decimal import Decimal

import pghistory
from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q, Value
from django.db.models.functions import Coalesce
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from portal.crypto import DigestField, EncryptedTextField
from portal.display import name_of
from portal.masking import (
    mask_id_number,
    mask_members_row,
    mask_personal_numbers,
    mask_phone,
)
from portal.models import Branch, audit_trail
from portal.money import average_fen, fen_to_decimal

from .choices import (
    AssetCategory,
    FeedKind,
    FeedStatus,
    IndicatorKind,
    LifecycleStage,
    MemberStatus,
    OverrideStatus,
    PointsEntryKind,
    SchemeStatus,
    TierChangeCause,
    TierMethod,
)
from .feeds import rejection_reason_text

#: What the audit trail keeps of a member: the fields people change (feeds, the admin,
#: services). The nightly recompute rewrites tier, lifecycle, basis and balance columns of
#: millions of rows and each of those moves has its own history (TierChange, JobRun), so
#: they are neither stored nor make an update event (tier overrides: TierOverride, TierChange).
MEMBER_AUDITED_FIELDS = [
    "name",
    "phone",
    "id_number",
    "birth_date",
    "branch",
    "account_manager",
    "status",
    "channels",
    "credit_risk",
    "marketing_opt_out",
]


@audit_trail(
    pghistory.InsertEvent(),
    pghistory.UpdateEvent(condition=pghistory.AnyChange("member_no", *MEMBER_AUDITED_FIELDS)),
    pghistory.DeleteEvent(),
    fields=["member_no", *MEMBER_AUDITED_FIELDS],
)
class Member(models.Model):
    """A retail customer in the membership programme. `member_no` is the business key.

    Phone and ID number are encrypted at rest (`portal.crypto`; the attributes are the
    clear values, the columns and the history table hold ciphertext), found by exact search
    only through their keyed hashes (`phone_digest`, `id_number_digest`), and shown masked
    everywhere (`masked_phone`, `masked_id_number`); only an audited reveal shows them.
    """

    member_no = models.CharField(_("member no."), max_length=32)
    name = models.CharField(pgettext_lazy("person", "name"), max_length=100)
    phone = EncryptedTextField(_("phone"), blank=True)
    id_number = EncryptedTextField(_("ID number"), blank=True)
    phone_digest = DigestField(_("phone (keyed hash)"), source="phone")
    id_number_digest = DigestField(_("ID number (keyed hash)"), source="id_number")
    birth_date = models.DateField(_("birth date"), null=True, blank=True)
    registered_at = models.DateTimeField(_("registered at"))
    branch = models.ForeignKey(
        Branch, null=True, blank=True, on_delete=models.PROTECT, related_name="members"
    )
    account_manager = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="customers",
        verbose_name=_("account manager"),
        db_index=False,  # the (account_manager, member_no) index serves it
    )
    status = models.CharField(
        _("status"), max_length=16, choices=MemberStatus.choices, default=MemberStatus.ACTIVE
    )
    channels = models.JSONField(_("channels"), default=list, blank=True)
    credit_risk = models.BooleanField(_("credit-risk flag"), default=False)
    lifecycle_stage = models.CharField(
        _("lifecycle stage"),
        max_length=16,
        choices=LifecycleStage.choices,
        default=LifecycleStage.NEW,
    )
    stage_since = models.DateField(_("stage since"), null=True, blank=True)
    last_active_on = models.DateField(_("last active on"), null=True, blank=True)
    points_balance = models.IntegerField(_("points balance"), default=0)
    tier = models.ForeignKey(
        "Tier",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        # Not indexed: an indexed column that changes makes the row's update non-HOT, and
        # the first grading moves every member (bench/README.md, "nightly"). Lists by tier
        # are read through the account manager's index or over the whole population.
        db_index=False,
        verbose_name=_("tier"),
        help_text=_("The tier in force: the computed tier, or an approved override."),
    )
    tier_since = models.DateField(_("tier since"), null=True, blank=True)
    computed_tier = models.ForeignKey(
        "Tier",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,
        verbose_name=_("computed tier"),
        help_text=_("What the tier engine gives, before any override."),
    )
    computed_since = models.DateField(_("computed tier since"), null=True, blank=True)
    tier_months_below = models.IntegerField(_("months below the tier"), default=0)
    marketing_opt_out = models.BooleanField(
        _("opted out of personalised marketing"),
        default=False,
        db_default=False,
        help_text=_(
            "The customer asked not to be targeted: excluded from targeted campaigns and "
            "segment exports."
        ),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        ordering = ["member_no"]
        verbose_name = _("member")
        verbose_name_plural = _("members")
        # Few, plain indexes: the nightly recompute rewrites many member rows, and every
        # index is written again on each non-HOT update (see bench/README.md).
        constraints = [models.UniqueConstraint(fields=["member_no"], name="member_no_unique")]
        indexes = [
            models.Index(fields=["account_manager", "member_no"]),
            models.Index(fields=["id_number_digest"], name="member_id_number_digest_idx"),
            models.Index(fields=["phone_digest"], name="member_phone_digest_idx"),
        ]

    def __str__(self) -> str:
        return self.member_no

    @property
    def tier_basis(self) -> int | None:
        """The latest graded basis (MADA in fen, or points); None before the first grading.
        Kept in `MemberTierBasis`: select_related("basis") when reading many."""
        basis = getattr(self, "basis", None)  # a missing row raises an AttributeError
        return None if basis is None else basis.value

    @property
    def account_manager_display(self) -> str:
        manager = self.account_manager
        return (manager.get_full_name() or manager.username) if manager else ""

    @property
    def masked_phone(self) -> str:
        return mask_phone(self.phone)

    @property
    def masked_id_number(self) -> str:
        return mask_id_number(self.id_number)


class FeedBatch(models.Model):
    """One feed file as it was imported: checksum, counts (received = accepted +
    duplicates + rejected), who imported it and when. `rows_read` is how far the import has
    read: it grows while the batch is LOADING and says, for a FAILED or INTERRUPTED batch
    (whose rows were not kept, so its counts are 0), where it stopped."""

    kind = models.CharField(_("kind"), max_length=16, choices=FeedKind.choices)
    file_name = models.CharField(_("file name"), max_length=255)
    checksum = models.CharField(_("SHA-256"), max_length=64, db_index=True)
    status = models.CharField(_("status"), max_length=16, choices=FeedStatus.choices)
    received = models.IntegerField(_("received"), default=0)
    accepted = models.IntegerField(_("accepted"), default=0)
    duplicates = models.IntegerField(_("duplicates"), default=0)
    rejected = models.IntegerField(_("rejected"), default=0)
    rows_read = models.IntegerField(_("rows read"), default=0)
    first_date = models.DateField(_("first business date"), null=True, blank=True)
    last_date = models.DateField(_("last business date"), null=True, blank=True)
    duplicate_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    error = models.TextField(_("error"), blank=True)
    imported_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT
    )
    started_at = models.DateTimeField(_("started at"))
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        verbose_name = _("feed batch")
        verbose_name_plural = _("feed batches")
        indexes = [models.Index(fields=["kind", "checksum"])]

    def __str__(self) -> str:
        return f"#{self.pk} {self.kind} {self.file_name}"

    @property
    def reconciles(self) -> bool:
        return self.received == self.accepted + self.duplicates + self.rejected

    @property
    def status_shown(self) -> str:
        """The status as pages show it: a LOADING batch whose import process is gone reads
        INTERRUPTED (`feed_batch_list` annotates `process_alive`) until the next import of
        the kind records it so."""
        if self.status == FeedStatus.LOADING and not getattr(self, "process_alive", True):
            return FeedStatus.INTERRUPTED
        return self.status

    def get_status_shown_display(self) -> str:
        return FeedStatus(self.status_shown).label

    @property
    def stopped(self) -> bool:
        """The import stopped before the end: nothing of the file was kept."""
        return self.status_shown in (FeedStatus.FAILED, FeedStatus.INTERRUPTED)


class FeedRejection(models.Model):
    """A refused feed row, kept with its line number, the row as received and the reason.
    The row is encrypted at rest like a member's phone and ID number (a members row carries
    them, and a refused row may have them in any column); it is shown masked."""

    batch = models.ForeignKey(FeedBatch, on_delete=models.CASCADE, related_name="rejections")
    line_no = models.IntegerField(_("line"))
    field = models.CharField(_("field"), max_length=32, blank=True)
    reason = models.CharField(_("reason"), max_length=255)
    raw = EncryptedTextField(_("row as received"), purpose="feed row")

    class Meta:
        ordering = ["batch", "line_no"]
        verbose_name = _("rejected feed row")
        verbose_name_plural = _("rejected feed rows")

    def __str__(self) -> str:
        return f"line {self.line_no}: {self.reason}"

    @property
    def reason_text(self) -> str:
        """The reason in the reader's language."""
        return rejection_reason_text(self.reason)

    def masked_raw(self) -> str:
        """The row for display, with anything shaped like an ID or phone number masked
        wherever it stands (a row may have shifted columns; that is often why it was
        refused)."""
        if self.batch.kind == FeedKind.MEMBERS:
            return mask_members_row(self.raw)
        return mask_personal_numbers(self.raw, broad=False)


class AssetBalance(models.Model):
    """A member's balance in one asset category at the end of one day (fen)."""

    member = models.ForeignKey(
        Member, on_delete=models.CASCADE, db_constraint=False, db_index=False
    )  # the unique (member, date…) index serves member lookups
    date = models.DateField(_("date"))
    category = models.CharField(_("category"), max_length=12, choices=AssetCategory.choices)
    balance_fen = models.BigIntegerField(_("balance (fen)"))
    batch = models.ForeignKey(FeedBatch, on_delete=models.PROTECT, db_constraint=False)

    class Meta:
        verbose_name = _("asset balance")
        verbose_name_plural = _("asset balances")
        constraints = [
            models.UniqueConstraint(
                fields=["member", "date", "category"], name="asset_balance_one_per_day"
            )
        ]

    def __str__(self) -> str:
        return f"{self.member_id} {self.date} {self.category}"

    @property
    def balance(self) -> Decimal:
        return fen_to_decimal(self.balance_fen)


class ConsumptionDay(models.Model):
    """A member's card spending on one day (fen and number of transactions)."""

    member = models.ForeignKey(
        Member, on_delete=models.CASCADE, db_constraint=False, db_index=False
    )  # the unique (member, date…) index serves member lookups
    date = models.DateField(_("date"))
    amount_fen = models.BigIntegerField(_("amount (fen)"))
    count = models.IntegerField(_("transactions"))
    batch = models.ForeignKey(FeedBatch, on_delete=models.PROTECT, db_constraint=False)

    class Meta:
        verbose_name = _("consumption day")
        verbose_name_plural = _("consumption days")
        constraints = [
            models.UniqueConstraint(fields=["member", "date"], name="consumption_one_per_day")
        ]

    def __str__(self) -> str:
        return f"{self.member_id} {self.date}"


class MemberActivityDay(models.Model):
    """A day on which the member was active (a consumption row with count > 0, later also
    an accepted member event). One row per member and day, so sources never double count."""

    member = models.ForeignKey(
        Member, on_delete=models.CASCADE, db_constraint=False, db_index=False
    )  # the unique (member, date…) index serves member lookups
    date = models.DateField(_("date"))
    month = models.DateField(_("month"))

    class Meta:
        verbose_name = _("activity day")
        verbose_name_plural = _("activity days")
        constraints = [
            models.UniqueConstraint(fields=["member", "date"], name="activity_one_per_day")
        ]
        indexes = [models.Index(fields=["member", "month"])]

    def __str__(self) -> str:
        return f"{self.member_id} {self.date}"


class MemberTierBasis(models.Model):
    """A member's latest tier basis, apart from the member row.

    The basis moves for nearly every member every month while the tier rarely does. Kept
    here, the monthly recompute rewrites narrow rows of two numbers and touches a member row
    only when its tier, computed tier or months below change (bench/README.md, "nightly")."""

    member = models.OneToOneField(
        Member, primary_key=True, on_delete=models.CASCADE, related_name="basis"
    )
    value = models.BigIntegerField(
        _("tier basis"), help_text=_("The latest basis value: MADA in fen, or points.")
    )

    class Meta:
        verbose_name = _("tier basis")
        verbose_name_plural = _("tier bases")

    def __str__(self) -> str:
        return f"{self.member_id}: {self.value}"


class MemberMonthlyStat(models.Model):
    """Month-to-date sums per member, accumulated by feed ingestion.

    A month's MADA (月日均资产) is `financial_day_sum_fen / days_in_month`: one division, no
    scan of daily rows. Day-sums are in fen; a day without a feed row contributes 0.
    """

    member = models.ForeignKey(
        Member, on_delete=models.CASCADE, related_name="monthly_stats", db_index=False
    )  # the unique (member, month) index serves member lookups
    month = models.DateField(_("month"), help_text=_("First day of the month."))
    demand_day_sum_fen = models.BigIntegerField(default=0, db_default=0)
    time_day_sum_fen = models.BigIntegerField(default=0, db_default=0)
    wealth_day_sum_fen = models.BigIntegerField(default=0, db_default=0)
    fund_day_sum_fen = models.BigIntegerField(default=0, db_default=0)
    insurance_day_sum_fen = models.BigIntegerField(default=0, db_default=0)
    bond_day_sum_fen = models.BigIntegerField(default=0, db_default=0)
    mortgage_day_sum_fen = models.BigIntegerField(default=0, db_default=0)
    loan_day_sum_fen = models.BigIntegerField(default=0, db_default=0)
    financial_day_sum_fen = models.BigIntegerField(
        default=0, db_default=0, help_text=_("DEMAND+TIME+WEALTH+FUND+INSURANCE+BOND day-sums.")
    )
    asset_days = models.IntegerField(
        default=0, db_default=0, help_text=_("Days with at least one asset feed row.")
    )
    consumption_amount_fen = models.BigIntegerField(default=0, db_default=0)
    fund_purchase_fen = models.BigIntegerField(
        default=0, db_default=0, help_text=_("FUND_PURCHASE member events of the month.")
    )
    payroll_fen = models.BigIntegerField(
        default=0, db_default=0, help_text=_("PAYROLL member events of the month.")
    )
    consumption_count = models.IntegerField(default=0, db_default=0)
    active_days = models.IntegerField(default=0, db_default=0)

    class Meta:
        verbose_name = _("monthly member statistics")
        verbose_name_plural = _("monthly member statistics")
        constraints = [
            models.UniqueConstraint(fields=["member", "month"], name="monthly_stat_one_per_month")
        ]
        indexes = [models.Index(fields=["month", "member"])]

    def __str__(self) -> str:
        return f"{self.member_id} {self.month:%Y-%m}"

    @property
    def days_in_month(self) -> int:
        return calendar.monthrange(self.month.year, self.month.month)[1]

    @property
    def mada(self) -> Decimal:
        """Monthly average daily financial assets, CNY, to the cent (rounded down, as the
        tier engine grades it)."""
        return fen_to_decimal(self.financial_day_sum_fen // self.days_in_month)

    def category_day_sum_fen(self, category: str) -> int:
        return getattr(self, f"{category.lower()}_day_sum_fen")

    @property
    def products_held(self) -> int:
        """Asset categories with a positive balance on some day of the month."""
        return sum(1 for c in AssetCategory.values if self.category_day_sum_fen(c) > 0)

    @property
    def liabilities_average(self) -> Decimal:
        """Average daily mortgage and loan balance of the month (not part of MADA)."""
        return average_fen(self.mortgage_day_sum_fen + self.loan_day_sum_fen, self.days_in_month)

    @property
    def consumption_amount(self) -> Decimal:
        return fen_to_decimal(self.consumption_amount_fen)


@audit_trail()
class TierScheme(models.Model):
    """A way of grading members: MADA thresholds or weighted points. One is ACTIVE."""

    code = models.CharField(_("code"), max_length=32, unique=True)
    name = models.CharField(_("name"), max_length=100)
    method = models.CharField(_("method"), max_length=8, choices=TierMethod.choices)
    status = models.CharField(
        _("status"), max_length=10, choices=SchemeStatus.choices, default=SchemeStatus.DRAFT
    )
    window_months = models.PositiveSmallIntegerField(
        _("evaluation window (months)"),
        default=1,
        validators=[MinValueValidator(1), MaxValueValidator(12)],
    )
    downgrade_after_months = models.PositiveSmallIntegerField(
        _("downgrade after months below"),
        default=3,
        validators=[MinValueValidator(1), MaxValueValidator(12)],
        help_text=_("保级: consecutive complete months below the tier before moving down."),
    )
    max_downgrade_steps = models.PositiveSmallIntegerField(
        _("maximum tiers per downgrade"),
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text=_("Empty: straight to the tier the latest month supports."),
    )
    description = models.TextField(_("description"), blank=True)
    activated_at = models.DateTimeField(_("activated at"), null=True, blank=True)
    effective_on = models.DateField(
        _("effective from (business date)"),
        null=True,
        blank=True,
        help_text=_("The night of this business date grades every member by this scheme."),
    )

    class Meta:
        ordering = ["code"]
        verbose_name = _("tier scheme")
        verbose_name_plural = _("tier schemes")
        constraints = [
            models.UniqueConstraint(
                fields=["status"], condition=Q(status="ACTIVE"), name="one_active_tier_scheme"
            ),
            # one scheme waits for its effective night at a time
            models.UniqueConstraint(
                fields=["status"],
                condition=Q(status="SCHEDULED"),
                name="one_scheduled_tier_scheme",
            ),
            models.CheckConstraint(
                condition=Q(window_months__gte=1, window_months__lte=12),
                name="tier_window_1_to_12",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.code} {self.name}"


@audit_trail()
class Tier(models.Model):
    """A tier of a scheme. `threshold` is inclusive: fen of MADA, or points."""

    scheme = models.ForeignKey(TierScheme, on_delete=models.CASCADE, related_name="tiers")
    code = models.CharField(_("code"), max_length=32)
    name = models.CharField(_("name (zh-Hans)"), max_length=50)
    name_en = models.CharField(_("name (English)"), max_length=50)
    rank = models.PositiveSmallIntegerField(_("rank"))
    threshold = models.BigIntegerField(
        _("threshold"), help_text=_("Inclusive lower bound: MADA in fen, or points.")
    )

    class Meta:
        ordering = ["scheme", "rank"]
        verbose_name = _("tier")
        verbose_name_plural = _("tiers")
        constraints = [
            models.UniqueConstraint(fields=["scheme", "code"], name="tier_code_per_scheme"),
            models.UniqueConstraint(fields=["scheme", "rank"], name="tier_rank_per_scheme"),
        ]

    def __str__(self) -> str:
        """The tier by its name in the reader's language (its code is for data and the API)."""
        return name_of(self)

    @property
    def threshold_display(self) -> Decimal | int:
        if self.scheme.method == TierMethod.MADA:
            return fen_to_decimal(self.threshold)
        return self.threshold


@audit_trail()
class PointsIndicator(models.Model):
    """One indicator of a POINTS scheme: `points` per `per_unit` of the measure, capped.

    Money measures count `per_unit` in fen (10,000 CNY = 1,000,000); day and product counts
    in units. Points are rounded down per indicator, then summed (API.md).
    """

    scheme = models.ForeignKey(TierScheme, on_delete=models.CASCADE, related_name="indicators")
    kind = models.CharField(_("kind"), max_length=20, choices=IndicatorKind.choices)
    category = models.CharField(
        _("asset category"), max_length=12, choices=AssetCategory.choices, blank=True
    )
    points = models.PositiveIntegerField(_("points per unit"))
    per_unit = models.PositiveBigIntegerField(
        _("unit"), help_text=_("In fen for money measures (10,000 CNY = 1000000), else 1.")
    )
    cap = models.PositiveIntegerField(_("cap"), null=True, blank=True)

    class Meta:
        ordering = ["scheme", "id"]
        verbose_name = _("points indicator")
        verbose_name_plural = _("points indicators")

    def __str__(self) -> str:
        what = self.category or self.get_kind_display()
        return f"{what}: {self.points} / {self.per_unit}"


class TierChange(models.Model):
    """Every move of a member's tier, with its cause and the basis that caused it."""

    # No single-column indexes: (member, business_date) serves a member's history, and a tier
    # is never deleted while history names it (PROTECT). Each index is written for every row
    # of a first grading.
    member = models.ForeignKey(
        Member, on_delete=models.CASCADE, related_name="tier_changes", db_index=False
    )
    from_tier = models.ForeignKey(
        Tier, null=True, blank=True, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    to_tier = models.ForeignKey(Tier, on_delete=models.PROTECT, related_name="+", db_index=False)
    cause = models.CharField(_("cause"), max_length=16, choices=TierChangeCause.choices)
    business_date = models.DateField(_("business date"))
    basis = models.BigIntegerField(_("basis"), null=True, blank=True)
    months_below = models.IntegerField(_("months below"), default=0)
    job_run = models.ForeignKey(
        "portal.JobRun", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        ordering = ["-business_date", "-id"]
        verbose_name = _("tier change")
        verbose_name_plural = _("tier changes")
        indexes = [models.Index(fields=["member", "business_date"])]
        constraints = [
            # The same graded move is recorded once for a business date: two runs of a date
            # at once cannot both write it. (A re-run after new data may move a member on
            # again the same date, and manual overrides are their own record.)
            models.UniqueConstraint(
                F("member"),
                F("business_date"),
                Coalesce(F("from_tier"), Value(0)),
                F("to_tier"),
                F("cause"),
                condition=~Q(cause="OVERRIDE"),
                name="tierchange_move_recorded_once",
            )
        ]

    def __str__(self) -> str:
        return f"{self.member_id} {self.from_tier_id}->{self.to_tier_id} {self.cause}"


@audit_trail()
class TierOverride(models.Model):
    """A manual tier set by an account manager, with a reason and an expiry date; in force
    only once a branch manager (not the requester) approves it."""

    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="tier_overrides")
    tier = models.ForeignKey(Tier, on_delete=models.PROTECT, related_name="+")
    reason = models.CharField(_("reason"), max_length=255)
    expires_on = models.DateField(_("expires on"))
    status = models.CharField(
        _("status"), max_length=16, choices=OverrideStatus.choices, default=OverrideStatus.PENDING
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    requested_at = models.DateTimeField(_("requested at"), auto_now_add=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    decided_at = models.DateTimeField(_("decided at"), null=True, blank=True)
    decision_comment = models.CharField(_("decision comment"), max_length=255, blank=True)
    #: why an override ended before its date (SCHEME_CHANGE), and the business date it did
    end_cause = models.CharField(
        _("ended by"), max_length=16, choices=TierChangeCause.choices, blank=True
    )
    ended_on = models.DateField(_("ended on"), null=True, blank=True)

    class Meta:
        ordering = ["-requested_at", "-id"]
        verbose_name = _("tier override")
        verbose_name_plural = _("tier overrides")
        constraints = [
            models.UniqueConstraint(
                fields=["member"],
                condition=Q(status="ACTIVE"),
                name="one_active_override_per_member",
            ),
            # one request waiting per customer (`tier_override_problems` says so first)
            models.UniqueConstraint(
                fields=["member"],
                condition=Q(status="PENDING"),
                name="one_pending_override_per_member",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.member_id} → {self.tier_id} ({self.status})"


@audit_trail(exclude=["updated_at"])
class Segment(models.Model):
    """A saved rule over member fields (all conditions must hold), with a live size.

    `rules` is a list of `{"field": ..., "op": ..., "value": ...}`; the fields and operators
    are the small classes of `members.segments`, so a rule is validated before it is saved.
    """

    code = models.CharField(_("code"), max_length=32, unique=True)
    name = models.CharField(_("name"), max_length=100)
    description = models.TextField(_("description"), blank=True)
    department = models.ForeignKey(
        "portal.Department", on_delete=models.PROTECT, related_name="segments"
    )
    rules = models.JSONField(_("rules"), default=list, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        ordering = ["code"]
        verbose_name = _("segment")
        verbose_name_plural = _("segments")

    def __str__(self) -> str:
        return f"{self.code} {self.name}"


class PointsEntry(models.Model):
    """One movement of a member's points: append-only. The balance is the sum of `points`
    (`Member.points_balance` is that sum, kept in the same transaction). An EARN entry keeps
    `remaining` (not yet spent or expired) and its `expires_on`; spending and expiry draw
    down the oldest earnings first."""

    member = models.ForeignKey(
        Member, on_delete=models.PROTECT, related_name="points_entries", db_index=False
    )  # the (member, id) index serves member lookups
    kind = models.CharField(_("kind"), max_length=8, choices=PointsEntryKind.choices)
    points = models.BigIntegerField(_("points"), help_text=_("Positive earns, negative spends."))
    remaining = models.BigIntegerField(_("remaining"), default=0)
    business_date = models.DateField(_("business date"))
    expires_on = models.DateField(_("expires on"), null=True, blank=True)
    source = models.CharField(_("source"), max_length=100, blank=True)
    idempotency_key = models.CharField(_("idempotency key"), max_length=120, unique=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    note = models.CharField(_("note"), max_length=200, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        ordering = ["-id"]
        verbose_name = _("points entry")
        verbose_name_plural = _("points entries")
        indexes = [
            models.Index(fields=["member", "id"]),
            models.Index(
                fields=["expires_on"],
                name="points_open_earn_idx",
                condition=Q(kind="EARN", remaining__gt=0),
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(remaining__gte=0) & (Q(kind="EARN") | Q(remaining=0)),
                name="points_remaining_only_on_earn",
            ),
            models.CheckConstraint(
                condition=~Q(kind="EARN") | (Q(points__gt=0) & Q(remaining__lte=F("points"))),
                name="points_earn_positive",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.member_id} {self.kind} {self.points}"


@audit_trail()
class FollowUpNote(models.Model):
    """An account manager's note on a customer, with an optional due date for the follow-up
    (shown on the workbench until it is marked done)."""

    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="notes")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    text = models.TextField(_("note"), max_length=2000)
    due_on = models.DateField(_("follow up by"), null=True, blank=True)
    done_at = models.DateTimeField(_("done at"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("follow-up note")
        verbose_name_plural = _("follow-up notes")
        indexes = [
            models.Index(fields=["member", "-created_at"]),
            models.Index(
                fields=["author", "due_on"], name="note_open_due_idx", condition=Q(done_at=None)
            ),
        ]

    def __str__(self) -> str:
        return f"{self.member_id} {self.created_at:%Y-%m-%d}"
