"""The API of the operations layer: the member centre (API.md)."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from members.selectors import member_get
from portal.permissions import MatrixPermission

from .member_centre import member_centre


class MemberCentreSerializer(serializers.Serializer):
    """The member centre as mobile banking shows it (API.md). No personal data."""

    member_no = serializers.CharField()
    tier = serializers.JSONField(allow_null=True)
    tier_since = serializers.DateField(allow_null=True)
    lifecycle_stage = serializers.CharField()
    points_balance = serializers.IntegerField()
    next_tier = serializers.JSONField(allow_null=True)
    protection = serializers.JSONField(allow_null=True)
    tasks = serializers.ListField(child=serializers.JSONField())
    grants = serializers.ListField(child=serializers.JSONField())


class MemberCentreView(APIView):
    """The member centre: tier, next tier, protection, points, tasks and grants."""

    permission_classes = [MatrixPermission]
    action_required = "members.view_member_centre"

    @extend_schema(responses=MemberCentreSerializer)
    def get(self, request, member_no: str):
        member = member_get(user=request.user, member_no=member_no)
        return Response(MemberCentreSerializer(member_centre(member=member)).data)
