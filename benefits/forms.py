"""Forms of the benefits app's pages."""

from django import forms
from django.utils.translation import gettext_lazy as _

from .models import Benefit


class BenefitFeedbackForm(forms.Form):
    benefit = forms.ModelChoiceField(label=_("Benefit"), queryset=Benefit.objects.none())
    useful = forms.ChoiceField(
        label=_("Suits the customer?"),
        choices=[("yes", _("Yes, useful")), ("no", _("No, not wanted"))],
        widget=forms.RadioSelect,
    )
    reason = forms.CharField(label=_("Why"), max_length=255, required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["benefit"].queryset = Benefit.objects.order_by("code")
