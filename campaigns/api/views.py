"""Campaigns API: member events from other bank systems (API.md)."""

from __future__ import annotations

from django.utils import translation
from django.utils.translation import gettext as _
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiResponse,
    extend_schema,
    inline_serializer,
)
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from portal.api.parsers import EventJSONParser
from portal.permissions import MatrixPermission

from ..services import events_ingest

_EVENT = inline_serializer(
    "MemberEvent",
    {
        "event_id": serializers.CharField(max_length=64),
        "member_no": serializers.CharField(),
        "type": serializers.CharField(),
        "amount": serializers.DecimalField(max_digits=16, decimal_places=2, required=False),
        "occurred_at": serializers.DateTimeField(),
        "channel": serializers.CharField(required=False),
    },
    many=True,
)


class EventBatchView(APIView):
    """Member events in batches of at most 1,000. Each event is accepted, counted as a
    duplicate (an event_id seen before changes nothing) or refused with its reasons."""

    permission_classes = [MatrixPermission]
    action_required = "campaigns.post_events"
    write_action_required = "campaigns.post_events"
    # NUL inside an event's strings refuses that event alone (campaigns.events)
    parser_classes = [EventJSONParser]

    @extend_schema(
        request=inline_serializer("EventBatch", {"events": _EVENT}),
        responses={
            200: inline_serializer(
                "EventBatchResult",
                {
                    "accepted": serializers.IntegerField(),
                    "duplicates": serializers.IntegerField(),
                    "rejected": serializers.ListField(child=serializers.JSONField()),
                },
            ),
            413: OpenApiResponse(
                description="More than 1,000 events (`batch_too_large`, with `max`), or a body "
                "larger than the API takes (`request_too_large`)."
            ),
        },
        examples=[
            OpenApiExample(
                "One fund purchase",
                request_only=True,
                value={
                    "events": [
                        {
                            "event_id": "app-7f3c",
                            "member_no": "M0000123",
                            "type": "FUND_PURCHASE",
                            "amount": "20000.00",
                            "occurred_at": "2026-11-26T10:15:00+08:00",
                            "channel": "MOBILE",
                        }
                    ]
                },
            )
        ],
    )
    def post(self, request):
        body = request.data
        if not isinstance(body, dict) or not isinstance(body.get("events"), list):
            return Response(
                {
                    "detail": _('The body must be a JSON object {"events": [...]}.'),
                    "code": "malformed_batch",
                },
                status=status.HTTP_400_BAD_REQUEST,
            )
        # more than MAX_EVENTS_PER_BATCH: 413 `batch_too_large` with `max` (the exception
        # handler answers BatchTooLarge)
        # Refusal reasons read as API.md writes them (English) for a client that names no
        # language; one that sends Accept-Language (e.g. zh-Hans) gets them in it.
        language = translation.get_language() if "HTTP_ACCEPT_LANGUAGE" in request.META else "en"
        with translation.override(language):
            result = events_ingest(events=body["events"], client=request.user)
        return Response(result.as_response())
