"""The approvals API: the same requests and the same door (`approval_decide`) as the inbox."""

from drf_spectacular.utils import extend_schema
from rest_framework import mixins, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from ..approvals import approval_decide, approval_inbox, approval_visible
from ..models import ApprovalRequest
from ..permissions import MatrixPermission
from .schema import CONFLICT
from .serializers import (
    ApprovalDecisionSerializer,
    ApprovalRejectionSerializer,
    ApprovalRequestSerializer,
)


class ApprovalRequestViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """Approval requests the caller may see (`?inbox=1`: those waiting for their decision);
    `approve/` and `reject/` decide one (a rejection needs a `comment`)."""

    serializer_class = ApprovalRequestSerializer
    permission_classes = [MatrixPermission]
    action_required = "portal.view_approvals"
    write_action_required = "portal.decide_approvals"
    filterset_fields = ["kind", "status"]

    queryset = ApprovalRequest.objects.none()  # the schema's model; requests: get_queryset

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return ApprovalRequest.objects.none()
        if self.request.query_params.get("inbox") in {"1", "true"}:
            return approval_inbox(user=self.request.user)
        return approval_visible(user=self.request.user)

    def _decide(self, request, *, approve: bool) -> Response:
        approval = self.get_object()
        body = (ApprovalDecisionSerializer if approve else ApprovalRejectionSerializer)(
            data=request.data
        )
        body.is_valid(raise_exception=True)
        approval = approval_decide(
            approval=approval,
            approve=approve,
            actor=request.user,
            comment=body.validated_data["comment"],
        )
        return Response(self.get_serializer(approval).data)

    @extend_schema(
        request=ApprovalDecisionSerializer,
        responses={200: ApprovalRequestSerializer, 409: CONFLICT},
    )
    @action(detail=True, methods=["post"])
    def approve(self, request, pk=None):
        """Approve the request: its change is applied now, exactly once."""
        return self._decide(request, approve=True)

    @extend_schema(
        request=ApprovalRejectionSerializer,
        responses={200: ApprovalRequestSerializer, 409: CONFLICT},
    )
    @action(detail=True, methods=["post"])
    def reject(self, request, pk=None):
        """Reject the request, saying why in `comment`."""
        return self._decide(request, approve=False)


__all__ = ["ApprovalRequestViewSet"]
