"""What the campaign and task admins share: the permission they configure with, the choices
their forms offer, and how they hand a save to the configuration services."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import redirect

from benefits.models import Benefit
from members.choices import SchemeStatus
from members.models import Tier
from portal.admin_approvals import approval_sent_response
from portal.errors import DomainError

from ..services.changes import campaign_change
from ..services.config import CampaignNotEditable

__all__ = [
    "CONFIGURE",
    "VIEW",
    "ActiveChoicesMixin",
    "adopt",
    "change_answer",
    "change_propose",
    "form_values",
    "refused_when_not_editable",
]

CONFIGURE = "campaigns.configure_campaigns"
VIEW = "campaigns.view_campaigns"


def form_values(form: forms.BaseForm, names: tuple[str, ...]) -> dict:
    """The cleaned values of the fields among `names` that are on the form."""
    return {name: form.cleaned_data[name] for name in names if name in form.cleaned_data}


def adopt(obj, saved) -> None:
    """The admin goes on with its own instance (inlines, log entry, redirect): make it the
    row the service wrote."""
    obj.pk = saved.pk
    obj._state.adding = False
    obj.refresh_from_db()


@contextmanager
def refused_when_not_editable() -> Iterator[None]:
    """A campaign submitted since the page was opened is a 403, as the page itself is for a
    campaign that is no longer editable."""
    try:
        yield
    except CampaignNotEditable as exc:
        raise PermissionDenied(str(exc)) from exc


def change_propose(request, **change) -> None:
    """Hand a launched campaign's edit to `campaign_change` (names at once, rewards, caps and
    the budget as a proposal); its answer waits on the request for `change_answer`."""
    try:
        _campaign, request.campaign_change_approval = campaign_change(actor=request.user, **change)
    except DomainError as exc:
        request.campaign_change_refusal = exc.message
    except ValidationError as exc:
        request.campaign_change_refusal = " ".join(exc.messages)


def change_answer(model_admin, request, obj):
    """After saving a launched campaign's page: the refusal (nothing changed) back on the
    page, or the approval request the change now waits on; None when it all applied."""
    refusal = getattr(request, "campaign_change_refusal", None)
    if refusal:
        model_admin.message_user(request, refusal, messages.ERROR)
        meta = obj._meta
        return redirect(f"admin:{meta.app_label}_{meta.model_name}_change", obj.pk)
    approval = getattr(request, "campaign_change_approval", None)
    if approval is not None:
        return approval_sent_response(model_admin, request, approval)
    return None


class ActiveChoicesMixin:
    """Tiers of the active scheme and active benefits only."""

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        if db_field.related_model is Tier:
            kwargs["queryset"] = Tier.objects.filter(scheme__status=SchemeStatus.ACTIVE)
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.related_model is Benefit:
            kwargs["queryset"] = Benefit.objects.filter(active=True)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)
