from django import forms
from django.utils.translation import gettext_lazy as _

from .choices import LifecycleStage, MemberStatus


class MemberFilterForm(forms.Form):
    q = forms.CharField(
        label=_("Search"),
        required=False,
        widget=forms.TextInput(attrs={"placeholder": _("Member no., name or full ID number")}),
    )
    stage = forms.ChoiceField(
        label=_("Lifecycle stage"),
        required=False,
        choices=[("", _("All stages")), *LifecycleStage.choices],
    )
    status = forms.ChoiceField(
        label=_("Status"), required=False, choices=[("", _("All statuses")), *MemberStatus.choices]
    )
    branch = forms.CharField(label=_("Branch code"), required=False)
