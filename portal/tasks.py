"""Thin Celery wrappers around portal services."""

from datetime import date

from celery import shared_task

from .nightly import nightly_run


@shared_task(
    name="portal.nightly_run_task",
    acks_late=True,
    autoretry_for=(ConnectionError,),
    retry_backoff=True,
    max_retries=3,
)
def nightly_run_task(business_date: str | None = None) -> list[dict]:
    """Run the nightly chain for a business date (ISO string; default: today in Shanghai)."""
    from members.feeds import today_in_shanghai

    day = date.fromisoformat(business_date) if business_date else today_in_shanghai()
    runs = nightly_run(business_date=day)
    return [{"kind": run.kind, "status": run.status, "counts": run.counts} for run in runs]


@shared_task(name="portal.ping_task", acks_late=True)
def ping_task(value: str) -> str:
    """Round trip used by health checks and the worker integration test."""
    return f"pong:{value}"
