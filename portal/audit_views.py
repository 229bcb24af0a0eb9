"""The audit page: who changed what, when and from where, for risk auditors."""

from __future__ import annotations

from django import forms
from django.core.paginator import Paginator
from django.shortcuts import render
from django.utils.translation import gettext_lazy as _

from . import audit
from .decorators import action_required
from .paging import query_without

#: tabs of the page: key -> label. "changes" needs PostgreSQL (audit.field_trail_available).
AUDIT_TABS = {
    "changes": _("Field changes"),
    "actions": _("Recorded actions"),
}
PAGE_SIZE = 50


class AuditFilterForm(forms.Form):
    actor = forms.CharField(label=_("User"), required=False, max_length=150)
    model = forms.ChoiceField(label=_("Object type"), required=False)
    action = forms.CharField(
        label=_("Action"),
        required=False,
        max_length=64,
        help_text=_(
            "Recorded actions whose code (shown in grey beside each action) starts with this."
        ),
    )
    kind = forms.ChoiceField(
        label=_("Change"),
        required=False,
        choices=[("", _("Any")), *audit.CHANGE_KINDS.items()],
    )
    object_id = forms.CharField(
        label=_("Object id"),
        required=False,
        max_length=64,
        help_text=_("A row id, or a member number for that member's whole history."),
    )
    date_from = forms.DateField(
        label=audit.DATE_FROM_LABEL, required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    date_to = forms.DateField(
        label=audit.DATE_TO_LABEL, required=False, widget=forms.DateInput(attrs={"type": "date"})
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["model"].choices = [("", _("Any")), *audit.audit_model_choices()]

    def clean_object_id(self) -> str:
        object_id = self.cleaned_data["object_id"].strip()
        if object_id and not audit.object_id_valid(object_id):
            raise forms.ValidationError(
                _("Enter a row id (digits) or a member number (up to 32 letters, digits, _ or -).")
            )
        return object_id

    def filters(self) -> audit.AuditFilters:
        """The valid filters (an invalid field does not filter; the form shows its error),
        but an invalid object id, which matches nothing: an auditor who looked for one object
        never gets the whole trail instead."""
        data = {
            name: value
            for name, value in getattr(self, "cleaned_data", {}).items()
            if name not in self.errors
        }
        if "object_id" in self.errors:
            data["object_id"] = str(self.data.get("object_id", ""))[:100]
        return audit.AuditFilters(
            actor=(data.get("actor") or "").strip(),
            model=data.get("model") or "",
            action=(data.get("action") or "").strip(),
            kind=data.get("kind") or "",
            object_id=(data.get("object_id") or "").strip(),
            date_from=data.get("date_from"),
            date_to=data.get("date_to"),
        )


@action_required("portal.view_audit")
def audit_list_view(request):
    """Two tabs, newest first, 50 a page, the same filters: the field-level changes that
    PostgreSQL triggers record for configuration and member data (admin, API, services,
    bulk updates), and the actions services record (reveals, approvals, feed imports…).
    Personal data is masked. On SQLite only the recorded actions exist; the page says so."""
    available = audit.field_trail_available()
    tabs = ["changes", "actions"] if available else ["actions"]
    tab = request.GET.get("tab") or tabs[0]
    if tab not in tabs:
        tab = tabs[0]
    form = AuditFilterForm(request.GET or None)
    form.is_valid()
    filters = form.filters()
    if (
        filters.object_id
        and "object_id" not in form.errors
        and not audit.named_objects(filters.object_id).found
    ):
        form.add_error(
            "object_id",
            _("No member has the number %(number)s: nothing is recorded for it.")
            % {"number": filters.object_id},
        )
    if tab == "changes":
        rows = audit.field_change_list(filters=filters)
    else:
        rows = audit.audit_entry_list(filters=filters)
    page = Paginator(rows, PAGE_SIZE).get_page(request.GET.get("page"))
    cap = audit.FieldChangeList.COUNT_CAP
    capped_at = cap if tab == "changes" and page.paginator.count >= cap else None
    if tab == "actions":
        entries = list(page.object_list)
        for entry in entries:
            entry.action_text = audit.action_label(entry.action)
            entry.object_type_text = audit.object_type_label(entry.object_type)
        page.object_list = [
            (
                entry,
                [
                    (audit.change_field_label(entry.object_type, name), old, new)
                    for name, old, new in audit.masked_changes(entry.changes)
                ],
            )
            for entry in entries
        ]
    return render(
        request,
        "portal/audit_list.html",
        {
            "page": page,
            "query": query_without(request, "page"),
            "tab_query": query_without(request, "page", "tab"),
            "form": form,
            "tab": tab,
            "tabs": [(key, AUDIT_TABS[key]) for key in tabs],
            "field_trail_available": available,
            "capped_at": capped_at,
        },
    )
