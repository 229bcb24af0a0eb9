"""Enumerations of the benefits app."""

from django.db import models
from django.utils.translation import gettext_lazy as _


class BenefitCategory(models.TextChoices):
    FEE_WAIVER = "FEE_WAIVER", _("Fee waiver 费用减免")
    CASHBACK = "CASHBACK", _("Cashback 返现")
    LOUNGE = "LOUNGE", _("Airport lounge 机场贵宾厅")
    HEALTH = "HEALTH", _("Health 健康")
    TRAVEL = "TRAVEL", _("Travel 出行")
    GIFT = "GIFT", _("Gift 礼品")
    DINING = "DINING", _("Dining 餐饮")


class EntitlementPeriod(models.TextChoices):
    MONTH = "MONTH", _("Per month 每月")
    QUARTER = "QUARTER", _("Per quarter 每季")
    YEAR = "YEAR", _("Per year 每年")


class GrantSource(models.TextChoices):
    ENTITLEMENT = "ENTITLEMENT", _("Tier entitlement 等级权益")
    TASK_REWARD = "TASK_REWARD", _("Task reward 任务奖励")
    MANUAL = "MANUAL", _("Manual 人工发放")


class GrantStatus(models.TextChoices):
    GRANTED = "GRANTED", _("Granted 已发放")
    REDEEMED = "REDEEMED", _("Redeemed 已使用")
    EXPIRED = "EXPIRED", _("Expired 已过期")
    REVOKED = "REVOKED", _("Revoked 已撤销")


class BudgetEntryKind(models.TextChoices):
    CONSUME = "CONSUME", _("Consume 占用")
    RELEASE = "RELEASE", _("Release 释放")
    ADJUST = "ADJUST", _("Adjust 调整")


class RequestStatus(models.TextChoices):
    PENDING = "PENDING", _("Pending approval 待审批")
    APPROVED = "APPROVED", _("Approved 已批准")
    REJECTED = "REJECTED", _("Rejected 驳回")


class BenefitApproval(models.TextChoices):
    """The maker-checker requests the benefits app owns (`benefits.approvals`)."""

    BUDGET_CREATE = "BUDGET_CREATE", _("New budget")
    BUDGET_INCREASE = "BUDGET_INCREASE", _("Budget increase")
    BUDGET_PARENT_CHANGE = "BUDGET_PARENT_CHANGE", _("Budget parent change")
    MANUAL_GRANT = "MANUAL_GRANT", _("Manual grant above the limit")
    ENTITLEMENT_CHANGE = "ENTITLEMENT_CHANGE", _("Entitlement change")
    BENEFIT_CHANGE = "BENEFIT_CHANGE", _("Benefit cost or budget change")


class EntitlementDecision(models.TextChoices):
    """What a tier of a scheme waiting to take effect gets as entitlements
    (`TierEntitlementDecision`, applied at the scheme's effective night)."""

    MAP = "MAP", _("Those of an old tier")
    OWN = "OWN", _("Its own, set in the matrix")
    NONE = "NONE", _("None")
