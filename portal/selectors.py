"""Reads of the portal app."""

from django.db.models import QuerySet

from .models import JobRun


def jobrun_list() -> QuerySet[JobRun]:
    return JobRun.objects.select_related("triggered_by").order_by("-started_at", "-id")
