"""Members API: the scoped staff list (the member centre is composed in `operations.api`)."""

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics

from portal.permissions import MatrixPermission

from ..choices import LifecycleStage, MemberStatus
from ..selectors import MemberFilters, member_list
from .serializers import MemberListSerializer


class MemberListView(generics.ListAPIView):
    """Members the caller may see, paginated, phone and ID number masked."""

    serializer_class = MemberListSerializer
    permission_classes = [MatrixPermission]
    action_required = "members.view_members"
    filter_backends: list = []

    @extend_schema(
        parameters=[
            OpenApiParameter("tier", str, description="Tier code, e.g. GOLD"),
            OpenApiParameter("stage", str, enum=LifecycleStage.values),
            OpenApiParameter("status", str, enum=MemberStatus.values),
            OpenApiParameter("branch", str, description="Branch code (includes sub-branches)"),
            OpenApiParameter("q", str, description="member_no, name, or exact ID number"),
        ]
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        params = self.request.query_params
        return member_list(
            user=self.request.user,
            filters=MemberFilters(
                q=params.get("q", ""),
                stage=params.get("stage", ""),
                status=params.get("status", ""),
                branch=params.get("branch", ""),
                tier=params.get("tier", ""),
            ),
        )
