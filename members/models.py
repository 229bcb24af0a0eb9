"""Members, the daily feeds from the data warehouse and their monthly accumulations."""

from __future__ import annotations

import calendar
import csv
import io
from decimal import Decimal

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from portal.masking import mask_id_number, mask_phone
from portal.models import Branch
from portal.money import average_fen, fen_to_decimal

from .choices import (
    AssetCategory,
    FeedKind,
    FeedStatus,
    LifecycleStage,
    MemberStatus,
)


class Member(models.Model):
    """A retail customer in the membership programme. `member_no` is the business key.

    Phone and ID number are stored as given and shown masked everywhere
    (`masked_phone`, `masked_id_number`); only an audited reveal shows them.
    """

    member_no = models.CharField(_("member no."), max_length=32, unique=True)
    name = models.CharField(_("name"), max_length=100)
    phone = models.CharField(_("phone"), max_length=32, blank=True)
    id_number = models.CharField(_("ID number"), max_length=32, blank=True, db_index=True)
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
        db_index=True,
    )
    last_active_on = models.DateField(_("last active on"), null=True, blank=True)
    points_balance = models.IntegerField(_("points balance"), default=0)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        ordering = ["member_no"]
        verbose_name = _("member")
        verbose_name_plural = _("members")
        indexes = [models.Index(fields=["account_manager", "member_no"])]

    def __str__(self) -> str:
        return self.member_no

    @property
    def masked_phone(self) -> str:
        return mask_phone(self.phone)

    @property
    def masked_id_number(self) -> str:
        return mask_id_number(self.id_number)


class FeedBatch(models.Model):
    """One feed file as it was imported: checksum, counts (received = accepted +
    duplicates + rejected), who imported it and when."""

    kind = models.CharField(_("kind"), max_length=16, choices=FeedKind.choices)
    file_name = models.CharField(_("file name"), max_length=255)
    checksum = models.CharField(_("SHA-256"), max_length=64, db_index=True)
    status = models.CharField(_("status"), max_length=16, choices=FeedStatus.choices)
    received = models.IntegerField(_("received"), default=0)
    accepted = models.IntegerField(_("accepted"), default=0)
    duplicates = models.IntegerField(_("duplicates"), default=0)
    rejected = models.IntegerField(_("rejected"), default=0)
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


class FeedRejection(models.Model):
    """A refused feed row, kept with its line number, the row as received and the reason."""

    batch = models.ForeignKey(FeedBatch, on_delete=models.CASCADE, related_name="rejections")
    line_no = models.IntegerField(_("line"))
    field = models.CharField(_("field"), max_length=32, blank=True)
    reason = models.CharField(_("reason"), max_length=255)
    raw = models.TextField(_("row as received"))

    class Meta:
        ordering = ["batch", "line_no"]
        verbose_name = _("rejected feed row")
        verbose_name_plural = _("rejected feed rows")

    def __str__(self) -> str:
        return f"line {self.line_no}: {self.reason}"

    def masked_raw(self) -> str:
        """The row for display: in a members feed, phone and ID number are masked."""
        if self.batch.kind != FeedKind.MEMBERS:
            return self.raw
        try:
            fields = next(csv.reader([self.raw]))
        except (csv.Error, StopIteration):
            return "***"
        if len(fields) > 3:
            fields[2] = mask_phone(fields[2])
            fields[3] = mask_id_number(fields[3])
        out = io.StringIO()
        csv.writer(out, lineterminator="").writerow(fields)
        return out.getvalue()


class AssetBalance(models.Model):
    """A member's balance in one asset category at the end of one day (fen)."""

    member = models.ForeignKey(Member, on_delete=models.CASCADE, db_constraint=False)
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

    @property
    def balance(self) -> Decimal:
        return fen_to_decimal(self.balance_fen)


class ConsumptionDay(models.Model):
    """A member's card spending on one day (fen and number of transactions)."""

    member = models.ForeignKey(Member, on_delete=models.CASCADE, db_constraint=False)
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


class MemberActivityDay(models.Model):
    """A day on which the member was active (a consumption row with count > 0, later also
    an accepted member event). One row per member and day, so sources never double count."""

    member = models.ForeignKey(Member, on_delete=models.CASCADE, db_constraint=False)
    date = models.DateField(_("date"))
    month = models.DateField(_("month"))

    class Meta:
        verbose_name = _("activity day")
        verbose_name_plural = _("activity days")
        constraints = [
            models.UniqueConstraint(fields=["member", "date"], name="activity_one_per_day")
        ]
        indexes = [models.Index(fields=["member", "month"])]


class MemberMonthlyStat(models.Model):
    """Month-to-date sums per member, accumulated by feed ingestion.

    A month's MADA (月日均资产) is `financial_day_sum_fen / days_in_month`: one division, no
    scan of daily rows. Day-sums are in fen; a day without a feed row contributes 0.
    """

    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="monthly_stats")
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
        """Monthly average daily financial assets, CNY, rounded to the cent."""
        return average_fen(self.financial_day_sum_fen, self.days_in_month)

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
