"""Organisation (departments, branches, staff), approvals (maker-checker), audit log, job runs,
KPI snapshots and API tokens."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime

import pghistory
import pgtrigger
from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.db import models
from django.utils.translation import gettext_lazy as _

from .choices import ApiScope, ApprovalStatus, BranchLevel, JobStatus, Role
from .registry import approval_kind_choices


def audit_trail(*trackers: pghistory.RowEvent, **options):
    """Class decorator: PostgreSQL triggers (django-pghistory) copy every insert, update and
    delete of the model (or what `trackers` say) into an append-only `<Model>History` table,
    with the user and URL of the request (pghistory's middleware) as its context. Read by
    `portal.audit`. On SQLite there are no triggers and nothing is recorded."""

    def decorate(model):
        return pghistory.track(
            # Fresh trackers for every model: pghistory fills in their fields per model.
            *(
                trackers
                or (pghistory.InsertEvent(), pghistory.UpdateEvent(), pghistory.DeleteEvent())
            ),
            model_name=f"{model.__name__}History",
            append_only=True,  # UPDATE and DELETE refused by a trigger (pgtrigger.Protect)
            # The audit page reads newest first and by date, across every history table.
            meta={"indexes": [models.Index(fields=["pgh_created_at", "pgh_id"])]},
            **options,
        )(model)

    return decorate


@audit_trail()
class Department(models.Model):
    """A business line (retail, wealth, credit card, digital channels); owns campaigns,
    benefits and budgets."""

    code = models.CharField(_("code"), max_length=32, unique=True)
    name = models.CharField(_("name"), max_length=100)

    class Meta:
        ordering = ["code"]
        verbose_name = _("department")
        verbose_name_plural = _("departments")

    def __str__(self) -> str:
        return f"{self.code} {self.name}"


@audit_trail()
class Branch(models.Model):
    """A node of the branch tree: head office → branch → sub-branch.

    `path` is the materialised path of codes (``HO/B01/B01S1/``) so that "this branch
    and everything below it" is one indexed prefix match.
    """

    code = models.CharField(_("code"), max_length=32, unique=True)
    name = models.CharField(_("name"), max_length=100)
    level = models.CharField(_("level"), max_length=16, choices=BranchLevel.choices)
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="children"
    )
    path = models.CharField(_("path"), max_length=255, db_index=True, editable=False)

    class Meta:
        ordering = ["path"]
        verbose_name = _("branch")
        verbose_name_plural = _("branches")

    def __str__(self) -> str:
        return f"{self.code} {self.name}"

    def save(self, *args, **kwargs) -> None:
        prefix = self.parent.path if self.parent_id else ""
        self.path = f"{prefix}{self.code}/"
        super().save(*args, **kwargs)


@audit_trail(
    pghistory.InsertEvent(),
    pghistory.UpdateEvent(),
    # The hash is never stored; that it changed is (an administrator's reset, say).
    pghistory.UpdateEvent("password_change", condition=pghistory.AnyChange("password")),
    pghistory.DeleteEvent(),
    exclude=["password", "last_login"],  # a login is no change to audit
)
class User(AbstractUser):
    """A staff user (or a system integration account) of the bank."""

    branch = models.ForeignKey(
        Branch, null=True, blank=True, on_delete=models.PROTECT, related_name="staff"
    )
    department = models.ForeignKey(
        Department, null=True, blank=True, on_delete=models.PROTECT, related_name="staff"
    )

    class Meta(AbstractUser.Meta):
        verbose_name = _("staff user")
        verbose_name_plural = _("staff users")

    def __str__(self) -> str:
        return self.get_full_name() or self.get_username()

    def get_full_name(self) -> str:
        """The name people call this user by: a Chinese name surname first with no space
        (周敏), another given name first (Anna Schmidt)."""
        surname, given = self.last_name.strip(), self.first_name.strip()
        if surname and given and not (surname.isascii() and given.isascii()):
            return surname + given
        return " ".join(part for part in (given, surname) if part)

    def roles(self) -> set[str]:
        """Names of the role groups this user holds (cached per instance)."""
        if not hasattr(self, "_role_cache"):
            self._role_cache = set(self.groups.values_list("name", flat=True))
        return self._role_cache

    def has_role(self, role: Role | str) -> bool:
        return str(role) in self.roles()


class AuditEntry(models.Model):
    """Append-only record of who did what to which object, from where, when.

    Also records every reveal of a member's personal data and every feed import.
    """

    at = models.DateTimeField(_("at"), auto_now_add=True, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT
    )
    action = models.CharField(_("action"), max_length=64, db_index=True)
    object_type = models.CharField(_("object type"), max_length=64, blank=True)
    object_id = models.CharField(_("object id"), max_length=64, blank=True)
    object_repr = models.CharField(_("object"), max_length=200, blank=True)
    changes = models.JSONField(_("changes"), default=dict, blank=True)
    reason = models.CharField(_("reason"), max_length=255, blank=True)
    ip = models.GenericIPAddressField(_("IP address"), null=True, blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        verbose_name = _("audit entry")
        verbose_name_plural = _("audit entries")
        indexes = [models.Index(fields=["object_type", "object_id"])]
        # Append-only at the database too (PostgreSQL), whoever holds the connection.
        triggers = [
            pgtrigger.Protect(name="append_only", operation=pgtrigger.Update | pgtrigger.Delete)
        ]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.action} {self.object_repr}"

    def save(self, *args, **kwargs) -> None:
        if self.pk is not None:
            raise ValueError("Audit entries are append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ValueError("Audit entries are append-only.")


@audit_trail()
class ApprovalRequest(models.Model):
    """Maker-checker: a change one user asks for and another user, holding the approving
    role, decides. The change is stored here as a proposal (`proposal`, with the values it
    replaces in `current`, shown as a diff) and applied only on approval; the requester can
    never decide their own request. `portal.approvals` decides it; each domain registers the
    kinds of change it owns (`<app>/approvals.py`)."""

    kind = models.CharField(_("kind"), max_length=32, choices=approval_kind_choices)
    status = models.CharField(
        _("status"),
        max_length=16,
        choices=ApprovalStatus.choices,
        default=ApprovalStatus.PENDING,
        db_index=True,
    )
    object_type = models.CharField(_("object type"), max_length=64, blank=True)
    object_id = models.CharField(_("object id"), max_length=64, blank=True)
    summary = models.CharField(_("summary"), max_length=255)
    current = models.JSONField(_("current values"), default=dict, blank=True)
    proposal = models.JSONField(_("proposed values"), default=dict, blank=True)
    reason = models.CharField(_("reason"), max_length=255, blank=True)
    branch = models.ForeignKey(
        Branch,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text=_("For a request about one customer: the customer's branch (scopes the inbox)."),
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="approval_requests",
        verbose_name=_("requested by"),
    )
    requested_at = models.DateTimeField(_("requested at"), auto_now_add=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("decided by"),
    )
    decided_at = models.DateTimeField(_("decided at"), null=True, blank=True)
    comment = models.CharField(_("decision comment"), max_length=255, blank=True)

    class Meta:
        ordering = ["-requested_at", "-id"]
        verbose_name = _("approval request")
        verbose_name_plural = _("approval requests")
        indexes = [models.Index(fields=["object_type", "object_id"])]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.summary}"

    @property
    def is_pending(self) -> bool:
        return self.status == ApprovalStatus.PENDING

    def diff(self) -> list[tuple[str, object, object]]:
        """(field, current value, proposed value) for every field the proposal changes."""
        fields = list(dict.fromkeys([*self.proposal, *self.current]))
        return [
            (name, self.current.get(name), self.proposal.get(name))
            for name in fields
            if self.current.get(name) != self.proposal.get(name)
        ]


class KpiSnapshot(models.Model):
    """The dashboard's figures for one business date, computed once by the nightly chain
    (`kpi_snapshot` step) so that dashboards never scan the member population."""

    business_date = models.DateField(_("business date"), unique=True)
    data = models.JSONField(_("figures"), default=dict)
    created_at = models.DateTimeField(_("computed at"), auto_now=True)

    class Meta:
        ordering = ["-business_date"]
        verbose_name = _("KPI snapshot")
        verbose_name_plural = _("KPI snapshots")

    def __str__(self) -> str:
        return f"KPI {self.business_date}"


class JobRun(models.Model):
    """One run of one batch job (a step of the nightly chain) for one business date."""

    kind = models.CharField(_("kind"), max_length=64, db_index=True)
    business_date = models.DateField(_("business date"), db_index=True)
    status = models.CharField(
        _("status"), max_length=16, choices=JobStatus.choices, default=JobStatus.RUNNING
    )
    started_at = models.DateTimeField(_("started at"), auto_now_add=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)
    counts = models.JSONField(_("counts"), default=dict, blank=True)
    progress = models.CharField(_("progress"), max_length=200, blank=True)
    message = models.TextField(_("message"), blank=True)
    error = models.TextField(_("error"), blank=True)
    triggered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    #: what runs it: "run_nightly (pid 4242 on host)", "Celery worker …", "portal re-run"
    runner = models.CharField(_("run by"), max_length=200, blank=True)
    #: refreshed while the run is alive; a RUNNING run whose heartbeat is stale has died
    heartbeat_at = models.DateTimeField(_("last heartbeat"), null=True, blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        verbose_name = _("job run")
        verbose_name_plural = _("job runs")
        constraints = [
            # At most one run of a step for a business date at a time.
            models.UniqueConstraint(
                fields=["kind", "business_date"],
                condition=models.Q(status="RUNNING"),
                name="jobrun_one_running_per_step_and_date",
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.business_date} {self.status}"

    @property
    def duration(self):
        if self.finished_at is None:
            return None
        return self.finished_at - self.started_at


#: visible start of every API key issued here (tells a leaked key apart in logs and scanners)
API_KEY_MARK = "mop_"
API_KEY_PREFIX_LENGTH = 12


def api_key_generate() -> str:
    """A new random API key (about 240 bits), e.g. ``mop_Xq3…``; shown once, never stored."""
    return API_KEY_MARK + secrets.token_urlsafe(30)


def api_key_digest(key: str) -> str:
    """The SHA-256 hex digest under which a key is stored and looked up."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


# Not the digest (it stands in for the secret), nor the last use (written once a minute).
@audit_trail(exclude=["key_digest", "last_used_at"])
class ApiToken(models.Model):
    """A key with which one client system calls the REST API as a user (`Authorization:
    Token <key>`), limited to its scopes. Only the key's SHA-256 digest and a short visible
    prefix are stored; the key itself is shown once, when it is issued."""

    name = models.CharField(_("client system"), max_length=100)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="api_tokens",
        verbose_name=_("acts as user"),
    )
    prefix = models.CharField(_("key prefix"), max_length=16)
    key_digest = models.CharField(_("key digest (SHA-256)"), max_length=64, unique=True)
    scopes = models.JSONField(_("scopes"), default=list)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("issued by"),
    )
    created_at = models.DateTimeField(_("issued at"), auto_now_add=True)
    expires_at = models.DateTimeField(_("expires at"), null=True, blank=True)
    revoked_at = models.DateTimeField(_("revoked at"), null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("revoked by"),
    )
    last_used_at = models.DateTimeField(_("last used at"), null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("API token")
        verbose_name_plural = _("API tokens")

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    def has_scope(self, scope: ApiScope | str) -> bool:
        return str(scope) in self.scopes

    def is_expired(self, now: datetime) -> bool:
        return self.expires_at is not None and self.expires_at <= now

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None
