"""Benefits API: redeeming a member's grant; the catalogue, entitlements and budgets, whose
cost-bearing changes answer 202 with the approval request that will make them."""

from django.shortcuts import get_object_or_404
from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema
from rest_framework import viewsets
from rest_framework.response import Response
from rest_framework.views import APIView

from members.selectors import member_get
from portal.api.answers import answered, proposed
from portal.api.schema import CONFLICT
from portal.errors import StateConflict
from portal.permissions import MatrixPermission

from ..models import Benefit, BenefitGrant, Budget, TierEntitlement
from ..services import (
    benefit_update,
    budget_create_request,
    budget_proposal_values,
    budget_update,
    entitlement_change_request,
    entitlement_matrix_changes,
    grant_redeem,
)
from .serializers import (
    BenefitProposalSerializer,
    BenefitSerializer,
    BudgetCreationProposalSerializer,
    BudgetProposalSerializer,
    BudgetSerializer,
    EntitlementProposalSerializer,
    GrantSerializer,
    TierEntitlementSerializer,
)


class GrantRedeemView(APIView):
    """Redeem a member's grant: 200 with the grant, 409 if not redeemable (API.md)."""

    permission_classes = [MatrixPermission]
    action_required = "benefits.redeem_grant"

    @extend_schema(request=None, responses={200: GrantSerializer, 409: CONFLICT})
    def post(self, request, member_no: str, grant_id: int):
        member = member_get(user=request.user, member_no=member_no)
        grant = get_object_or_404(
            BenefitGrant.objects.select_related("benefit", "member"), pk=grant_id, member=member
        )
        grant = grant_redeem(grant=grant, actor=request.user)  # 409 `not_redeemable` if not
        return Response(GrantSerializer(grant).data)


class BenefitViewSet(viewsets.ModelViewSet):
    """The benefit catalogue (product team writes; benefits are deactivated, not deleted).
    A PATCH of `unit_cost` or `budget` is a proposal: 202 with the benefit as it still is and
    the approval request; the other fields of the same PATCH apply at once."""

    queryset = Benefit.objects.select_related("budget", "department").order_by("code")
    serializer_class = BenefitSerializer
    permission_classes = [MatrixPermission]
    action_required = "benefits.view_benefits"
    write_action_required = "benefits.configure_benefits"
    http_method_names = ["get", "post", "patch", "head", "options"]

    @extend_schema(
        responses={200: BenefitSerializer, 202: BenefitProposalSerializer, 409: CONFLICT}
    )
    def partial_update(self, request, *args, **kwargs):
        benefit = self.get_object()
        serializer = self.get_serializer(benefit, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        with answered():
            benefit, approval = benefit_update(
                benefit=benefit, changes=dict(serializer.validated_data), actor=request.user
            )
        data = self.get_serializer(Benefit.objects.get(pk=benefit.pk)).data
        return proposed(data, approval) if approval else Response(data)


class TierEntitlementViewSet(viewsets.ModelViewSet):
    """Entitlements. Every write (create, change, delete) is a proposal with its monthly
    cost: 202 with the approval request; the entitlement changes when a budget approver
    approves it."""

    queryset = TierEntitlement.objects.select_related("benefit", "tier__scheme").order_by(
        "tier__rank", "benefit__code"
    )
    serializer_class = TierEntitlementSerializer
    permission_classes = [MatrixPermission]
    action_required = "benefits.view_benefits"
    write_action_required = "benefits.configure_benefits"

    def _propose(self, *, benefit, tier, quantity: int, period: str) -> Response:
        typed = {(benefit, tier): (str(quantity), period)}
        with answered():
            changes = entitlement_matrix_changes(typed=typed)
        if not changes:
            raise StateConflict(
                _("The entitlement is already so: nothing to change."), code="no_change"
            )
        approval = entitlement_change_request(changes=changes, actor=self.request.user)
        return proposed({}, approval)

    @extend_schema(responses={202: EntitlementProposalSerializer, 409: CONFLICT})
    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        values = serializer.validated_data
        return self._propose(
            benefit=values["benefit"],
            tier=values["tier"],
            quantity=values["quantity"],
            period=values["period"],
        )

    @extend_schema(responses={202: EntitlementProposalSerializer, 409: CONFLICT})
    def update(self, request, *args, **kwargs):
        entitlement = self.get_object()
        serializer = self.get_serializer(
            entitlement, data=request.data, partial=kwargs.get("partial", False)
        )
        serializer.is_valid(raise_exception=True)
        values = {
            **{
                "benefit": entitlement.benefit,
                "tier": entitlement.tier,
                "quantity": entitlement.quantity,
                "period": entitlement.period,
            },
            **serializer.validated_data,
        }
        return self._propose(**values)

    @extend_schema(responses={202: EntitlementProposalSerializer, 409: CONFLICT})
    def partial_update(self, request, *args, **kwargs):
        return self.update(request, *args, partial=True, **kwargs)

    @extend_schema(responses={202: EntitlementProposalSerializer, 409: CONFLICT})
    def destroy(self, request, *args, **kwargs):
        entitlement = self.get_object()
        return self._propose(
            benefit=entitlement.benefit, tier=entitlement.tier, quantity=0, period=""
        )


class BudgetViewSet(viewsets.ModelViewSet):
    """Budgets with consumption. A new budget (POST) is a proposal: 202 with the approval
    request, created when a budget approver approves it. A PATCH with a higher `amount` or a
    new `parent` is a proposal too: 202 with the budget as it still is and the request; the
    other fields of the same PATCH, and a lower amount, apply at once. Budgets are not
    deleted (grants and ledger entries point at them)."""

    queryset = Budget.objects.select_related("department", "parent").order_by("code")
    serializer_class = BudgetSerializer
    permission_classes = [MatrixPermission]
    action_required = "benefits.view_budgets"
    write_action_required = "benefits.configure_budgets"
    http_method_names = ["get", "post", "patch", "head", "options"]

    @extend_schema(responses={202: BudgetCreationProposalSerializer, 409: CONFLICT})
    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        with answered():
            approval = budget_create_request(
                values=budget_proposal_values(serializer.validated_data), actor=request.user
            )
        return proposed({}, approval)

    @extend_schema(responses={200: BudgetSerializer, 202: BudgetProposalSerializer, 409: CONFLICT})
    def partial_update(self, request, *args, **kwargs):
        budget = self.get_object()
        serializer = self.get_serializer(budget, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        with answered():
            budget, approval = budget_update(
                budget=budget, changes=dict(serializer.validated_data), actor=request.user
            )
        data = self.get_serializer(self.get_queryset().get(pk=budget.pk)).data
        return proposed(data, approval) if approval else Response(data)
