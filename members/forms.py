from django import forms
from django.utils.translation import gettext_lazy as _

from .choices import LifecycleStage, MemberStatus
from .models import Segment, Tier
from .worklists import WORK_LISTS


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
    segment = forms.ChoiceField(label=_("Segment"), required=False, choices=[])
    worklist = forms.ChoiceField(
        label=_("Work list"),
        required=False,
        choices=[
            ("", _("All customers")),
            *((name, work_list.label) for name, work_list in WORK_LISTS.items()),
        ],
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["tier"].choices = [("", _("All tiers"))] + [
            (tier.code, tier.name)
            for tier in Tier.objects.filter(scheme__status="ACTIVE").order_by("rank")
        ]
        self.fields["segment"].choices = [("", _("All segments"))] + list(
            Segment.objects.order_by("code").values_list("code", "name")
        )


class TierOverrideForm(forms.Form):
    tier = forms.ModelChoiceField(label=_("Tier"), queryset=None)
    reason = forms.CharField(label=_("Reason"), max_length=255)
    expires_on = forms.DateField(
        label=_("Expires on"), widget=forms.DateInput(attrs={"type": "date"})
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["tier"].queryset = Tier.objects.filter(scheme__status="ACTIVE").order_by("rank")


class DecisionForm(forms.Form):
    approve = forms.BooleanField(required=False)
    comment = forms.CharField(label=_("Comment"), max_length=255, required=False)


class RevealForm(forms.Form):
    """Why the full phone and ID number are needed: kept in the audit trail."""

    reason = forms.CharField(
        label=_("Reason"),
        max_length=255,
        error_messages={"required": _("Give a reason to reveal the personal data.")},
        widget=forms.TextInput(attrs={"placeholder": _("Why do you need the full values?")}),
    )


class OptOutForm(forms.Form):
    """The customer opts out of (1) or back into (0) personalised marketing."""

    opted_out = forms.TypedChoiceField(
        choices=[("1", _("Opted out")), ("0", _("Opted in"))], coerce=lambda value: value == "1"
    )
    reason = forms.CharField(label=_("How the customer asked"), max_length=255, required=False)


class FollowUpNoteForm(forms.Form):
    text = forms.CharField(
        label=_("Note"), max_length=2000, widget=forms.Textarea(attrs={"rows": 3, "cols": 60})
    )
    due_on = forms.DateField(
        label=_("Follow up by"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
