"""Admin plumbing: the themed admin site and model admins guarded by the permission matrix,
and how the admin shows what people read (`portal.display`): related rows by their names in
the user's language, people by their full names, money as ¥1,234.50 / CNY 1,234.50, and
amount inputs that take separators ("6,000,000.00")."""

from __future__ import annotations

import functools
from decimal import Decimal

from django import forms
from django.contrib import admin
from django.contrib.admin.utils import flatten_fieldsets
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import Group
from django.core.exceptions import FieldDoesNotExist
from django.db import models
from django.templatetags.static import static
from django.utils.functional import Promise
from django.utils.html import format_html
from django.utils.text import capfirst
from django.utils.translation import gettext_lazy as _
from unfold.admin import ModelAdmin
from unfold.sites import UnfoldAdminSite
from unfold.widgets import UnfoldAdminTextInputWidget

from .accounts import PortalAuthenticationForm
from .bounds import Bound, BoundError
from .choices import Role
from .display import code_html, money_text, name_of, person_name
from .models import Branch, Department
from .permissions import user_can

__all__ = [
    "FIELD_LABELS",
    "AmountField",
    "brand_icon",
    "MatrixInlineMixin",
    "MatrixModelAdmin",
    "PortalAdminSite",
    "field_label",
    "money_column",
    "shown_name",
]


def brand_icon(request) -> str:
    """The portal's mark (also its favicon), for the admin's header (settings.UNFOLD)."""
    return static("portal/favicon.svg")


class PortalAdminSite(UnfoldAdminSite):
    """Entry to the admin needs the `portal.access_admin` action, not `is_staff`."""

    #: any active staff user may log in (`has_permission` decides); a system integration
    #: account is refused, with the reason (portal.accounts)
    login_form = PortalAuthenticationForm
    # the portal's name, never Django's "Site administration"
    site_title = _("Membership Operations Portal")
    site_header = _("Membership Operations")
    index_title = _("Back office")

    def has_permission(self, request) -> bool:
        return request.user.is_active and user_can(request.user, "portal.access_admin")


#: How the admin names relation and money fields whose model gives them no label in the
#: user's language (a label the model gives in gettext wins), by field name.
FIELD_LABELS: dict[str, Promise] = {
    "actor": _("actor"),
    "author": _("author"),
    "batch": _("batch"),
    "benefit": _("benefit"),
    "branch": _("branch"),
    "budget": _("budget"),
    "campaign": _("campaign"),
    "client": _("client system"),
    "created_by": _("created by"),
    "decided_by": _("decided by"),
    "department": _("department"),
    "duplicate_of": _("duplicate of"),
    "from_tier": _("from tier"),
    "grant": _("grant"),
    "granted_by": _("granted by"),
    "imported_by": _("imported by"),
    "job_run": _("job run"),
    "member": _("member"),
    "parent": _("parent"),
    "points_entry": _("points entry"),
    "requested_by": _("requested by"),
    "scheme": _("tier scheme"),
    "submitted_by": _("submitted by"),
    "task": _("task"),
    "tier": _("tier"),
    "to_tier": _("to tier"),
    "triggered_by": _("triggered by"),
    # amounts stored in fen, shown in yuan: the label without "(fen)"
    "amount_fen": _("amount"),
    "balance_fen": _("balance"),
    "consumed_fen": _("consumed"),
    "cost_fen": _("cost"),
    "unit_cost_fen": _("unit cost"),
}


def field_label(model, name: str) -> str | Promise:
    """The label of `model`'s field `name` in the user's language."""
    try:
        field = model._meta.get_field(name)
    except FieldDoesNotExist:
        return FIELD_LABELS.get(name, name.replace("_", " "))
    if name.endswith("_fen") and name in FIELD_LABELS:
        return FIELD_LABELS[name]
    verbose = getattr(field, "verbose_name", None)
    if isinstance(verbose, Promise):
        return verbose
    return FIELD_LABELS.get(name, verbose or name.replace("_", " "))


def shown_name(obj) -> str:
    """A related row as people name it: a person by full name, a tier or a benefit by its
    name in the user's language, a department or a branch by its name, else as the row
    names itself; "—" for none."""
    if obj is None:
        return "—"
    if isinstance(obj, AbstractBaseUser):
        return person_name(obj)
    if hasattr(obj, "name_en"):
        return name_of(obj)
    if isinstance(obj, Department | Branch):
        return obj.name
    if isinstance(obj, Group) and obj.name in Role.values:
        return str(Role(obj.name).label)  # a role by its name in the user's language
    if not any(_has_field(type(obj), name) for name in ("name", "code", "member_no")):
        # a ledger row or a log line names itself in codes: by its kind and number
        return f"{capfirst(obj._meta.verbose_name)} #{obj.pk}"
    return str(obj)


def _is_relation(field) -> bool:
    return isinstance(field, models.ForeignKey | models.OneToOneField)


def _is_fen(field) -> bool:
    return isinstance(field, models.BigIntegerField | models.IntegerField) and field.name.endswith(
        "_fen"
    )


def _relation_column(model, name: str):
    """A column / read-only field for the relation `name`: labelled, and the related row
    by its name (`shown_name`)."""

    def show(obj):
        return shown_name(getattr(obj, name))

    show.__name__ = name
    return admin.display(description=field_label(model, name), ordering=name)(show)


def money_column(name: str, label, *, ordering: str | None = None):
    """A column / read-only field for the amount `obj.<name>` (yuan, or `<x>_fen` in fen)
    as people read it: ¥1,234.50 in 简体中文, CNY 1,234.50 in English."""

    def show(obj):
        value = getattr(obj, name)
        if value is not None and name.endswith("_fen"):
            value = Decimal(value) / 100
        return money_text(value)

    show.__name__ = name
    return admin.display(description=label, ordering=ordering or name)(show)


@functools.cache
def _shown_field(model, name):
    """`name` (a model field of a list, a filter or a read-only form) as the admin shows it:
    relations by name and money in yuan, labelled in the user's language; other names
    unchanged."""
    if not isinstance(name, str):
        return name
    try:
        field = model._meta.get_field(name)
    except FieldDoesNotExist:
        return name
    if _is_relation(field):
        return _relation_column(model, name)
    if _is_fen(field):
        return money_column(name, field_label(model, name))
    if name == "code" or (name in ("name", "name_en") and _has_field(model, "name_en")):
        return _data_column(model, name)
    return name


def _has_field(model, name: str) -> bool:
    try:
        model._meta.get_field(name)
    except FieldDoesNotExist:
        return False
    return True


def _data_column(model, name: str):
    """A code (grey, as `code_html`) or a name in one given language (the Chinese name, the
    English name): data shown as stored, the same in every language."""
    language = {"name": "zh-Hans", "name_en": "en"}.get(name)

    def show(obj):
        value = getattr(obj, name)
        if not value:
            return "—"
        if language is None:
            return code_html(value)
        return format_html('<span lang="{}" translate="no">{}</span>', language, value)

    show.__name__ = name
    return admin.display(description=field_label(model, name), ordering=name)(show)


class AmountField(forms.DecimalField):
    """An amount in yuan as people type it: separators are fine ("6,000,000.00", "¥1,500"),
    read by the same parser as every bounded amount (`portal.bounds`)."""

    widget = UnfoldAdminTextInputWidget

    def __init__(self, *args, **kwargs):
        kwargs.pop("localize", None)
        super().__init__(*args, **kwargs)
        self.widget.attrs.setdefault("inputmode", "decimal")
        self.widget.attrs.pop("step", None)

    def to_python(self, value):
        if isinstance(value, str) and value.strip():
            limit = (
                Decimal(10) ** (self.max_digits - self.decimal_places) if self.max_digits else None
            )
            bound = Bound(
                "amount",
                self.label or _("amount"),
                -limit if limit else Decimal("-1e15"),
                limit if limit else Decimal("1e15"),
                whole=False,
                money=True,
            )
            try:
                value = str(bound.parse(value))
            except BoundError as exc:
                raise forms.ValidationError(exc.message, code="invalid") from None
        return super().to_python(value)

    def prepare_value(self, value):
        if isinstance(value, Decimal):
            return f"{value:,.2f}"
        return super().prepare_value(value)

    def widget_attrs(self, widget):
        return {"inputmode": "decimal"}


class _TitledRelatedFilter(admin.RelatedFieldListFilter):
    """A relation filter titled in the user's language, its options by name."""

    def __init__(self, field, request, params, model, model_admin, field_path):
        super().__init__(field, request, params, model, model_admin, field_path)
        self.title = field_label(model, field_path) if "__" not in field_path else self.title

    def field_choices(self, field, request, model_admin):
        ordering = self.field_admin_ordering(field, request, model_admin)
        rows = field.related_model._default_manager.all()
        if ordering:
            rows = rows.order_by(*ordering)
        return [(row.pk, shown_name(row)) for row in rows]


class ShownFieldsMixin:
    """Relations, money and amount inputs as people read and type them, in every admin of
    ours (lists, filters, read-only and editable forms, inlines)."""

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        if isinstance(db_field, models.DecimalField) and db_field.decimal_places == 2:
            kwargs.setdefault("form_class", AmountField)
            kwargs.setdefault("widget", UnfoldAdminTextInputWidget)
        formfield = super().formfield_for_dbfield(db_field, request, **kwargs)
        if formfield is None:
            return formfield
        if not isinstance(db_field.verbose_name, Promise) and db_field.name in FIELD_LABELS:
            formfield.label = capfirst(FIELD_LABELS[db_field.name])
        if isinstance(formfield, forms.ModelChoiceField):
            formfield.label_from_instance = shown_name
        return formfield

    def __init_subclass__(cls, **kwargs):
        """An admin's own `get_readonly_fields` shows its fields the same way."""
        super().__init_subclass__(**kwargs)
        own = cls.__dict__.get("get_readonly_fields")
        if own is not None and not getattr(own, "shows_fields", False):

            def get_readonly_fields(self, request, obj=None, _own=own):
                return [_shown_field(self.model, name) for name in _own(self, request, obj)]

            get_readonly_fields.shows_fields = True
            cls.get_readonly_fields = get_readonly_fields
        own_sets = cls.__dict__.get("get_fieldsets")
        if own_sets is not None and not getattr(own_sets, "shows_fields", False):

            def get_fieldsets(self, request, obj=None, _own=own_sets):
                return self.shown_fieldsets(request, obj, _own(self, request, obj))

            get_fieldsets.shows_fields = True
            cls.get_fieldsets = get_fieldsets

    def get_readonly_fields(self, request, obj=None):
        model = self.model
        return [_shown_field(model, name) for name in super().get_readonly_fields(request, obj)]

    get_readonly_fields.shows_fields = True

    def get_fieldsets(self, request, obj=None):
        return self.shown_fieldsets(request, obj, super().get_fieldsets(request, obj))

    get_fieldsets.shows_fields = True

    def get_form(self, request, obj=None, change=False, **kwargs):
        """The form holds the editable fields only (the shown read-only ones are no fields)."""
        if kwargs.get("fields") is not None:
            kwargs["fields"] = [name for name in kwargs["fields"] if isinstance(name, str)]
        return super().get_form(request, obj, change=change, **kwargs)

    def get_formset(self, request, obj=None, **kwargs):
        if kwargs.get("fields") is None:
            kwargs["fields"] = flatten_fieldsets(self.get_fieldsets(request, obj))
        kwargs["fields"] = [name for name in kwargs["fields"] if isinstance(name, str)]
        return super().get_formset(request, obj, **kwargs)

    def shown_fieldsets(self, request, obj, fieldsets):
        shown = {
            item.__name__: item
            for item in self.get_readonly_fields(request, obj)
            if not isinstance(item, str) and hasattr(item, "__name__")
        }
        # a page the user may only view shows every field read-only
        view_only = obj is not None and not self.has_change_permission(request, obj)

        def mapped(item):
            if isinstance(item, list | tuple):
                return type(item)(mapped(part) for part in item)
            if isinstance(item, str) and item in shown:
                return shown[item]
            if isinstance(item, str) and view_only:
                return _shown_field(self.model, item)
            return item

        return [
            (title, {**options, "fields": mapped(options.get("fields", ()))})
            for title, options in fieldsets
        ]


class MatrixModelAdmin(ShownFieldsMixin, ModelAdmin):
    """A model admin whose view / change rights come from the permission matrix.

    `view_action` lets a role see the list; `change_action` (None = read-only for everyone)
    lets it add, change and delete.
    """

    view_action: str = "portal.access_admin"
    change_action: str | None = None

    def object_title(self, obj) -> str:
        """How the object's page names it (its title and breadcrumb): as people name it."""
        return shown_name(obj)

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None:
            # the page's title and its breadcrumb (templates/unfold/helpers/header_title.html)
            obj.admin_object_title = context["subtitle"] = self.object_title(obj)
        return super().render_change_form(request, context, add, change, form_url, obj)

    def get_list_display(self, request):
        return [_shown_field(self.model, name) for name in super().get_list_display(request)]

    def get_list_filter(self, request):
        shown = []
        for item in super().get_list_filter(request):
            if isinstance(item, str) and "__" not in item:
                try:
                    field = self.model._meta.get_field(item)
                except FieldDoesNotExist:
                    field = None
                if field is not None and (_is_relation(field) or field.many_to_many):
                    item = (item, _TitledRelatedFilter)
            shown.append(item)
        return shown

    def has_module_permission(self, request) -> bool:
        return self.has_view_permission(request)

    def has_view_permission(self, request, obj=None) -> bool:
        return user_can(request.user, self.view_action) or self.has_change_permission(request)

    def has_add_permission(self, request) -> bool:
        return self.change_action is not None and user_can(request.user, self.change_action)

    def has_change_permission(self, request, obj=None) -> bool:
        return self.change_action is not None and user_can(request.user, self.change_action)

    def has_delete_permission(self, request, obj=None) -> bool:
        return self.has_change_permission(request, obj)


class MatrixInlineMixin(ShownFieldsMixin):
    """Inline rights from the matrix: view with `view_action`, edit with `change_action`,
    and only while the parent object `is_editable(obj)`."""

    view_action: str = "portal.access_admin"
    change_action: str | None = None

    def is_editable(self, obj) -> bool:
        return True

    def has_view_permission(self, request, obj=None) -> bool:
        return user_can(request.user, self.view_action)

    def has_change_permission(self, request, obj=None) -> bool:
        return (
            self.change_action is not None
            and user_can(request.user, self.change_action)
            and (obj is None or self.is_editable(obj))
        )

    def has_add_permission(self, request, obj=None) -> bool:
        return self.has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None) -> bool:
        return self.has_change_permission(request, obj)
