"""Answers the domains' API views share: Django validation errors of a service as DRF field
errors (400), and 202 Accepted for a change that waits for a second person."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.settings import api_settings

from .serializers import ApprovalRequestSerializer

__all__ = ["answered", "proposed"]


@contextmanager
def answered() -> Iterator[None]:
    """A service's Django `ValidationError` as DRF field errors (400, by field); its domain
    refusals are answered by the API's one exception handler (`portal.api.exceptions`)."""
    try:
        yield
    except DjangoValidationError as exc:
        if hasattr(exc, "error_dict"):
            raise serializers.ValidationError(exc.message_dict) from exc
        raise serializers.ValidationError(
            {api_settings.NON_FIELD_ERRORS_KEY: exc.messages}
        ) from exc


def proposed(data: dict, approval) -> Response:
    """202: the change waits for a second person (`approval` says what and where)."""
    return Response(
        {**data, "approval": ApprovalRequestSerializer(approval).data},
        status=status.HTTP_202_ACCEPTED,
    )
