"""Maker-checker: the approval engine and its one door, `approval_decide`.

A change that needs a second person is first a *request* (`ApprovalRequest`), created by the
domain service that proposes it (`approval_request_create`, in its transaction) with the
values it would replace (`current`) and the proposed ones (`proposal`), so the checker sees a
diff. Each kind of request is a small class (`ApprovalKind`) that the domain owning the
change registers from its `AppConfig.ready()` (`members/approvals.py`,
`benefits/approvals.py`, `campaigns/approvals.py`); the kernel imports none of them.

Every door that decides a request — the inbox, the admin actions, the API — calls
`approval_decide`. It enforces the rules every kind shares, once: the request is still
pending; the decider is not its maker (the requester stored on the request, and whoever
else the kind names); the decider holds the approving role and is in the request's scope;
a rejection says why. Then the kind applies (or refuses) the change and the request is
settled, all in one transaction: a change applies exactly once, only on approval.
"""

from __future__ import annotations

from collections.abc import Callable

from django.apps import apps
from django.conf import settings
from django.db import models, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from .choices import ApprovalStatus, Role
from .errors import InvalidInput, NotAllowed, StateConflict
from .models import ApprovalRequest
from .permissions import user_can
from .registry import APPROVAL_KINDS
from .services import audit_record

__all__ = [
    "ApprovalKind",
    "approval_decide",
    "approval_inbox",
    "approval_is_pending",
    "approval_kind",
    "approval_kind_register",
    "approval_impact",
    "approval_list",
    "approval_may_decide",
    "approval_pending_for",
    "approval_request_create",
    "approval_restated",
    "approval_summaries",
    "approval_summary",
    "approval_visible",
    "approval_withdraw",
]


class ApprovalKind:
    """One kind of request. A domain subclasses it, says which role approves, and applies
    (or refuses) the change; the engine has checked everything else before it is called."""

    #: the code stored in `ApprovalRequest.kind`
    code: str
    #: what the kind is called in the inbox
    label: str
    #: the permission-matrix action the checker's role must hold
    approve_action: str

    def scope(self, user) -> Q | None:
        """The requests of this kind `user` may decide, as a condition on ApprovalRequest
        (None: none of them). A kind narrows it (a customer's request: the customer's
        branch) by extending this."""
        if not user_can(user, self.approve_action):
            return None
        return Q(kind=self.code)

    #: what `summary` reads of the object besides its row (for `approval_summaries`)
    summary_related: tuple[str, ...] = ()

    def target(self, approval: ApprovalRequest, *, lock: bool = False) -> models.Model | None:
        """The object the request is about, locked for the decision with `lock` (None: the
        change lives only in the request, e.g. a budget not yet created); unlocked, the one
        `approval_summaries` fetched for a page, when it did."""
        if not approval.object_type:
            return None
        if not lock and hasattr(approval, "_target"):
            return approval._target
        objects = apps.get_model(approval.object_type).objects
        return (objects.select_for_update() if lock else objects).get(pk=approval.object_id)

    def makers(self, approval: ApprovalRequest, target) -> set[int]:
        """Users (ids) who made the change besides the requester, and so may not decide it."""
        return set()

    def made_by(self, user) -> Q | None:
        """The requests of this kind whose change `user` made besides requesting (what
        `makers` says, as a query condition for the inbox); None: only the requester."""
        return None

    def apply(self, approval: ApprovalRequest, target, *, actor, comment: str):
        """Apply the approved change. May return the object the request now concerns (one it
        created); raises a `DomainError` when the change can no longer be applied."""
        raise NotImplementedError

    def refuse(self, approval: ApprovalRequest, target, *, actor, comment: str) -> None:
        """Undo what waiting for the decision held (a status, a lock); nothing by default."""

    def withdraw(self, approval: ApprovalRequest, target, *, actor, reason: str) -> None:
        """Undo what waiting held when the requester withdraws; as a refusal by default."""
        self.refuse(approval, target, actor=actor, comment=reason)

    def impact(self, approval: ApprovalRequest) -> list[tuple[str, str]]:
        """What approving would do, as (what, how much) lines in the user's language, computed
        now by the code that applies the change (the approval page and the API show it);
        nothing by default."""
        return []

    def summary(self, approval: ApprovalRequest) -> str:
        """The request in one line as the inbox lists it, in the viewer's language: the stored
        summary (written in the requester's language) by default; a kind says it again from
        the request's values and the objects it is about."""
        return approval.summary

    def diff(self, approval: ApprovalRequest) -> list[tuple[str, object, object]]:
        """The proposed change as the approval page shows it, (field, now, proposed): the
        stored values by default; a kind whose proposal keeps raw values for applying them
        (amounts, codes) says them in business words here."""
        return approval.diff()

    def links(self, approval: ApprovalRequest) -> list[tuple[str, str]]:
        """(label, URL) of the pages an approver reads before deciding (a simulation, the
        decisions a change depends on); none by default."""
        return []


def approval_impact(approval: ApprovalRequest) -> list[tuple[str, str]]:
    """The impact lines of a pending request (`ApprovalKind.impact`); none once decided."""
    if not approval.is_pending:
        return []
    return approval_kind(approval.kind).impact(approval)


def approval_summary(approval: ApprovalRequest) -> str:
    """The request in one line in the viewer's language (`ApprovalKind.summary`); the stored
    summary when its objects are gone."""
    try:
        return approval_kind(approval.kind).summary(approval)
    except (LookupError, models.ObjectDoesNotExist):
        return approval.summary


def approval_summaries(approvals) -> list[ApprovalRequest]:
    """A page of requests, each with `summary_text` (`approval_summary`): the objects they are
    about fetched once per kind, so that a page costs the same for 3 or 50 requests."""
    approvals = list(approvals)
    wanted: dict[tuple[str, str], list[ApprovalRequest]] = {}
    for approval in approvals:
        if (
            approval.object_type
            and approval.object_id.isdigit()
            and approval.kind in APPROVAL_KINDS
        ):
            wanted.setdefault((approval.kind, approval.object_type), []).append(approval)
    for (code, object_type), group in wanted.items():
        objects = apps.get_model(object_type).objects
        related = APPROVAL_KINDS[code].summary_related
        rows = (objects.select_related(*related) if related else objects).in_bulk(
            {approval.object_id for approval in group}
        )
        for approval in group:
            found = rows.get(int(approval.object_id))
            if found is not None:
                approval._target = found
    for approval in approvals:
        approval.summary_text = approval_summary(approval)
    return approvals


def approval_restated(stored, render: Callable[[], object]):
    """Text a request stored in the words of its requester's language, said in the active one.

    `render()` writes what the proposing code wrote, from the data as they are now. Where it
    writes exactly the stored value in one of the site's languages, the data have not changed
    since and its words in the active language replace the stored ones; otherwise (the object
    changed after the decision) the stored value is what was decided, and stays."""
    active = translation.get_language()
    for code, _name in settings.LANGUAGES:
        with translation.override(code):
            if render() == stored:
                break
    else:
        return stored
    with translation.override(active):
        return render()


def approval_diff(approval: ApprovalRequest) -> list[tuple[str, object, object]]:
    """The proposed change in the words of its kind (`ApprovalKind.diff`)."""
    return approval_kind(approval.kind).diff(approval)


def approval_links(approval: ApprovalRequest) -> list[tuple[str, str]]:
    """The pages to read before deciding a pending request (`ApprovalKind.links`)."""
    if not approval.is_pending:
        return []
    return approval_kind(approval.kind).links(approval)


def approval_kind_register(kind: type[ApprovalKind]) -> type[ApprovalKind]:
    """Register a kind (class decorator); called from the owning app's `ready()`."""
    APPROVAL_KINDS[kind.code] = kind()
    return kind


def approval_kind(code: str) -> ApprovalKind:
    try:
        return APPROVAL_KINDS[code]
    except KeyError:
        raise LookupError(
            f"No approval kind {code!r} is registered (known: {', '.join(APPROVAL_KINDS)})."
        ) from None


# --- writes ----------------------------------------------------------------------------------


def _jsonable(values: dict) -> dict:
    """Decimals and dates as their text (exact); plain JSON values as they are."""
    return {
        str(key): value if isinstance(value, str | int | bool | list | None) else str(value)
        for key, value in values.items()
    }


def approval_request_create(
    *,
    kind: str,
    summary: str,
    actor,
    obj: models.Model | None = None,
    current: dict | None = None,
    proposal: dict | None = None,
    reason: str = "",
    branch=None,
) -> ApprovalRequest:
    """Record a proposed change for a second person to decide. Call it inside the transaction
    of the service that proposes the change; nothing is applied until approval."""
    approval_kind(kind)  # an unregistered kind could never be decided
    approval = ApprovalRequest.objects.create(
        kind=kind,
        object_type=obj._meta.label_lower if obj is not None else "",
        object_id=str(obj.pk) if obj is not None else "",
        summary=summary[:255],
        current=_jsonable(current or {}),
        proposal=_jsonable(proposal or {}),
        reason=reason[:255],
        branch=branch,
        requested_by=actor,
    )
    audit_record(
        actor=actor,
        action="approval.request",
        obj=approval,
        changes={"kind": kind, "summary": approval.summary},
        reason=reason,
    )
    return approval


def approval_decide(
    *, approval: ApprovalRequest, approve: bool, actor, comment: str = ""
) -> ApprovalRequest:
    """The one door for every decision (inbox, admin, API). Only a user who did not make the
    change, holds the approving role and has the request in their scope decides; a rejection
    says why. Approval applies the change through its kind, in this transaction; the
    request is settled in the same transaction."""
    comment = comment.strip()
    with transaction.atomic():
        approval = _locked_pending(approval)
        kind = approval_kind(approval.kind)
        target = kind.target(approval, lock=True)
        if _is_maker(kind, approval, target, actor):
            raise NotAllowed(
                _("You cannot decide your own request; a colleague must."), code="self_approval"
            )
        if not _in_scope(kind, approval, actor):
            raise NotAllowed(_("Your role cannot decide this request."), code="not_approver")
        if not approve and not comment:
            raise InvalidInput(
                _("Say why the request is rejected."), field="comment", code="reason_required"
            )
        if approve:
            concerns = kind.apply(approval, target, actor=actor, comment=comment)
            if isinstance(concerns, models.Model):
                approval.object_type = concerns._meta.label_lower
                approval.object_id = str(concerns.pk)
        else:
            kind.refuse(approval, target, actor=actor, comment=comment)
        approval.status = ApprovalStatus.APPROVED if approve else ApprovalStatus.REJECTED
        approval.decided_by, approval.decided_at = actor, timezone.now()
        approval.comment = comment[:255]
        approval.save()
        audit_record(
            actor=actor,
            action="approval.approve" if approve else "approval.reject",
            obj=approval,
            changes={"kind": approval.kind, "summary": approval.summary},
            reason=comment,
        )
    return approval


def approval_withdraw(*, approval: ApprovalRequest, actor, reason: str = "") -> ApprovalRequest:
    """The requester takes back a request still pending (nobody else may): it ends as
    WITHDRAWN, its kind undoes what waiting held, and the audit trail says so."""
    reason = reason.strip()
    with transaction.atomic():
        approval = ApprovalRequest.objects.select_for_update().get(pk=approval.pk)
        if approval.requested_by_id != actor.pk:
            raise NotAllowed(
                _("Only the person who made a request can withdraw it."), code="not_requester"
            )
        _require_pending(approval)
        kind = approval_kind(approval.kind)
        kind.withdraw(approval, kind.target(approval, lock=True), actor=actor, reason=reason)
        approval.status = ApprovalStatus.WITHDRAWN
        approval.decided_by, approval.decided_at = actor, timezone.now()
        approval.comment = reason[:255]
        approval.save()
        audit_record(
            actor=actor,
            action="approval.withdraw",
            obj=approval,
            changes={"kind": approval.kind, "summary": approval.summary},
            reason=reason,
        )
    return approval


def approval_requests_void(*, kind: str, object_ids, reason: str) -> int:
    """Withdraw, as the system, the pending requests of `kind` about objects the owning
    domain has already closed (the tier requests a scheme switch made moot): one UPDATE,
    with `reason` for the requester to read and one audit entry. Returns how many."""
    ids = [str(pk) for pk in object_ids]
    if not ids:
        return 0
    pending = ApprovalRequest.objects.filter(
        kind=kind, object_id__in=ids, status=ApprovalStatus.PENDING
    )
    voided = list(pending.values_list("pk", flat=True))
    ApprovalRequest.objects.filter(pk__in=voided).update(
        status=ApprovalStatus.WITHDRAWN, decided_at=timezone.now(), comment=reason[:255]
    )
    if voided:
        audit_record(
            actor=None,
            action="approval.void",
            changes={"kind": kind, "requests": voided},
            reason=reason,
        )
    return len(voided)


def _locked_pending(approval: ApprovalRequest) -> ApprovalRequest:
    """The request row-locked, or `StateConflict` (409 `already_decided`) once it is not
    pending any more."""
    approval = ApprovalRequest.objects.select_for_update().get(pk=approval.pk)
    _require_pending(approval)
    return approval


def _require_pending(approval: ApprovalRequest) -> None:
    if approval.status != ApprovalStatus.PENDING:
        raise StateConflict(
            _("This request is already %(status)s.") % {"status": approval.get_status_display()},
            code="already_decided",
        )


def _is_maker(kind: ApprovalKind, approval: ApprovalRequest, target, user) -> bool:
    """The requester, and whoever else made the change (the kind says), never decide it."""
    return user.pk == approval.requested_by_id or user.pk in kind.makers(approval, target)


def _in_scope(kind: ApprovalKind, approval: ApprovalRequest, user) -> bool:
    """The decider's role holds the kind's approving action and the request is in their
    scope (evaluated now: a customer's request follows the customer)."""
    condition = kind.scope(user)
    return condition is not None and (
        ApprovalRequest.objects.filter(condition, pk=approval.pk).exists()
    )


# --- reads -----------------------------------------------------------------------------------

#: roles that read every request (read-only unless they also hold an approving role)
OVERSEERS = frozenset({Role.RISK_AUDITOR, Role.ADMINISTRATOR})


def approval_list() -> QuerySet[ApprovalRequest]:
    return ApprovalRequest.objects.select_related("requested_by", "decided_by", "branch").order_by(
        "-requested_at", "-id"
    )


def _pending(*, kind: str, obj: models.Model) -> QuerySet[ApprovalRequest]:
    return ApprovalRequest.objects.filter(
        kind=kind,
        object_type=obj._meta.label_lower,
        object_id=str(obj.pk),
        status=ApprovalStatus.PENDING,
    )


def approval_is_pending(*, kind: str, obj: models.Model) -> bool:
    """Whether a request of `kind` about `obj` waits for a decision."""
    return _pending(kind=kind, obj=obj).exists()


def approval_waiting_on(*, kind: str, obj: models.Model) -> ApprovalRequest | None:
    """The pending request of `kind` about `obj`, or None."""
    return _pending(kind=kind, obj=obj).order_by("-id").first()


def approval_pending_for(*, kind: str, obj: models.Model) -> ApprovalRequest:
    """The pending request of `kind` about `obj` (what an admin or API door decides);
    `StateConflict` when there is none."""
    approval = approval_waiting_on(kind=kind, obj=obj)
    if approval is None:
        raise StateConflict(
            _("%(object)s is not waiting for a decision.") % {"object": obj}, code="not_pending"
        )
    return approval


def _decidable_condition(user) -> Q:
    """The requests `user`'s roles may decide, each kind in its own scope."""
    condition = Q(pk__in=[])
    for kind in APPROVAL_KINDS.values():
        scope = kind.scope(user)
        if scope is not None:
            condition |= scope
    return condition


def approval_inbox(*, user) -> QuerySet[ApprovalRequest]:
    """Pending requests `user` may decide (never one whose change they made), oldest
    first."""
    requests = (
        approval_list()
        .filter(_decidable_condition(user), status=ApprovalStatus.PENDING)
        .exclude(requested_by=user)
    )
    for kind in APPROVAL_KINDS.values():
        made = kind.made_by(user)
        if made is not None:
            requests = requests.exclude(made)
    return requests.order_by("requested_at", "id")


def approval_visible(*, user) -> QuerySet[ApprovalRequest]:
    """Every request `user` may open: their own, those they may decide, and all of them for
    risk auditors and administrators."""
    if user.is_superuser or any(user.has_role(role) for role in OVERSEERS):
        return approval_list()
    return approval_list().filter(_decidable_condition(user) | Q(requested_by=user))


def approval_may_decide(*, approval: ApprovalRequest, user) -> bool:
    """Whether the inbox offers `user` the decision (the same rules `approval_decide`
    enforces, without deciding)."""
    if approval.status != ApprovalStatus.PENDING:
        return False
    kind = approval_kind(approval.kind)
    target = kind.target(approval)
    return not _is_maker(kind, approval, target, user) and _in_scope(kind, approval, user)
