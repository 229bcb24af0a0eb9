"""What the campaign and task admins share: the permission they configure with, the choices
their forms offer, and how they hand a save to the configuration services."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django import forms
from django.core.exceptions import PermissionDenied

from benefits.models import Benefit
from members.choices import SchemeStatus
from members.models import Tier

from ..services.config import CampaignNotEditable

__all__ = [
    "CONFIGURE",
    "VIEW",
    "ActiveChoicesMixin",
    "adopt",
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
