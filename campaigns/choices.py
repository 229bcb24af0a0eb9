"""Enumerations of the campaigns app."""

from django.db import models
from django.utils.translation import gettext_lazy as _


class CampaignStatus(models.TextChoices):
    DRAFT = "DRAFT", _("Draft 草稿")
    PENDING_APPROVAL = "PENDING_APPROVAL", _("Pending approval 待审批")
    SCHEDULED = "SCHEDULED", _("Scheduled 待开始")
    ACTIVE = "ACTIVE", _("Active 进行中")
    PAUSED = "PAUSED", _("Paused 已暂停")
    ENDED = "ENDED", _("Ended 已结束")
    REJECTED = "REJECTED", _("Rejected 已驳回")


#: statuses whose configuration may still be edited (anything later was approved as it is)
EDITABLE_STATUSES = (CampaignStatus.DRAFT, CampaignStatus.REJECTED)

#: statuses of a launched campaign that has not ended: its names and descriptions change at
#: once, its task rewards, caps and budget through approval (`services.changes`)
CHANGEABLE_STATUSES = (CampaignStatus.SCHEDULED, CampaignStatus.ACTIVE, CampaignStatus.PAUSED)


class EventType(models.TextChoices):
    SIGN_IN = "SIGN_IN", _("Sign-in 签到")
    LOGIN = "LOGIN", _("Login 登录")
    FUND_PURCHASE = "FUND_PURCHASE", _("Fund purchase 基金申购")
    CARD_SPEND = "CARD_SPEND", _("Card spend 刷卡消费")
    BIND_CARD = "BIND_CARD", _("Bind card 绑卡")
    PAYROLL = "PAYROLL", _("Payroll 代发工资")
    REFERRAL = "REFERRAL", _("Referral 推荐好友")


class Measure(models.TextChoices):
    COUNT = "COUNT", _("Number of events 次数")
    AMOUNT_SUM = "AMOUNT_SUM", _("Sum of amounts (CNY) 累计金额")
    CONSECUTIVE_DAYS = "CONSECUTIVE_DAYS", _("Consecutive days 连续天数")


class Recurrence(models.TextChoices):
    ONCE = "ONCE", _("Once 一次性")
    DAILY = "DAILY", _("Daily 每日")
    WEEKLY = "WEEKLY", _("Weekly (ISO week) 每周")
    MONTHLY = "MONTHLY", _("Monthly 每月")


class Difficulty(models.TextChoices):
    EASY = "EASY", _("Easy 简单")
    MEDIUM = "MEDIUM", _("Medium 中等")
    HARD = "HARD", _("Hard 困难")


class RewardStatus(models.TextChoices):
    REWARDED = "REWARDED", _("Rewarded 已发放")
    REFUSED_BUDGET = "REFUSED_BUDGET", _("Refused: budget exhausted 预算不足未发放")
    REFUSED_CAP = "REFUSED_CAP", _("Refused: cap reached 达到上限未发放")
    NO_REWARD = "NO_REWARD", _("No reward configured 无奖励")


class CampaignApproval(models.TextChoices):
    """The maker-checker requests the campaigns app owns (`campaigns.approvals`)."""

    CAMPAIGN_LAUNCH = "CAMPAIGN_LAUNCH", _("Campaign launch")
    CAMPAIGN_CHANGE = "CAMPAIGN_CHANGE", _("Change of a launched campaign")
