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
    """Where a feed file stands. A batch is LOADING from the moment its import starts (in a
    transaction of its own, so a page sees it); it ends LOADED, REJECTED (rows were read but
    every one was refused), DUPLICATE_FILE or FAILED (the file cannot be imported, or the
    import stopped on an error: nothing was kept). A LOADING batch whose process died is
    INTERRUPTED: nothing was kept either, and the file may simply be imported again."""

    LOADING = "LOADING", _("Loading")
    LOADED = "LOADED", _("Loaded")
    REJECTED = "REJECTED", _("Every row rejected")
    DUPLICATE_FILE = "DUPLICATE_FILE", _("Same file loaded before")
    FAILED = "FAILED", _("Failed")
    INTERRUPTED = "INTERRUPTED", _("Interrupted")


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


class TierMethod(models.TextChoices):
    MADA = "MADA", _("Monthly average daily assets 月日均资产")
    POINTS = "POINTS", _("Weighted points 综合积分")


class SchemeStatus(models.TextChoices):
    DRAFT = "DRAFT", _("Draft 草稿")
    PENDING = "PENDING", _("Pending approval 待审批")
    #: approved; becomes ACTIVE at the night of its effective date (`tier_scheme_switch_due`)
    SCHEDULED = "SCHEDULED", _("Approved, awaiting its date 待生效")
    ACTIVE = "ACTIVE", _("Active 生效")
    RETIRED = "RETIRED", _("Retired 停用")


class IndicatorKind(models.TextChoices):
    """What a POINTS indicator measures in the basis month (see members.tiers.INDICATORS)."""

    CATEGORY_BALANCE = "CATEGORY_BALANCE", _("Average balance of a category 品类日均余额")
    FUND_PURCHASE = "FUND_PURCHASE", _("Fund purchases 基金申购")
    CONSUMPTION = "CONSUMPTION", _("Card spending 消费金额")
    ACTIVE_DAYS = "ACTIVE_DAYS", _("Active days 活跃天数")
    PRODUCTS_HELD = "PRODUCTS_HELD", _("Products held 持有产品数")
    PAYROLL = "PAYROLL", _("Payroll credits 代发工资")
    TENURE = "TENURE", _("Whole years as a customer 客户年限")


class TierChangeCause(models.TextChoices):
    INITIAL = "INITIAL", _("First grading 首次定级")
    UPGRADE = "UPGRADE", _("Upgrade 升级")
    DOWNGRADE = "DOWNGRADE", _("Downgrade after protection 保级期满降级")
    CREDIT_RISK = "CREDIT_RISK", _("Credit-risk flag 风险降级")
    SCHEME_CHANGE = "SCHEME_CHANGE", _("New tier scheme 新定级方案")
    OVERRIDE = "OVERRIDE", _("Manual override 人工调级")
    OVERRIDE_EXPIRY = "OVERRIDE_EXPIRY", _("Override expired 人工调级到期")


class OverrideStatus(models.TextChoices):
    PENDING = "PENDING", _("Pending approval 待审批")
    ACTIVE = "ACTIVE", _("Active 生效")
    REJECTED = "REJECTED", _("Rejected 驳回")
    EXPIRED = "EXPIRED", _("Expired 已到期")
    WITHDRAWN = "WITHDRAWN", _("Withdrawn 已撤回")
    #: ended before its date by a tier scheme change (`TierOverride.end_cause`)
    ENDED = "ENDED", _("Ended by a scheme change 方案切换终止")


class PointsEntryKind(models.TextChoices):
    EARN = "EARN", _("Earned 获得")
    SPEND = "SPEND", _("Spent 使用")
    EXPIRE = "EXPIRE", _("Expired 过期")
    ADJUST = "ADJUST", _("Adjusted 调整")


class SegmentField(models.TextChoices):
    """Member fields a segment rule may test (see `members.segments`)."""

    TIER = "tier", _("Tier 等级")
    LIFECYCLE_STAGE = "lifecycle_stage", _("Lifecycle stage 生命周期阶段")
    STATUS = "status", _("Status 状态")
    BRANCH = "branch", _("Branch (and sub-branches) 网点")
    DAYS_SINCE_ACTIVE = "days_since_active", _("Days since last activity 距上次活跃天数")
    DAYS_SINCE_REGISTERED = "days_since_registered", _("Days since registration 注册天数")
    POINTS_BALANCE = "points_balance", _("Points balance 积分余额")
    MADA = "mada", _("Latest graded MADA (CNY) 最近月日均资产")
    AGE = "age", _("Age in years 年龄")


class MemberApproval(models.TextChoices):
    """The maker-checker requests the members app owns (`members.approvals`)."""

    TIER_SCHEME_ACTIVATION = "TIER_SCHEME_ACTIVATION", _("Tier scheme activation")
    TIER_OVERRIDE = "TIER_OVERRIDE", _("Manual tier override")
