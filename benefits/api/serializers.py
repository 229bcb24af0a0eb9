from rest_framework import serializers

from members.models import Tier
from portal.api.serializers import ApprovalRequestSerializer
from portal.models import Department
from portal.money import decimal_to_fen

from ..models import Benefit, BenefitGrant, Budget, TierEntitlement
from ..rules import BENEFIT_UNIT_COST, BENEFIT_VALIDITY_DAYS, BUDGET_AMOUNT, ENTITLEMENT_QUANTITY


class GrantSerializer(serializers.ModelSerializer):
    benefit = serializers.CharField(source="benefit.code")
    member_no = serializers.CharField(source="member.member_no")
    expires_at = serializers.DateField(source="expires_on")

    class Meta:
        model = BenefitGrant
        fields = ["id", "member_no", "benefit", "source", "status", "expires_at", "redeemed_at"]


class BenefitSerializer(serializers.ModelSerializer):
    unit_cost = serializers.DecimalField(
        max_digits=14,
        decimal_places=2,
        source="unit_cost_decimal",
        min_value=BENEFIT_UNIT_COST.low,
        max_value=BENEFIT_UNIT_COST.high,
    )
    validity_days = serializers.IntegerField(
        min_value=BENEFIT_VALIDITY_DAYS.low,
        max_value=BENEFIT_VALIDITY_DAYS.high,
        allow_null=True,
        required=False,
    )
    budget = serializers.SlugRelatedField(slug_field="code", queryset=Budget.objects.all())
    department = serializers.SlugRelatedField(slug_field="code", queryset=Department.objects.all())

    class Meta:
        model = Benefit
        fields = [
            "id",
            "code",
            "name",
            "name_en",
            "category",
            "provider",
            "unit_cost",
            "department",
            "budget",
            "validity_days",
            "active",
        ]

    def to_internal_value(self, data):
        values = super().to_internal_value(data)
        cost = values.pop("unit_cost_decimal", None)
        if cost is not None:
            values["unit_cost_fen"] = decimal_to_fen(cost)
        return values


class TierEntitlementSerializer(serializers.ModelSerializer):
    benefit = serializers.SlugRelatedField(slug_field="code", queryset=Benefit.objects.all())
    tier = serializers.SlugRelatedField(
        slug_field="code", queryset=Tier.objects.filter(scheme__status="ACTIVE")
    )

    quantity = serializers.IntegerField(
        min_value=ENTITLEMENT_QUANTITY.low, max_value=ENTITLEMENT_QUANTITY.high
    )

    class Meta:
        model = TierEntitlement
        fields = ["id", "benefit", "tier", "quantity", "period"]


class BenefitProposalSerializer(BenefitSerializer):
    """202 of a PATCH with a new unit cost or budget: the benefit as it still is, and the
    approval request that will change it."""

    approval = ApprovalRequestSerializer(read_only=True)

    class Meta(BenefitSerializer.Meta):
        fields = [*BenefitSerializer.Meta.fields, "approval"]


class EntitlementProposalSerializer(serializers.Serializer):
    """202 of an entitlement write: the approval request that will make it."""

    approval = ApprovalRequestSerializer(read_only=True)


class BudgetSerializer(serializers.ModelSerializer):
    """A budget with its consumption. Written through proposals (`benefits.services
    .budget_update`, `budget_create_request`): a new budget, a higher `amount` and a new
    `parent` wait for a budget approver; the other fields and a lower amount apply at once."""

    amount = serializers.DecimalField(
        max_digits=16,
        decimal_places=2,
        min_value=BUDGET_AMOUNT.low,
        max_value=BUDGET_AMOUNT.high,
    )
    consumed = serializers.DecimalField(max_digits=16, decimal_places=2, read_only=True)
    remaining = serializers.DecimalField(max_digits=16, decimal_places=2, read_only=True)
    department = serializers.SlugRelatedField(slug_field="code", queryset=Department.objects.all())
    parent = serializers.SlugRelatedField(
        slug_field="code",
        queryset=Budget.objects.all(),
        allow_null=True,
        required=False,
        default=None,
    )
    alert_percents = serializers.JSONField(required=False, default=list)

    class Meta:
        model = Budget
        fields = [
            "id",
            "code",
            "name",
            "department",
            "parent",
            "line",
            "period_start",
            "period_end",
            "amount",
            "consumed",
            "remaining",
            "alert_percents",
        ]


class BudgetProposalSerializer(BudgetSerializer):
    """202 of a PATCH with a higher amount or a new parent: the budget as it still is (the
    other fields of the PATCH applied), and the approval request that will change it."""

    approval = ApprovalRequestSerializer(read_only=True)

    class Meta(BudgetSerializer.Meta):
        fields = [*BudgetSerializer.Meta.fields, "approval"]


class BudgetCreationProposalSerializer(serializers.Serializer):
    """202 of a new budget: the approval request that will create it."""

    approval = ApprovalRequestSerializer(read_only=True)
