"""Enumerations of the members app."""

from django.db import models
from django.utils.translation import gettext_lazy as _


class MemberStatus(models.TextChoices):
    ACTIVE = "ACTIVE", _("Active 正常")
    FROZEN = "FROZEN", _("Frozen 冻结")
    CLOSED = "CLOSED", _("Closed 销户")


class Channel(models.TextChoices):
    MOBILE = "MOBILE", _("Mobile app 手机银行")
    BRANCH = "BRANCH", _("Branch counter 网点")
    WECHAT = "WECHAT", _("WeChat 微信银行")
    ONLINE = "ONLINE", _("Online banking 网上银行")


class LifecycleStage(models.TextChoices):
    NEW = "NEW", _("New 新客")
    ACTIVE = "ACTIVE", _("Active 活跃")
    AT_RISK = "AT_RISK", _("At risk 流失预警")
    DORMANT = "DORMANT", _("Dormant 沉睡")
    CHURNED = "CHURNED", _("Churned 流失")
    REACTIVATED = "REACTIVATED", _("Reactivated 唤醒")


class FeedKind(models.TextChoices):
    MEMBERS = "members", _("Members 客户信息")
    ASSETS = "assets", _("Asset balances 资产余额")
    CONSUMPTION = "consumption", _("Consumption 消费")


class FeedStatus(models.TextChoices):
    LOADED = "LOADED", _("Loaded")
    DUPLICATE_FILE = "DUPLICATE_FILE", _("Same file loaded before")
    FAILED = "FAILED", _("Failed")


class AssetCategory(models.TextChoices):
    DEMAND = "DEMAND", _("Demand deposit 活期")
    TIME = "TIME", _("Time deposit 定期")
    WEALTH = "WEALTH", _("Wealth management 理财")
    FUND = "FUND", _("Funds 基金")
    INSURANCE = "INSURANCE", _("Insurance 保险")
    BOND = "BOND", _("Bonds 债券")
    MORTGAGE = "MORTGAGE", _("Mortgage 房贷")
    LOAN = "LOAN", _("Loan 贷款")


#: Categories that count as financial assets for MADA (API.md): not MORTGAGE, not LOAN.
FINANCIAL_CATEGORIES: tuple[str, ...] = (
    AssetCategory.DEMAND,
    AssetCategory.TIME,
    AssetCategory.WEALTH,
    AssetCategory.FUND,
    AssetCategory.INSURANCE,
    AssetCategory.BOND,
)
