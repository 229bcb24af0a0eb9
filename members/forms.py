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
    tier = forms.ChoiceField(label=_("Tier"), required=False, choices=[])

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        from .models import Tier

        self.fields["tier"].choices = [("", _("All tiers"))] + [
            (tier.code, tier.name)
            for tier in Tier.objects.filter(scheme__status="ACTIVE").order_by("rank")
        ]


class TierOverrideForm(forms.Form):
    tier = forms.ModelChoiceField(label=_("Tier"), queryset=None)
    reason = forms.CharField(label=_("Reason"), max_length=255)
    expires_on = forms.DateField(
        label=_("Expires on"), widget=forms.DateInput(attrs={"type": "date"})
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        from .models import Tier

        self.fields["tier"].queryset = Tier.objects.filter(scheme__status="ACTIVE").order_by("rank")


class DecisionForm(forms.Form):
    approve = forms.BooleanField(required=False)
    comment = forms.CharField(label=_("Comment"), max_length=255, required=False)
