"""Configuration API of the product team (API.md, "Configuration endpoints"): campaigns with
their maker-checker workflow, their tasks, and member segments.

The views parse the request with the serializers, call one service of
`campaigns.services.config` (the configuration writes: editability, row locks, target and
ladder checks, segment protection, audit) or of `campaigns.services` (the workflow moves),
and answer: 409 when the campaign may no longer be edited or the segment is in use, 400
with field errors when a check fails.

A launched campaign (scheduled, active or paused) takes a PATCH of its names and
descriptions at once; a change of its tasks' rewards or caps or of its budget is a proposal
(`campaigns.services.changes`): 202 with the campaign (or task) as it still is and the
approval request, which a budget approver decides (`approve/`, `reject/`, or the approvals
API).
"""

from __future__ import annotations

import django_filters
from django.db.models import Count, Prefetch
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from members.models import Member, Segment
from members.segments import segment_filter
from members.services import segment_create, segment_delete, segment_update
from portal.api.answers import answered, proposed
from portal.api.schema import CONFLICT
from portal.api.serializers import ApprovalRejectionSerializer
from portal.approvals import approval_decide, approval_is_pending, approval_pending_for
from portal.permissions import MatrixPermission

from ..choices import CampaignApproval
from ..models import Campaign, Task, TaskStep
from ..services import campaign_operate, campaign_submit
from ..services.changes import campaign_change, campaign_changeable_check, campaign_is_launched
from ..services.config import (
    campaign_create,
    campaign_update,
    task_create,
    task_delete,
    task_update,
)
from .serializers import (
    CampaignDecisionSerializer,
    CampaignOperationSerializer,
    CampaignProposalSerializer,
    CampaignSerializer,
    SegmentSerializer,
    TaskProposalSerializer,
    TaskSerializer,
)

# --- campaigns -----------------------------------------------------------------------------------


def _tasks_prefetch(prefix: str = "") -> list:
    return [
        f"{prefix}offered_tiers",
        Prefetch(f"{prefix}steps", queryset=TaskStep.objects.select_related("reward_benefit")),
    ]


@extend_schema_view(
    partial_update=extend_schema(
        responses={200: CampaignSerializer, 202: CampaignProposalSerializer, 409: CONFLICT}
    )
)
class CampaignViewSet(viewsets.ModelViewSet):
    """Campaigns: list, read, create (as a draft, authored by the caller), change while
    editable; once launched, names and descriptions at once and the budget as a proposal
    (202 with the approval request); `submit/`, `approve/`, `reject/`, `pause/`, `resume/`,
    `end/` move it through its workflow."""

    queryset = (
        Campaign.objects.select_related(
            "department", "budget", "created_by", "submitted_by", "decided_by"
        )
        .prefetch_related(
            "target_tiers",
            "segments",
            Prefetch(
                "tasks",
                queryset=Task.objects.select_related("reward_benefit").prefetch_related(
                    *_tasks_prefetch()
                ),
            ),
        )
        .order_by("-starts_on", "code")
    )
    serializer_class = CampaignSerializer
    permission_classes = [MatrixPermission]
    action_required = "campaigns.view_campaigns"
    write_action_required = "campaigns.configure_campaigns"
    http_method_names = ["get", "post", "patch", "head", "options"]
    filterset_fields = ["status"]

    def _read(self, pk: int) -> dict:
        return self.get_serializer(self.get_queryset().get(pk=pk)).data

    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        with answered():
            campaign = campaign_create(actor=request.user, data=serializer.validated_data)
        return Response(self._read(campaign.pk), status=status.HTTP_201_CREATED)

    def update(self, request, *args, **kwargs):
        campaign = self.get_object()
        with answered():
            # a campaign waiting for approval, or ended, is 409 whatever the body says (read
            # before parsing it)
            campaign_changeable_check(campaign=campaign)
        serializer = self.get_serializer(campaign, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        approval = None
        with answered():
            if campaign_is_launched(campaign):
                campaign, approval = campaign_change(
                    campaign=campaign, actor=request.user, changes=serializer.validated_data
                )
            else:
                campaign = campaign_update(
                    campaign=campaign, actor=request.user, changes=serializer.validated_data
                )
        data = self._read(campaign.pk)
        return proposed(data, approval) if approval else Response(data)

    # --- the workflow ---

    def _move(self, change) -> Response:
        """A workflow move; its refusals are answered by the API's one exception handler
        (409 for the campaign's state, 403 for the maker-checker rules, 400 for input)."""
        campaign = change()
        return Response(self._read(campaign.pk))

    def _decide(self, request, *, approve: bool) -> Response:
        """The API's door to the campaign's pending request — its launch, or a change of the
        launched campaign: the approval engine decides."""
        campaign = self.get_object()
        body = (CampaignDecisionSerializer if approve else ApprovalRejectionSerializer)(
            data=request.data
        )
        body.is_valid(raise_exception=True)
        kind = CampaignApproval.CAMPAIGN_LAUNCH
        if not approval_is_pending(kind=kind, obj=campaign):
            kind = CampaignApproval.CAMPAIGN_CHANGE
        approval_decide(
            approval=approval_pending_for(kind=kind, obj=campaign),
            approve=approve,
            actor=request.user,
            comment=body.validated_data["comment"],
        )
        return Response(self._read(campaign.pk))

    @extend_schema(request=None, responses={200: CampaignSerializer, 409: CONFLICT})
    @action(detail=True, methods=["post"], write_action_required="campaigns.configure_campaigns")
    def submit(self, request, pk=None):
        """Send a draft (or rejected) campaign with its tasks to approval."""
        campaign = self.get_object()
        return self._move(lambda: campaign_submit(campaign=campaign, actor=request.user))

    @extend_schema(
        request=CampaignDecisionSerializer, responses={200: CampaignSerializer, 409: CONFLICT}
    )
    @action(detail=True, methods=["post"], write_action_required="campaigns.approve_campaign")
    def approve(self, request, pk=None):
        """Approve a submitted campaign (not one you wrote or submitted); it is scheduled, or
        active when its window has begun. On a launched campaign: approve its pending change
        (not one you proposed)."""
        return self._decide(request, approve=True)

    @extend_schema(
        request=ApprovalRejectionSerializer, responses={200: CampaignSerializer, 409: CONFLICT}
    )
    @action(detail=True, methods=["post"], write_action_required="campaigns.approve_campaign")
    def reject(self, request, pk=None):
        """Reject a submitted campaign, saying why in `comment`; it goes back to its author.
        On a launched campaign: reject its pending change."""
        return self._decide(request, approve=False)

    def _operate(self, request, operation: str) -> Response:
        campaign = self.get_object()
        body = CampaignOperationSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        return self._move(
            lambda: campaign_operate(
                campaign=campaign,
                operation=operation,
                actor=request.user,
                reason=body.validated_data["reason"],
            )
        )

    @extend_schema(
        request=CampaignOperationSerializer, responses={200: CampaignSerializer, 409: CONFLICT}
    )
    @action(detail=True, methods=["post"], write_action_required="campaigns.operate_campaign")
    def pause(self, request, pk=None):
        """Pause a scheduled or active campaign: it counts no events while paused."""
        return self._operate(request, "pause")

    @extend_schema(
        request=CampaignOperationSerializer, responses={200: CampaignSerializer, 409: CONFLICT}
    )
    @action(detail=True, methods=["post"], write_action_required="campaigns.operate_campaign")
    def resume(self, request, pk=None):
        """Resume a paused campaign."""
        return self._operate(request, "resume")

    @extend_schema(
        request=CampaignOperationSerializer, responses={200: CampaignSerializer, 409: CONFLICT}
    )
    @action(detail=True, methods=["post"], write_action_required="campaigns.operate_campaign")
    def end(self, request, pk=None):
        """End a launched campaign for good."""
        return self._operate(request, "end")


# --- tasks -------------------------------------------------------------------------------------


class TaskFilter(django_filters.FilterSet):
    campaign = django_filters.CharFilter(field_name="campaign__code", help_text="Campaign code")

    class Meta:
        model = Task
        fields = ["campaign", "event_type", "measure", "recurrence", "difficulty"]


@extend_schema_view(
    create=extend_schema(responses={201: TaskSerializer, 409: CONFLICT}),
    update=extend_schema(
        responses={200: TaskSerializer, 202: TaskProposalSerializer, 409: CONFLICT}
    ),
    partial_update=extend_schema(
        responses={200: TaskSerializer, 202: TaskProposalSerializer, 409: CONFLICT}
    ),
    destroy=extend_schema(responses={204: None, 409: CONFLICT}),
)
class TaskViewSet(viewsets.ModelViewSet):
    """Tasks of campaigns, with their ladder steps. Created, changed and deleted while their
    campaign is editable; a launched campaign's task takes its name and description at once
    and its rewards (ladder step rewards too) and caps as a proposal (202 with the approval
    request); anything else is 409."""

    queryset = (
        Task.objects.select_related("campaign", "reward_benefit")
        .prefetch_related(*_tasks_prefetch())
        .order_by("campaign__code", "position", "id")
    )
    serializer_class = TaskSerializer
    permission_classes = [MatrixPermission]
    action_required = "campaigns.view_campaigns"
    write_action_required = "campaigns.configure_campaigns"
    filterset_class = TaskFilter

    def _read(self, pk: int) -> dict:
        return self.get_serializer(self.get_queryset().get(pk=pk)).data

    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        campaign, steps = data.pop("campaign"), data.pop("steps", [])
        with answered():
            task = task_create(campaign=campaign, actor=request.user, data=data, steps=steps)
        return Response(self._read(task.pk), status=status.HTTP_201_CREATED)

    def update(self, request, *args, **kwargs):
        task = self.get_object()
        with answered():
            # a task of a campaign waiting for approval, or ended, is 409 whatever the body says
            campaign_changeable_check(campaign=task.campaign)
        serializer = self.get_serializer(
            task, data=request.data, partial=kwargs.get("partial", False)
        )
        serializer.is_valid(raise_exception=True)
        changes = dict(serializer.validated_data)
        steps = changes.pop("steps", None)
        approval = None
        with answered():
            if campaign_is_launched(task.campaign):
                ladder = {} if steps is None else {"steps": steps}
                _campaign, approval = campaign_change(
                    campaign=task.campaign,
                    actor=request.user,
                    tasks={task.pk: {**changes, **ladder}},
                )
            else:
                task = task_update(task=task, actor=request.user, changes=changes, steps=steps)
        data = self._read(task.pk)
        return proposed(data, approval) if approval else Response(data)

    def destroy(self, request, *args, **kwargs):
        task = self.get_object()
        with answered():
            task_delete(task=task, actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- segments ----------------------------------------------------------------------------------


def _segment_sizes(segments: list[Segment]) -> dict[int, int]:
    """Live sizes of a page of segments in one query: one filtered COUNT per segment over
    one scan of the members (the same conditions as `Member.objects.filter(
    segment_filter(segment)).count()`)."""
    if not segments:
        return {}
    counts = Member.objects.aggregate(
        **{f"s{segment.pk}": Count("pk", filter=segment_filter(segment)) for segment in segments}
    )
    return {segment.pk: counts[f"s{segment.pk}"] for segment in segments}


@extend_schema_view(
    update=extend_schema(responses={200: SegmentSerializer, 409: CONFLICT}),
    partial_update=extend_schema(responses={200: SegmentSerializer, 409: CONFLICT}),
    destroy=extend_schema(responses={204: None, 409: CONFLICT}),
)
class SegmentViewSet(viewsets.ModelViewSet):
    """Member segments with their live size. Rules are checked before they are saved. The
    rules of a segment that a submitted or running campaign targets are frozen with it, and
    a segment any campaign targets is kept (409)."""

    queryset = Segment.objects.select_related("department", "created_by").order_by("code")
    serializer_class = SegmentSerializer
    permission_classes = [MatrixPermission]
    action_required = "members.view_segments"
    write_action_required = "members.configure_segments"
    filterset_fields = ["department__code"]

    def list(self, request, *args, **kwargs):
        queryset = self.filter_queryset(self.get_queryset())
        page = self.paginate_queryset(queryset)
        segments = list(page if page is not None else queryset)
        context = {**self.get_serializer_context(), "sizes": _segment_sizes(segments)}
        data = SegmentSerializer(segments, many=True, context=context).data
        if page is not None:
            return self.get_paginated_response(data)
        return Response(data)

    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        with answered():
            segment = segment_create(actor=request.user, data=serializer.validated_data)
        return Response(self.get_serializer(segment).data, status=status.HTTP_201_CREATED)

    def update(self, request, *args, **kwargs):
        segment = self.get_object()
        serializer = self.get_serializer(
            segment, data=request.data, partial=kwargs.get("partial", False)
        )
        serializer.is_valid(raise_exception=True)
        with answered():
            segment = segment_update(
                segment=segment, actor=request.user, changes=serializer.validated_data
            )
        return Response(self.get_serializer(segment).data)

    def destroy(self, request, *args, **kwargs):
        segment = self.get_object()
        with answered():
            segment_delete(segment=segment, actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


__all__ = ["CampaignViewSet", "SegmentViewSet", "TaskViewSet"]
