"""Members API: the scoped staff list (the member centre is composed in `operations.api`)."""

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics

from portal.api.schema import THROTTLED
from portal.middleware import client_ip
from portal.permissions import MatrixPermission

from ..choices import LifecycleStage, MemberStatus
from ..selectors import MemberFilters, member_list
from ..services.personal_search import PersonalSearchThrottled, member_personal_search
from .serializers import MemberListSerializer


class MemberListView(generics.ListAPIView):
    """Members the caller may see, paginated, phone and ID number masked. `q` is a member
    number or part of a name; a full ID or mobile number is searched only for a role that
    may reveal personal data, audited and throttled (403 to other roles, 429 `throttled`
    with `Retry-After` past the limit)."""

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
            OpenApiParameter(
                "q",
                str,
                description=(
                    "member_no or part of the name; or, for roles that may reveal personal "
                    "data, a full ID or mobile number (audited, at most "
                    "PERSONAL_SEARCH_LIMIT per PERSONAL_SEARCH_WINDOW_MINUTES)"
                ),
            ),
            OpenApiParameter("reason", str, description="Why an ID or mobile number is searched"),
        ],
        responses={200: MemberListSerializer(many=True), 429: THROTTLED},
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        params = self.request.query_params
        q = params.get("q", "")
        found = member_personal_search(
            user=self.request.user,
            text=q,
            reason=params.get("reason", ""),
            ip=client_ip(self.request),
        )
        return member_list(
            user=self.request.user,
            filters=MemberFilters(
                q=q,
                stage=params.get("stage", ""),
                status=params.get("status", ""),
                branch=params.get("branch", ""),
                tier=params.get("tier", ""),
            ),
            found=found,
        )

    def handle_exception(self, exc):
        response = super().handle_exception(exc)
        if isinstance(exc, PersonalSearchThrottled):
            response["Retry-After"] = str(exc.retry_after)
        return response
