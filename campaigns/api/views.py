"""Campaigns API: member events from other bank systems (API.md)."""

from __future__ import annotations

import json
from decimal import Decimal

from drf_spectacular.utils import OpenApiExample, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser
from rest_framework.response import Response
from rest_framework.views import APIView

from portal.permissions import MatrixPermission

from ..services import events_ingest


class DecimalJSONParser(JSONParser):
    """JSON with numbers read as `Decimal`: an amount sent as a JSON number is never a float."""

    def parse(self, stream, media_type=None, parser_context=None):
        encoding = (parser_context or {}).get("encoding", "utf-8")
        try:
            return json.loads(stream.read().decode(encoding), parse_float=Decimal)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ParseError(f"The body is not valid JSON: {exc}") from None


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
    parser_classes = [DecimalJSONParser]

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
            )
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
                    "detail": 'The body must be a JSON object {"events": [...]}.',
                    "code": "malformed_batch",
                },
                status=status.HTTP_400_BAD_REQUEST,
            )
        # more than MAX_EVENTS_PER_BATCH: 413 `batch_too_large` with `max` (the exception
        # handler answers BatchTooLarge)
        result = events_ingest(events=body["events"], client=request.user)
        return Response(result.as_response())
