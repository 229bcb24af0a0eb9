"""Writes of the portal app: audit entries, job runs and API tokens."""

from __future__ import annotations

import traceback
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from datetime import date, datetime, timedelta

from django.db import models, transaction
from django.utils import timezone

from .choices import ApiScope, JobStatus
from .models import (
    API_KEY_PREFIX_LENGTH,
    ApiToken,
    AuditEntry,
    JobRun,
    api_key_digest,
    api_key_generate,
)

#: `ApiToken.last_used_at` is written at most this often per token (one UPDATE a minute,
#: not one per request)
API_TOKEN_LAST_USED_RESOLUTION = timedelta(minutes=1)


def audit_record(
    *,
    actor,
    action: str,
    obj: models.Model | None = None,
    changes: dict | None = None,
    reason: str = "",
    ip: str | None = None,
) -> AuditEntry:
    """Append one audit entry. Call it inside the transaction of the change it records."""
    return AuditEntry.objects.create(
        actor=actor if getattr(actor, "pk", None) else None,
        action=action,
        object_type=obj._meta.label_lower if obj is not None else "",
        object_id=str(obj.pk) if obj is not None else "",
        object_repr=str(obj)[:200] if obj is not None else "",
        changes=changes or {},
        reason=reason,
        ip=ip,
    )


def audit_context(**metadata):
    """The context of every history row written inside the block (django-pghistory), e.g.
    the batch job that made the change; a no-op on SQLite, which records no history."""
    from django.db import connection

    if connection.vendor != "postgresql":
        return nullcontext()
    import pghistory

    return pghistory.context(**metadata)


def jobrun_progress(*, run: JobRun, progress: str) -> None:
    """Record how far a running job has got (shown on the job runs page)."""
    JobRun.objects.filter(pk=run.pk).update(progress=progress[:200])
    run.progress = progress[:200]


@contextmanager
def jobrun_record(*, kind: str, business_date: date, actor=None) -> Iterator[JobRun]:
    """Record one run of a batch job as a `JobRun` row committed before and after the work.

    The work runs inside the block; it may set `run.counts`, `run.message` and
    `run.status = JobStatus.WARNING`. An exception marks the run FAILED with the error and
    what to do next, then propagates.
    """
    run = JobRun.objects.create(kind=kind, business_date=business_date, triggered_by=actor)
    try:
        job = f"job {kind} {business_date.isoformat()} (run #{run.pk})"
        with audit_context(job=job, **({"user": actor.pk} if getattr(actor, "pk", None) else {})):
            yield run
    except Exception as exc:
        run.status = JobStatus.FAILED
        run.error = (
            f"{type(exc).__name__}: {exc}\n\nFix the cause, then re-run this job for "
            f"{business_date} (run_nightly --date {business_date} or the re-run button).\n\n"
            + traceback.format_exc(limit=5)
        )
        run.finished_at = timezone.now()
        with transaction.atomic():
            run.save()
        raise
    else:
        if run.status == JobStatus.RUNNING:
            run.status = JobStatus.SUCCEEDED
        run.finished_at = timezone.now()
        run.save()


class ApiTokenError(ValueError):
    """An API token cannot be issued as asked (unknown scope, no scope, past expiry…)."""


@transaction.atomic
def api_token_issue(
    *,
    user,
    name: str,
    scopes: list[str],
    actor,
    expires_at: datetime | None = None,
    ip: str | None = None,
) -> tuple[ApiToken, str]:
    """Issue an API token with which the client system `name` acts as `user`, limited to
    `scopes`. Returns the token and its raw key: the key is not stored (only its SHA-256
    digest), so this is the only time anybody sees it."""
    name = name.strip()
    chosen = sorted(set(scopes))
    unknown = [scope for scope in chosen if scope not in ApiScope.values]
    if not name:
        raise ApiTokenError("Name the client system that will use the token.")
    if not chosen:
        raise ApiTokenError("Give the token at least one scope.")
    if unknown:
        raise ApiTokenError(
            f"Unknown scope(s): {', '.join(unknown)}; known: {', '.join(ApiScope.values)}."
        )
    if not user.is_active:
        raise ApiTokenError(f"User {user.username} is inactive.")
    if expires_at is not None and expires_at <= timezone.now():
        raise ApiTokenError("The expiry must be in the future.")
    key = api_key_generate()
    token = ApiToken.objects.create(
        name=name,
        user=user,
        prefix=key[:API_KEY_PREFIX_LENGTH],
        key_digest=api_key_digest(key),
        scopes=chosen,
        created_by=actor if getattr(actor, "pk", None) else None,
        expires_at=expires_at,
    )
    audit_record(
        actor=actor,
        action="api_token.issue",
        obj=token,
        changes={
            "name": name,
            "user": user.username,
            "scopes": chosen,
            "prefix": token.prefix,
            "expires_at": expires_at.isoformat() if expires_at else None,
        },
        ip=ip,
    )
    return token, key


@transaction.atomic
def api_token_revoke(*, token: ApiToken, actor, reason: str = "", ip: str | None = None) -> bool:
    """Revoke a token: from now on its key is refused (401). Returns False, and records
    nothing, when it was already revoked."""
    token = ApiToken.objects.select_for_update().get(pk=token.pk)
    if token.is_revoked:
        return False
    token.revoked_at = timezone.now()
    token.revoked_by = actor if getattr(actor, "pk", None) else None
    token.save(update_fields=["revoked_at", "revoked_by"])
    audit_record(
        actor=actor,
        action="api_token.revoke",
        obj=token,
        changes={"name": token.name, "user": token.user.username, "prefix": token.prefix},
        reason=reason,
        ip=ip,
    )
    return True


def api_token_mark_used(*, token: ApiToken, now: datetime) -> None:
    """Note that `token` was used (at most one UPDATE per token a minute; not audited)."""
    resolution = API_TOKEN_LAST_USED_RESOLUTION
    if token.last_used_at is not None and now - token.last_used_at < resolution:
        return
    ApiToken.objects.filter(pk=token.pk).filter(
        models.Q(last_used_at__isnull=True) | models.Q(last_used_at__lt=now - resolution)
    ).update(last_used_at=now)
    token.last_used_at = now
