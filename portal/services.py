"""Writes of the kernel: audit entries and API tokens (job runs: `portal.jobs`)."""

from __future__ import annotations

from contextlib import nullcontext
from datetime import datetime, timedelta

import pghistory
from django.db import connection, models, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from .choices import ApiScope
from .errors import InvalidInput
from .models import (
    API_KEY_PREFIX_LENGTH,
    ApiToken,
    AuditEntry,
    KpiSnapshot,
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


def audit_changes(before: dict, after: dict) -> dict:
    """Field-level changes as the audit trail keeps them: {field: [before, after]}."""
    return {
        name: [before.get(name), value]
        for name, value in after.items()
        if before.get(name) != value
    }


def audit_gone(before: dict) -> dict:
    """The changes of a deletion: every field to None."""
    return {name: [value, None] for name, value in before.items()}


def audit_context(**metadata):
    """The context of every history row written inside the block (django-pghistory), e.g.
    the batch job that made the change; a no-op on SQLite, which records no history."""
    if connection.vendor != "postgresql":
        return nullcontext()
    return pghistory.context(**metadata)


def kpi_snapshot_save(*, business_date, data: dict) -> KpiSnapshot:
    """Store the dashboard's figures for a business date (the nightly `kpi_snapshot` step
    computes them; one row per date, replaced by a re-run)."""
    snapshot, _created = KpiSnapshot.objects.update_or_create(
        business_date=business_date, defaults={"data": data}
    )
    return snapshot


class ApiTokenError(InvalidInput):
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
        raise ApiTokenError(_("Name the client system that will use the token."))
    if not chosen:
        raise ApiTokenError(_("Give the token at least one scope."))
    if unknown:
        raise ApiTokenError(
            _("Unknown scope(s): %(unknown)s; known: %(known)s.")
            % {"unknown": ", ".join(unknown), "known": ", ".join(ApiScope.values)}
        )
    if not user.is_active:
        raise ApiTokenError(_("User %(user)s is inactive.") % {"user": user.username})
    if expires_at is not None and expires_at <= timezone.now():
        raise ApiTokenError(_("The expiry must be in the future."))
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
