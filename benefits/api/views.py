"""Benefits API: redeeming a member's grant."""

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from members.selectors import member_get
from portal.permissions import MatrixPermission

from ..models import BenefitGrant
from ..services import GrantNotRedeemable, grant_redeem
from .serializers import GrantSerializer


class GrantRedeemView(APIView):
    """Redeem a member's grant: 200 with the grant, 409 if not redeemable (API.md)."""

    permission_classes = [MatrixPermission]
    action_required = "benefits.redeem_grant"

    @extend_schema(request=None, responses={200: GrantSerializer})
    def post(self, request, member_no: str, grant_id: int):
        member = member_get(user=request.user, member_no=member_no)
        grant = get_object_or_404(
            BenefitGrant.objects.select_related("benefit", "member"), pk=grant_id, member=member
        )
        try:
            grant = grant_redeem(grant=grant, actor=request.user)
        except GrantNotRedeemable as exc:
            return Response(
                {"detail": str(exc), "code": "not_redeemable"}, status=status.HTTP_409_CONFLICT
            )
        return Response(GrantSerializer(grant).data)
