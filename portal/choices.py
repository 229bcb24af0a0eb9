"""Enumerations of the portal app."""

from django.db import models
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy


class Role(models.TextChoices):
    """Staff roles. Each is a Django group created by a data migration (names are stable)."""

    ACCOUNT_MANAGER = "Account manager", _("Account manager 客户经理")
    BRANCH_MANAGER = "Branch manager", _("Branch manager 支行行长")
    PRODUCT_OPERATOR = "Product operator", _("Product operator 产品运营")
    BUDGET_APPROVER = "Budget approver", _("Budget approver 预算审批")
    RISK_AUDITOR = "Risk auditor", _("Risk auditor 风险审计")
    ADMINISTRATOR = "Administrator", _("Administrator 系统管理员")
    SYSTEM = "System integration", _("System integration 系统对接")


class BranchLevel(models.TextChoices):
    HEAD_OFFICE = "HEAD_OFFICE", _("Head office 总行")
    BRANCH = "BRANCH", _("Branch 分行")
    SUB_BRANCH = "SUB_BRANCH", _("Sub-branch 支行")


class JobStatus(models.TextChoices):
    RUNNING = "RUNNING", _("Running")
    SUCCEEDED = "SUCCEEDED", _("Succeeded")
    WARNING = "WARNING", _("Succeeded with warnings")
    FAILED = "FAILED", _("Failed")
    #: its process died (no heartbeat): superseded by the next run of its step and date
    ABANDONED = "ABANDONED", _("Abandoned")


class ApiScope(models.TextChoices):
    """What an API token may be used for. The one list of scopes; which matrix action needs
    which scope is `portal.permissions.TOKEN_SCOPE_FOR_ACTION`."""

    EVENTS_WRITE = "events-write", _("Post member events")
    MEMBERS_READ = "members-read", _("Read members and the member centre")
    GRANTS_REDEEM = "grants-redeem", _("Redeem members' benefit grants")
    CONFIG_READ = "config-read", _("Read configuration (campaigns, benefits, budgets…)")
    CONFIG_WRITE = "config-write", _("Change configuration (campaigns, benefits…)")


class ApprovalStatus(models.TextChoices):
    PENDING = "PENDING", pgettext_lazy("approval status", "Pending")
    APPROVED = "APPROVED", pgettext_lazy("approval status", "Approved")
    REJECTED = "REJECTED", pgettext_lazy("approval status", "Rejected")
    WITHDRAWN = "WITHDRAWN", pgettext_lazy("approval status", "Withdrawn")
