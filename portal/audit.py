"""Reads of the audit trail, for risk auditors: the entries services write
(`AuditEntry`: reveals, approvals, feed imports…) and the field-level history that
PostgreSQL triggers record for every change of configuration and member data
(django-pghistory, see `portal.models.audit_trail`).

The field-level history exists on PostgreSQL only: SQLite has no triggers, and pghistory's
aggregate query (`pghistory.models.Events`) fails there. `field_trail_available()` tells.
Personal data (phone, ID number) is masked in everything these return.

The object filter takes a row id or a member number: a member number finds the member's own
history and that of the rows that belong to the member (notes, tier requests, grants…), in
both the field changes and the recorded actions (`named_objects`).
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from django.apps import apps
from django.conf import settings
from django.db import connection
from django.db.models import Model, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.fields import CharField
from django.db.models.functions import Cast
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, pgettext_lazy
from pghistory.models import Event

from .converters import MEMBER_NO_PATTERN
from .display import person_name
from .masking import mask_id_number, mask_phone
from .models import AuditEntry, User

__all__ = [
    "AUDITED_APPS",
    "AUDIT_ACTIONS",
    "AuditFilters",
    "FieldChange",
    "FieldChangeList",
    "NamedObjects",
    "action_label",
    "audit_entry_list",
    "change_field_label",
    "object_type_label",
    "audit_model_choices",
    "field_change_list",
    "field_trail_available",
    "history_models",
    "masked_changes",
    "named_objects",
    "object_id_valid",
]

#: Apps whose models the audit page offers in its model filter.
AUDITED_APPS = ("portal", "members", "campaigns", "benefits")

#: Personal data: masked wherever the audit trail shows it (a reveal is its own audited act).
PERSONAL_FIELDS: dict[str, Callable[[str], str]] = {
    "phone": mask_phone,
    "id_number": mask_id_number,
}

#: pghistory labels (see `portal.models.audit_trail`) as the page names them.
CHANGE_KINDS = {
    "insert": gettext_lazy("created"),
    "update": gettext_lazy("changed"),
    "delete": gettext_lazy("deleted"),
    "password_change": gettext_lazy("password changed"),
}


#: Every action the services record (`audit_record(action=…)`) as the audit page names it.
#: A test reads the code for every action written and fails on one missing here.
AUDIT_ACTIONS = {
    "api_token.issue": gettext_lazy("API token issued"),
    "api_token.revoke": gettext_lazy("API token revoked"),
    "approval.request": gettext_lazy("Approval requested"),
    "approval.approve": gettext_lazy("Request approved"),
    "approval.reject": gettext_lazy("Request rejected"),
    "approval.withdraw": gettext_lazy("Request withdrawn"),
    "approval.void": gettext_lazy("Requests withdrawn by the system"),
    "benefit.change": gettext_lazy("Benefit changed"),
    "budget.create": gettext_lazy("Budget created"),
    "budget.change": gettext_lazy("Budget changed"),
    "budget.increase": gettext_lazy("Budget increased"),
    "budget.lower": gettext_lazy("Budget lowered"),
    "budget.parent": gettext_lazy("Parent budget changed"),
    "campaign.create": gettext_lazy("Campaign created"),
    "campaign.change": gettext_lazy("Campaign changed"),
    "campaign.submit": gettext_lazy("Campaign submitted for approval"),
    "campaign.approve": gettext_lazy("Campaign launch approved"),
    "campaign.reject": gettext_lazy("Campaign launch rejected"),
    "campaign.reopen": gettext_lazy("Campaign reopened for editing"),
    "campaign.pause": gettext_lazy("Campaign paused"),
    "campaign.resume": gettext_lazy("Campaign resumed"),
    "campaign.end": gettext_lazy("Campaign ended"),
    "demo.seed_started": gettext_lazy("Demo data loading started"),
    "demo.seed_finished": gettext_lazy("Demo data loaded"),
    "entitlement.change": gettext_lazy("Entitlements changed"),
    "feed.import": gettext_lazy("Feed file imported"),
    "feed.rejections_export": gettext_lazy("Rejected feed rows exported"),
    "grant.create": gettext_lazy("Benefit granted"),
    "grant.redeem": gettext_lazy("Benefit redeemed"),
    "grant.revoke": gettext_lazy("Benefit grant revoked"),
    "manual_grant.request": gettext_lazy("Manual grant requested"),
    "manual_grant.approve": gettext_lazy("Manual grant approved"),
    "manual_grant.reject": gettext_lazy("Manual grant rejected"),
    "member.export": gettext_lazy("Customers exported"),
    "member.opt_in": gettext_lazy("Customer opted in to marketing"),
    "member.opt_out": gettext_lazy("Customer opted out of marketing"),
    "member.reveal": gettext_lazy("Personal data revealed"),
    "member.search_personal": gettext_lazy("Search by personal data"),
    "nightly.dispatch": gettext_lazy("Nightly chain started"),
    "note.add": gettext_lazy("Follow-up note added"),
    "note.done": gettext_lazy("Follow-up note done"),
    "personal_data.rotate": gettext_lazy("Personal data key rotated"),
    "points.adjust": gettext_lazy("Points adjusted"),
    "segment.create": gettext_lazy("Segment created"),
    "segment.change": gettext_lazy("Segment changed"),
    "segment.delete": gettext_lazy("Segment deleted"),
    "segment.export": gettext_lazy("Segment exported"),
    "task.create": gettext_lazy("Task created"),
    "task.change": gettext_lazy("Task changed"),
    "task.delete": gettext_lazy("Task deleted"),
    "tier_override.request": gettext_lazy("Manual tier requested"),
    "tier_override.approve": gettext_lazy("Manual tier approved"),
    "tier_override.reject": gettext_lazy("Manual tier rejected"),
    "tier_override.withdraw": gettext_lazy("Manual tier request withdrawn"),
    "tier_scheme.request_activation": gettext_lazy("Tier scheme proposed for activation"),
    "tier_scheme.approve": gettext_lazy("Tier scheme approved"),
    "tier_scheme.reject": gettext_lazy("Tier scheme rejected"),
    "tier_scheme.switch": gettext_lazy("Tier scheme switched"),
    "tier_scheme.entitlement_decisions": gettext_lazy("Entitlements decided for new tiers"),
    "user.roles": gettext_lazy("Staff roles changed"),
}
#: an action recorded with its reason as an entry of its own ("campaign.pause.reason")
REASON_SUFFIX = ".reason"


def action_label(code: str) -> str:
    """A recorded action in the reader's words ("Campaign paused (reason)"); an action
    unknown here by its code."""
    if code in AUDIT_ACTIONS:
        return str(AUDIT_ACTIONS[code])
    base = code.removesuffix(REASON_SUFFIX)
    if base != code and base in AUDIT_ACTIONS:
        return _("%(action)s: the reason") % {"action": AUDIT_ACTIONS[base]}
    return code


def object_type_label(label: str) -> str:
    """An object type ("benefits.budget") by its model's name in the reader's language."""
    try:
        return str(apps.get_model(label)._meta.verbose_name)
    except (LookupError, ValueError):
        return label


#: keys the services write in an entry's changes (beyond the fields of its object's model)
CHANGE_FIELD_LABELS = {
    "kind": gettext_lazy("kind of request"),
    "summary": gettext_lazy("summary"),
    "requests": gettext_lazy("requests"),
    "changes": gettext_lazy("changes"),
    "reason": gettext_lazy("reason"),
    "business_date": gettext_lazy("business date"),
    "replaces": gettext_lazy("replaces"),
    "rows": gettext_lazy("rows"),
    "filters": gettext_lazy("filters"),
    "file_name": gettext_lazy("file name"),
    "seed": gettext_lazy("random seed"),
    "as_of": gettext_lazy("as of"),
    "months": gettext_lazy("months"),
    "members": gettext_lazy("members"),
    "cost": gettext_lazy("Unit cost"),
    "benefit": gettext_lazy("benefit"),
    "tier": gettext_lazy("tier"),
    "expires_on": gettext_lazy("expires on"),
    "status": gettext_lazy("status"),
    "amount": gettext_lazy("amount"),
    "roles": gettext_lazy("roles"),
    "points": gettext_lazy("points"),
    "budget": gettext_lazy("budget"),
    "effective_on": gettext_lazy("effective date"),
}


def change_field_label(object_type: str, name: str) -> str:
    """A key of an entry's changes in the reader's words: the field of the object's model
    by its verbose name, a key the services write by its label, else as written."""
    if name in CHANGE_FIELD_LABELS:
        return str(CHANGE_FIELD_LABELS[name])
    try:
        model = apps.get_model(object_type) if object_type else None
    except (LookupError, ValueError):
        model = None
    if model is not None:
        fields = {field.name: field for field in model._meta.concrete_fields}
        for candidate in (name, name.removesuffix("_fen"), name.removesuffix("_id")):
            if candidate in fields:
                return str(fields[candidate].verbose_name)
    return name


#: the columns and filters that share an English word but not a Chinese one
DATE_FROM_LABEL = pgettext_lazy("date filter", "From")
DATE_TO_LABEL = pgettext_lazy("date filter", "To")


#: The stored field that names an object best, first found wins (a member by number, never
#: by name).
NAMING_FIELDS = ("member_no", "code", "username", "summary", "name")


def field_trail_available(db=None) -> bool:
    """True where the field-level history is recorded and readable (PostgreSQL)."""
    return (db or connection).vendor == "postgresql"


@dataclass(frozen=True)
class AuditFilters:
    """What the auditor narrowed the trail to; empty values do not filter."""

    actor: str = ""  # username
    model: str = ""  # "app_label.modelname", e.g. "benefits.budget"
    action: str = ""  # service entries: action prefix ("grant." or "member.reveal")
    kind: str = ""  # field changes: a key of CHANGE_KINDS
    object_id: str = ""
    date_from: date | None = None
    date_to: date | None = None

    def period(self) -> tuple[datetime | None, datetime | None]:
        """[start, end) as aware datetimes of the portal's time zone, dates inclusive."""
        tz = timezone.get_current_timezone()
        start = datetime.combine(self.date_from, time.min, tz) if self.date_from else None
        end = (
            datetime.combine(self.date_to + timedelta(days=1), time.min, tz)
            if self.date_to
            else None
        )
        return start, end


def audit_model_choices() -> list[tuple[str, str]]:
    """(label, verbose name) of every model of the portal's apps, history tables excluded."""
    choices = [
        (model._meta.label_lower, str(model._meta.verbose_name))
        for app_label in AUDITED_APPS
        for model in apps.get_app_config(app_label).get_models()
        if not issubclass(model, Event)
    ]
    return sorted(choices, key=lambda choice: choice[0])


#: what the object filter takes: a row id, or a member number as the members feed takes it
_OBJECT_ID = re.compile(MEMBER_NO_PATTERN)
#: a row id fits a bigint; longer digits can only be a member number
_ROW_ID = re.compile(r"[0-9]{1,18}")
#: the field by which a tracked model is named in the object filter (a member by number)
NUMBER_FIELD = "member_no"


@dataclass(frozen=True)
class NamedObjects:
    """The rows an object filter names: one row id of any table (`row_id`), or the objects
    whose member number it is (`owners`: tracked model → their ids), with every row that
    belongs to them. `valid` is False for text that is neither (the filter matches nothing)."""

    valid: bool
    row_id: int | None = None
    owners: dict[type[Model], list[int]] = field(default_factory=dict)

    @property
    def found(self) -> bool:
        return self.row_id is not None or any(self.owners.values())

    def history_condition(self, model: type[Event]) -> Q | None:
        """Rows of the history table `model` about the named objects (None: no row can be)."""
        if self.row_id is not None:
            return Q(pgh_obj_id=self.row_id)
        condition = Q()
        if ids := self.owners.get(model.pgh_tracked_model):
            condition |= Q(pgh_obj_id__in=ids)
        for f in _owner_fields(model):
            if ids := self.owners.get(f.related_model):
                condition |= Q(**{f"{f.attname}__in": ids})
        return condition or None

    def entry_condition(self) -> Q | None:
        """The service entries (`AuditEntry`) about the named objects, or None."""
        if self.row_id is not None:
            return Q(object_id=str(self.row_id))
        condition = Q()
        for owner, ids in self.owners.items():
            if not ids:
                continue
            condition |= Q(object_type=owner._meta.label_lower, object_id__in=[str(i) for i in ids])
            for tracked in _tracked_models():
                for f in _owner_fields(tracked):
                    if f.related_model is owner:
                        owned = tracked._default_manager.filter(**{f"{f.attname}__in": ids})
                        condition |= Q(
                            object_type=tracked._meta.label_lower,
                            object_id__in=owned.values_list(
                                Cast("pk", output_field=CharField()), flat=True
                            ),
                        )
        return condition or None


def _owner_fields(model: type[Model]) -> list:
    """The foreign keys of `model` (a history table or a tracked model) to a model named by
    member number: the rows that belong to a member."""
    numbered = _numbered_models()
    return [
        f
        for f in model._meta.concrete_fields
        if f.is_relation and not f.name.startswith("pgh_") and f.related_model in numbered
    ]


def _tracked_models() -> list[type[Model]]:
    return [model.pgh_tracked_model for model in history_models()]


def _numbered_models() -> list[type[Model]]:
    """The tracked models named by a member number (the member)."""
    return [
        model
        for model in _tracked_models()
        if NUMBER_FIELD in {f.name for f in model._meta.concrete_fields}
    ]


def object_id_valid(object_id: str) -> bool:
    """True for what the object filter takes: a row id or a member number."""
    return bool(_OBJECT_ID.fullmatch(object_id.strip()))


def named_objects(object_id: str) -> NamedObjects:
    """What an object filter's text names: digits a row id; otherwise a member number, the
    member found by its number now or in its recorded history (a deleted member too)."""
    text = object_id.strip()
    if not object_id_valid(text):
        return NamedObjects(valid=False)
    if _ROW_ID.fullmatch(text):
        return NamedObjects(valid=True, row_id=int(text))
    owners = {}
    for model in _numbered_models():
        ids = set(
            model._default_manager.filter(**{NUMBER_FIELD: text}).values_list("pk", flat=True)
        )
        if field_trail_available():
            ids.update(
                model.pgh_event_model.objects.filter(**{NUMBER_FIELD: text}).values_list(
                    "pgh_obj_id", flat=True
                )
            )
        owners[model] = sorted(ids)
    return NamedObjects(valid=True, owners=owners)


def _actor(username: str) -> User | None:
    return User.objects.filter(username=username).first() if username else None


# --- service entries (AuditEntry) ------------------------------------------------------------


def audit_entry_list(*, filters: AuditFilters) -> QuerySet[AuditEntry]:
    """The service audit entries, newest first, narrowed by `filters` (`kind` ignored)."""
    entries = AuditEntry.objects.select_related("actor").order_by("-at", "-id")
    if filters.actor:
        entries = entries.filter(actor__username=filters.actor)
    if filters.model:
        entries = entries.filter(object_type=filters.model)
    if filters.action:
        entries = entries.filter(action__startswith=filters.action)
    if filters.object_id:
        condition = named_objects(filters.object_id).entry_condition()
        if condition is None:
            return entries.none()
        entries = entries.filter(condition)
    start, end = filters.period()
    if start:
        entries = entries.filter(at__gte=start)
    if end:
        entries = entries.filter(at__lt=end)
    return entries


def masked_changes(changes) -> list[tuple[str, str, str]]:
    """An AuditEntry's `changes` as (field, old, new) rows for display, personal data masked.
    A value recorded as ``[old, new]`` is a change; anything else is shown as the new value."""
    if not isinstance(changes, dict):
        return [("", "", _format(changes))] if changes else []
    rows = []
    for name, value in changes.items():
        mask = PERSONAL_FIELDS.get(name)
        if isinstance(value, list | tuple) and len(value) == 2:
            old, new = value
        else:
            old, new = None, value
        rows.append((name, _shown(old, mask), _shown(new, mask)))
    return rows


def _shown(value, mask: Callable[[str], str] | None) -> str:
    text = _format(value)
    return mask(text) if mask and text else text


def _format(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return _("yes") if value else _("no")
    if isinstance(value, datetime):
        return timezone.localtime(value).strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, date | Decimal | int | float):
        return str(value)
    if isinstance(value, list | dict):
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value)


# --- field-level history (pghistory) ---------------------------------------------------------


def history_models() -> list[type[Event]]:
    """Every history table the triggers write (one per tracked model), by label."""
    found = [
        model
        for model in apps.get_models()
        if issubclass(model, Event) and getattr(model, "pgh_tracked_model", None) is not None
    ]
    return sorted(found, key=lambda model: model._meta.label_lower)


@dataclass
class FieldChange:
    """One recorded change of one object: when, by whom (the request's user, URL and
    address; none for batch jobs and commands), what, and the fields it changed."""

    at: datetime
    kind: str  # pghistory label: insert / update / delete / password_change
    model_label: str  # tracked model, "benefits.budget"
    model_name: str
    object_id: str
    object_repr: str  # its member number, code or name as recorded
    actor: User | None
    actor_id: int | None
    url: str
    ip: str
    #: (field name, old, new), personal data masked. With no earlier snapshot (the first
    #: change recorded, or a created / deleted row) `old` or `new` is empty.
    diff: list[tuple[str, str, str]] = field(default_factory=list)
    #: False when the history holds no earlier state to compare with (the row existed
    #: before tracking began, or only some changes are tracked, as for grants).
    compared: bool = True

    @property
    def kind_display(self) -> str:
        return str(CHANGE_KINDS.get(self.kind, self.kind))


class FieldChangeList(Sequence):
    """The field-level history across every history table, newest first, as a sequence the
    Paginator can page. `count()` is one query; a page is one query for its keys, one per
    history table that has rows on the page (those rows and their previous snapshots, with
    their request context) and one for the users named: never one per row.

    The newest `COUNT_CAP` changes are reachable: counting a history of millions of rows
    (a members feed's first load) on every page would take minutes; filters reach the rest.
    """

    COUNT_CAP = 10_000

    def __init__(self, *, models: list[type[Event]], filters: AuditFilters):
        self.models = models
        self.filters = filters
        self._actor_missing = False
        self._actor_id: int | None = None
        self._named = named_objects(filters.object_id) if filters.object_id else None
        if filters.actor:
            actor = _actor(filters.actor)
            self._actor_missing = actor is None
            self._actor_id = actor.pk if actor else None

    def _arm(self, model: type[Event]) -> QuerySet | None:
        """The keys of one history table's matching rows; None if none can match."""
        rows = model.objects.all()
        f = self.filters
        if f.kind:
            rows = rows.filter(pgh_label=f.kind)
        if self._named is not None:
            condition = self._named.history_condition(model)
            if condition is None:
                return None
            rows = rows.filter(condition)
        if self._actor_id is not None:
            rows = rows.filter(pgh_context__metadata__user=self._actor_id)
        start, end = f.period()
        if start:
            rows = rows.filter(pgh_created_at__gte=start)
        if end:
            rows = rows.filter(pgh_created_at__lt=end)
        return rows.annotate(
            history=Value(model._meta.label_lower, output_field=CharField())
        ).values_list("pgh_created_at", "pgh_id", "history")

    def _keys(self) -> QuerySet | None:
        if self._actor_missing or not self.models:
            return None
        if self._named is not None and not self._named.found:
            return None
        # A table that cannot match is left out of the union (all left out: no rows).
        arms = [arm for model in self.models if (arm := self._arm(model)) is not None]
        if not arms:
            return None
        return arms[0].union(*arms[1:], all=True) if len(arms) > 1 else arms[0]

    def count(self) -> int:
        keys = self._keys()
        return keys[: self.COUNT_CAP].count() if keys is not None else 0

    def __len__(self) -> int:
        return self.count()

    def __getitem__(self, index):
        if not isinstance(index, slice):
            return self[index : index + 1][0]
        keys = self._keys()
        if keys is None:
            return []
        page = list(keys.order_by("-pgh_created_at", "-pgh_id", "history")[index])
        return _field_changes(page)


def field_change_list(*, filters: AuditFilters) -> FieldChangeList:
    """The field-level history narrowed by `filters` (`action` ignored), newest first.
    PostgreSQL only: check `field_trail_available()` first."""
    models = history_models()
    if filters.model:
        models = [m for m in models if m.pgh_tracked_model._meta.label_lower == filters.model]
    return FieldChangeList(models=models, filters=filters)


def _field_changes(page: list[tuple[datetime, int, str]]) -> list[FieldChange]:
    by_label = {model._meta.label_lower: model for model in history_models()}
    wanted: dict[str, list[int]] = defaultdict(list)
    for _at, pgh_id, label in page:
        wanted[label].append(pgh_id)
    rows: dict[tuple[str, int], Event] = {}
    previous: dict[tuple[str, int], Event | None] = {}
    for label, ids in wanted.items():
        fetched = _with_previous(by_label[label], ids)
        for pgh_id in ids:
            row = fetched[pgh_id]
            rows[label, pgh_id] = row
            earlier = [
                other
                for other in fetched.values()
                if other.pgh_obj_id == row.pgh_obj_id and other.pgh_id < pgh_id
            ]
            previous[label, pgh_id] = max(earlier, key=lambda e: e.pgh_id, default=None)
    user_ids = set()
    for row in [*rows.values(), *filter(None, previous.values())]:
        user_ids.add(_context(row).get("user"))
        user_ids.update(_user_values(row))
    users = User.objects.in_bulk([uid for uid in user_ids if isinstance(uid, int)])
    return [
        _field_change(rows[label, pgh_id], previous[label, pgh_id], users)
        for _at, pgh_id, label in page
    ]


def _with_previous(model: type[Event], ids: list[int]) -> dict[int, Event]:
    """The rows `ids` of one history table and, for each, the snapshot before it of the same
    object: one query."""
    before = (
        model.objects.filter(pgh_obj_id=OuterRef("pgh_obj_id"), pgh_id__lt=OuterRef("pgh_id"))
        .order_by("-pgh_id")
        .values("pgh_id")[:1]
    )
    previous_ids = model.objects.filter(pgh_id__in=ids).annotate(p=Subquery(before)).values("p")
    fetched = model.objects.filter(Q(pgh_id__in=ids) | Q(pgh_id__in=previous_ids))
    return {row.pgh_id: row for row in fetched.select_related("pgh_context")}


def _context(row: Event) -> dict:
    context = row.pgh_context
    return context.metadata if context is not None and isinstance(context.metadata, dict) else {}


def _audited_fields(model: type[Event]):
    """The tracked fields a history table stores (not pghistory's own, not the id)."""
    return [
        f
        for f in model._meta.concrete_fields
        if not f.name.startswith("pgh_") and not f.primary_key and f.name != "id"
    ]


def _points_to_user(f) -> bool:
    return (
        f.is_relation
        and f.related_model is not None
        and (f.related_model._meta.label == settings.AUTH_USER_MODEL)
    )


def _user_values(row: Event) -> list[int]:
    return [
        getattr(row, f.attname)
        for f in _audited_fields(type(row))
        if _points_to_user(f) and getattr(row, f.attname) is not None
    ]


def _value(f, row: Event | None, users: dict[int, User]) -> str:
    if row is None:
        return ""
    value = getattr(row, f.attname)
    if value is None or value == "":
        return ""
    if f.name in PERSONAL_FIELDS:
        return PERSONAL_FIELDS[f.name](str(value))
    if _points_to_user(f):
        user = users.get(value)
        return person_name(user) if user else f"#{value}"
    if f.is_relation:
        return f"#{value}"
    if f.flatchoices:
        return str(dict(f.flatchoices).get(value, value))
    return _format(value)


def _field_label(f) -> str:
    """A tracked field by its verbose name; a relation left with Django's default one (its
    attribute name: "member") by the name of the model it points to (客户)."""
    if (
        f.is_relation
        and f.related_model is not None
        and str(f.verbose_name) == f.name.replace("_", " ")
    ):
        return str(f.related_model._meta.verbose_name)
    return str(f.verbose_name)


def _naming(row: Event) -> str:
    stored = {f.name for f in _audited_fields(type(row))}
    for name in NAMING_FIELDS:
        value = getattr(row, name) if name in stored else None
        if value:
            return str(value)
    return ""


def _field_change(row: Event, before: Event | None, users: dict[int, User]) -> FieldChange:
    tracked = row.pgh_tracked_model._meta
    context = _context(row)
    actor_id = context.get("user")
    fields = _audited_fields(type(row))
    diff = []
    compared = True
    if row.pgh_label == "insert":
        diff = [(_field_label(f), "", _value(f, row, users)) for f in fields]
    elif row.pgh_label == "delete":
        diff = [(_field_label(f), _value(f, row, users), "") for f in fields]
    elif before is None:
        compared = False
        diff = [(_field_label(f), "", _value(f, row, users)) for f in fields]
    else:
        # Compared as stored, shown masked (a changed phone may look the same masked).
        diff = [
            (_field_label(f), _value(f, before, users), _value(f, row, users))
            for f in fields
            if getattr(before, f.attname) != getattr(row, f.attname)
        ]
    return FieldChange(
        at=row.pgh_created_at,
        kind=row.pgh_label,
        model_label=tracked.label_lower,
        model_name=str(tracked.verbose_name),
        object_id=str(row.pgh_obj_id),
        object_repr=_naming(row),
        actor=users.get(actor_id) if isinstance(actor_id, int) else None,
        actor_id=actor_id if isinstance(actor_id, int) else None,
        url=context.get("url") or context.get("job") or "",
        ip=context.get("ip") or "",
        diff=[(str(name), old, new) for name, old, new in diff if old or new],
        compared=compared,
    )
