"""Writes of the benefits app, one module per concern: budget movements (`budgets`: the one
chain walker behind every consume and release), budget changes with maker-checker
(`budget_changes`), grants (`grants`), the nightly entitlement grants (`entitlements`) and
manual grants and feedback (`manual`)."""

from .benefit_changes import COST_FIELDS, benefit_change_apply, benefit_update, benefit_values_check
from .budget_changes import (
    BUDGET_PROPOSAL_FIELDS,
    BudgetProposalError,
    budget_amount_lower,
    budget_create_apply,
    budget_create_request,
    budget_increase_apply,
    budget_increase_request,
    budget_line_overlap,
)
from .budgets import (
    BudgetExhausted,
    BudgetNotOpen,
    budget_alerts_raise,
    budget_consume,
    budget_consume_many,
    budget_consume_up_to,
    budget_for_date,
    budget_release,
    budget_release_many,
)
from .entitlement_changes import (
    EntitlementChangeError,
    entitlement_change_apply,
    entitlement_change_request,
    entitlement_changes_cost,
    entitlement_matrix_changes,
)
from .entitlements import ENTITLEMENT_PERIODS, entitlement_grants_run, period_of
from .grants import GrantNotRedeemable, grant_create, grant_redeem, grant_revoke, grants_expire
from .manual import (
    benefit_feedback_record,
    manual_grant,
    manual_grant_apply,
    manual_grant_refuse,
)

__all__ = [
    "COST_FIELDS",
    "EntitlementChangeError",
    "benefit_change_apply",
    "benefit_update",
    "benefit_values_check",
    "entitlement_change_apply",
    "entitlement_change_request",
    "entitlement_changes_cost",
    "entitlement_matrix_changes",
    "BUDGET_PROPOSAL_FIELDS",
    "ENTITLEMENT_PERIODS",
    "BudgetExhausted",
    "BudgetNotOpen",
    "BudgetProposalError",
    "GrantNotRedeemable",
    "benefit_feedback_record",
    "budget_alerts_raise",
    "budget_amount_lower",
    "budget_consume",
    "budget_consume_many",
    "budget_consume_up_to",
    "budget_for_date",
    "budget_create_apply",
    "budget_create_request",
    "budget_increase_apply",
    "budget_increase_request",
    "budget_line_overlap",
    "budget_release",
    "budget_release_many",
    "entitlement_grants_run",
    "grant_create",
    "grant_redeem",
    "grant_revoke",
    "grants_expire",
    "manual_grant",
    "manual_grant_apply",
    "manual_grant_refuse",
    "period_of",
]
