"""Benefits API: redeeming a member's grant."""

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import viewsets
from rest_framework.response import Response
from rest_framework.views import APIView

from members.selectors import member_get
from portal.api.schema import CONFLICT
from portal.permissions import MatrixPermission

from ..models import Benefit, BenefitGrant, Budget, TierEntitlement
from ..services import grant_redeem
from .serializers import (
    BenefitSerializer,
    BudgetSerializer,
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
    """The benefit catalogue (product team writes; benefits are deactivated, not deleted)."""

    queryset = Benefit.objects.select_related("budget", "department").order_by("code")
    serializer_class = BenefitSerializer
    permission_classes = [MatrixPermission]
    action_required = "benefits.view_benefits"
    write_action_required = "benefits.configure_benefits"
    http_method_names = ["get", "post", "patch", "head", "options"]


class TierEntitlementViewSet(viewsets.ModelViewSet):
    queryset = TierEntitlement.objects.select_related("benefit", "tier").order_by(
        "tier__rank", "benefit__code"
    )
    serializer_class = TierEntitlementSerializer
    permission_classes = [MatrixPermission]
    action_required = "benefits.view_benefits"
    write_action_required = "benefits.configure_benefits"


class BudgetViewSet(viewsets.ReadOnlyModelViewSet):
    """Budgets with consumption; creating or raising one goes through approval (admin)."""

    queryset = Budget.objects.select_related("department", "parent").order_by("code")
    serializer_class = BudgetSerializer
    permission_classes = [MatrixPermission]
    action_required = "benefits.view_budgets"
