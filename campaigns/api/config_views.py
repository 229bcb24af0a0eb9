"""Configuration API of the product team (API.md, "Configuration endpoints"): campaigns with
their maker-checker workflow, their tasks, and member segments.

A campaign and its tasks are edited only while the campaign is a draft (or rejected, which
sends it back to draft); anything later was approved as it is, so an edit answers 409. The
edit locks the campaign row first, so it cannot slip in between a colleague's submit and
its approval. Workflow moves (submit, approve, reject, pause, resume, end) go through
`campaigns.services`, which enforce the states and the self-approval rule.
"""

from __future__ import annotations

import django_filters
from django.db import transaction
from django.db.models import Count, Prefetch
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import APIException
from rest_framework.response import Response

from members.models import Member, Segment
from portal.permissions import MatrixPermission
from portal.services import audit_record

from ..choices import EDITABLE_STATUSES, CampaignStatus
from ..models import Campaign, Task, TaskStep
from ..services import CampaignStateError, campaign_decide, campaign_operate, campaign_submit
from .serializers import (
    CampaignDecisionSerializer,
    CampaignOperationSerializer,
    CampaignSerializer,
    SegmentSerializer,
    TaskSerializer,
)
from .views import DecimalJSONParser

#: statuses of a campaign that was submitted and not yet ended: its segments are part of
#: what was (or is being) approved.
LAUNCHED_STATUSES = tuple(
    s for s in CampaignStatus.values if s not in EDITABLE_STATUSES and s != CampaignStatus.ENDED
)


class Conflict(APIException):
    """409 in the API's error shape: {"detail": ..., "code": ...}."""

    status_code = status.HTTP_409_CONFLICT
    default_detail = "The request conflicts with the current state."
    default_code = "conflict"


def _locked_editable_campaign(campaign_id: int) -> Campaign:
    """The campaign, row-locked for this transaction, or 409 when it may not be edited."""
    campaign = Campaign.objects.select_for_update().get(pk=campaign_id)
    if not campaign.is_editable:
        raise Conflict(
            f"Campaign {campaign.code} is {campaign.get_status_display()}; only a draft or a "
            "rejected campaign can be edited.",
            code="campaign_not_editable",
        )
    return campaign


def _reopen_if_rejected(campaign: Campaign, *, actor) -> None:
    """Editing a rejected campaign (or its tasks) makes it a draft again."""
    if campaign.status != CampaignStatus.REJECTED:
        return
    campaign.status = CampaignStatus.DRAFT
    Campaign.objects.filter(pk=campaign.pk).update(
        status=CampaignStatus.DRAFT, updated_at=timezone.now()
    )
    audit_record(
        actor=actor,
        action="campaign.reopen",
        obj=campaign,
        changes={"status": [CampaignStatus.REJECTED, CampaignStatus.DRAFT]},
    )


def _diff(before: dict, after: dict, *, skip: tuple[str, ...] = ()) -> dict:
    """Field-level changes as the audit trail keeps them: {field: [before, after]}."""
    return {
        name: [before.get(name), value]
        for name, value in after.items()
        if name not in skip and before.get(name) != value
    }


_NOT_AUDITED = ("tasks", "created_at", "updated_at", "size")


# --- campaigns -----------------------------------------------------------------------------------


def _tasks_prefetch(prefix: str = "") -> list:
    return [
        f"{prefix}offered_tiers",
        Prefetch(f"{prefix}steps", queryset=TaskStep.objects.select_related("reward_benefit")),
    ]


class CampaignViewSet(viewsets.ModelViewSet):
    """Campaigns: list, read, create (as a draft, authored by the caller), change while
    editable; `submit/`, `approve/`, `reject/`, `pause/`, `resume/`, `end/` move it through
    its workflow."""

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
    parser_classes = [DecimalJSONParser]
    filterset_fields = ["status"]

    def _read(self, pk: int) -> dict:
        return self.get_serializer(self.get_queryset().get(pk=pk)).data

    def perform_create(self, serializer: CampaignSerializer) -> None:
        with transaction.atomic():
            campaign = serializer.save(created_by=self.request.user, status=CampaignStatus.DRAFT)
            audit_record(
                actor=self.request.user,
                action="campaign.create",
                obj=campaign,
                changes=_diff({}, dict(serializer.data), skip=_NOT_AUDITED),
            )

    def update(self, request, *args, **kwargs):
        pk = self.get_object().pk
        with transaction.atomic():
            campaign = _locked_editable_campaign(pk)
            before = dict(CampaignSerializer(campaign).data)
            serializer = self.get_serializer(campaign, data=request.data, partial=True)
            serializer.is_valid(raise_exception=True)
            _reopen_if_rejected(campaign, actor=request.user)
            serializer.save()
            audit_record(
                actor=request.user,
                action="campaign.change",
                obj=campaign,
                changes=_diff(before, dict(CampaignSerializer(campaign).data), skip=_NOT_AUDITED),
            )
        return Response(self._read(pk))

    # --- the workflow ---

    def _move(self, change) -> Response:
        try:
            campaign = change()
        except CampaignStateError as exc:
            return Response(
                {"detail": str(exc), "code": "campaign_state"}, status=status.HTTP_409_CONFLICT
            )
        except PermissionError as exc:  # the maker-checker rule: nobody approves their own
            return Response(
                {"detail": str(exc), "code": "self_approval"}, status=status.HTTP_403_FORBIDDEN
            )
        return Response(self._read(campaign.pk))

    @extend_schema(request=None, responses={200: CampaignSerializer})
    @action(detail=True, methods=["post"], write_action_required="campaigns.configure_campaigns")
    def submit(self, request, pk=None):
        """Send a draft (or rejected) campaign with its tasks to approval."""
        campaign = self.get_object()
        return self._move(lambda: campaign_submit(campaign=campaign, actor=request.user))

    @extend_schema(request=CampaignDecisionSerializer, responses={200: CampaignSerializer})
    @action(detail=True, methods=["post"], write_action_required="campaigns.approve_campaign")
    def approve(self, request, pk=None):
        """Approve a submitted campaign (not one you wrote or submitted); it is scheduled, or
        active when its window has begun."""
        campaign = self.get_object()
        body = CampaignDecisionSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        comment = body.validated_data["comment"]
        return self._move(
            lambda: campaign_decide(
                campaign=campaign, approve=True, actor=request.user, comment=comment
            )
        )

    @extend_schema(request=CampaignDecisionSerializer, responses={200: CampaignSerializer})
    @action(detail=True, methods=["post"], write_action_required="campaigns.approve_campaign")
    def reject(self, request, pk=None):
        """Reject a submitted campaign, saying why in `comment`; it goes back to its author."""
        campaign = self.get_object()
        body = CampaignDecisionSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        comment = body.validated_data["comment"].strip()
        if not comment:
            return Response(
                {"comment": ["Say why the campaign is rejected."]},
                status=status.HTTP_400_BAD_REQUEST,
            )
        return self._move(
            lambda: campaign_decide(
                campaign=campaign, approve=False, actor=request.user, comment=comment
            )
        )

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

    @extend_schema(request=CampaignOperationSerializer, responses={200: CampaignSerializer})
    @action(detail=True, methods=["post"], write_action_required="campaigns.operate_campaign")
    def pause(self, request, pk=None):
        """Pause a scheduled or active campaign: it counts no events while paused."""
        return self._operate(request, "pause")

    @extend_schema(request=CampaignOperationSerializer, responses={200: CampaignSerializer})
    @action(detail=True, methods=["post"], write_action_required="campaigns.operate_campaign")
    def resume(self, request, pk=None):
        """Resume a paused campaign."""
        return self._operate(request, "resume")

    @extend_schema(request=CampaignOperationSerializer, responses={200: CampaignSerializer})
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


class TaskViewSet(viewsets.ModelViewSet):
    """Tasks of campaigns, with their ladder steps. Created, changed and deleted only while
    their campaign is editable (409 otherwise)."""

    queryset = (
        Task.objects.select_related("campaign", "reward_benefit")
        .prefetch_related(*_tasks_prefetch())
        .order_by("campaign__code", "position", "id")
    )
    serializer_class = TaskSerializer
    permission_classes = [MatrixPermission]
    action_required = "campaigns.view_campaigns"
    write_action_required = "campaigns.configure_campaigns"
    parser_classes = [DecimalJSONParser]
    filterset_class = TaskFilter

    def _read(self, pk: int) -> dict:
        return self.get_serializer(self.get_queryset().get(pk=pk)).data

    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        with transaction.atomic():
            campaign = _locked_editable_campaign(serializer.validated_data["campaign"].pk)
            _reopen_if_rejected(campaign, actor=request.user)
            task = serializer.save()
            audit_record(
                actor=request.user,
                action="task.create",
                obj=task,
                changes=_diff({}, dict(TaskSerializer(task).data)),
            )
        return Response(self._read(task.pk), status=status.HTTP_201_CREATED)

    def update(self, request, *args, **kwargs):
        task = self.get_object()
        with transaction.atomic():
            campaign = _locked_editable_campaign(task.campaign_id)
            task = Task.objects.select_related("campaign").get(pk=task.pk)
            before = dict(TaskSerializer(task).data)
            serializer = self.get_serializer(
                task, data=request.data, partial=kwargs.get("partial", False)
            )
            serializer.is_valid(raise_exception=True)
            target = serializer.validated_data.get("campaign", campaign)
            if target.pk != campaign.pk:  # moved: the receiving campaign must be editable too
                _reopen_if_rejected(_locked_editable_campaign(target.pk), actor=request.user)
            _reopen_if_rejected(campaign, actor=request.user)
            task = serializer.save()
            audit_record(
                actor=request.user,
                action="task.change",
                obj=task,
                changes=_diff(before, dict(TaskSerializer(task).data)),
            )
        return Response(self._read(task.pk))

    def destroy(self, request, *args, **kwargs):
        task = self.get_object()
        with transaction.atomic():
            campaign = _locked_editable_campaign(task.campaign_id)
            _reopen_if_rejected(campaign, actor=request.user)
            audit_record(
                actor=request.user,
                action="task.delete",
                obj=task,
                changes={name: [value, None] for name, value in TaskSerializer(task).data.items()},
            )
            task.delete()
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- segments ----------------------------------------------------------------------------------


def _segment_sizes(segments: list[Segment]) -> dict[int, int]:
    """Live sizes of a page of segments in one query: one filtered COUNT per segment over
    one scan of the members (the same conditions as `Member.objects.filter(
    segment.member_filter()).count()`)."""
    if not segments:
        return {}
    counts = Member.objects.aggregate(
        **{f"s{segment.pk}": Count("pk", filter=segment.member_filter()) for segment in segments}
    )
    return {segment.pk: counts[f"s{segment.pk}"] for segment in segments}


class SegmentViewSet(viewsets.ModelViewSet):
    """Member segments with their live size. Rules are checked before they are saved. The
    rules of a segment that a submitted or running campaign targets are frozen with it, and
    a segment any campaign targets is kept (409)."""

    queryset = Segment.objects.select_related("department", "created_by").order_by("code")
    serializer_class = SegmentSerializer
    permission_classes = [MatrixPermission]
    action_required = "members.view_segments"
    write_action_required = "members.configure_segments"
    parser_classes = [DecimalJSONParser]
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

    def perform_create(self, serializer: SegmentSerializer) -> None:
        with transaction.atomic():
            segment = serializer.save(created_by=self.request.user)
            audit_record(
                actor=self.request.user,
                action="segment.create",
                obj=segment,
                changes=_diff({}, dict(serializer.data), skip=_NOT_AUDITED),
            )

    def _launched_campaign_codes(self, segment: Segment) -> list[str]:
        return list(
            segment.campaigns.filter(status__in=LAUNCHED_STATUSES)
            .order_by("code")
            .values_list("code", flat=True)
        )

    def update(self, request, *args, **kwargs):
        segment = self.get_object()
        with transaction.atomic():
            segment = Segment.objects.select_for_update().get(pk=segment.pk)
            before = dict(SegmentSerializer(segment, context={"sizes": {segment.pk: None}}).data)
            serializer = self.get_serializer(
                segment, data=request.data, partial=kwargs.get("partial", False)
            )
            serializer.is_valid(raise_exception=True)
            rules = serializer.validated_data.get("rules", segment.rules)
            if rules != segment.rules and (codes := self._launched_campaign_codes(segment)):
                raise Conflict(
                    f"Campaign(s) {', '.join(codes)} were submitted with this segment's rules; "
                    "make a new segment instead.",
                    code="segment_in_use",
                )
            segment = serializer.save()
            after = dict(SegmentSerializer(segment, context={"sizes": {segment.pk: None}}).data)
            audit_record(
                actor=request.user,
                action="segment.change",
                obj=segment,
                changes=_diff(before, after, skip=_NOT_AUDITED),
            )
        return Response(self.get_serializer(segment).data)

    def destroy(self, request, *args, **kwargs):
        segment = self.get_object()
        codes = list(segment.campaigns.order_by("code").values_list("code", flat=True))
        if codes:
            raise Conflict(
                f"Campaign(s) {', '.join(codes)} target this segment; it is kept.",
                code="segment_in_use",
            )
        with transaction.atomic():
            audit_record(
                actor=request.user,
                action="segment.delete",
                obj=segment,
                changes={"rules": [segment.rules, None]},
            )
            segment.delete()
        return Response(status=status.HTTP_204_NO_CONTENT)


__all__ = ["CampaignViewSet", "SegmentViewSet", "TaskViewSet"]
